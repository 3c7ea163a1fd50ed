namespace Gateway.Core.Domains;

/// <summary>
/// Per-domain recipient verification at RCPT (requirements §3.6, §11; docs/operations.md "Recipient verification"): before a
/// recipient that a row routes is accepted, the gateway asks the customer's own server with an SMTP callout (EHLO,
/// <c>MAIL FROM:&lt;&gt;</c>, <c>RCPT TO</c>, <c>RSET</c>, <c>QUIT</c>; never DATA), as Postfix's
/// <c>reject_unverified_recipient</c> does, and keeps the answer in Redis. Off by default.
/// </summary>
/// <param name="Enabled">Verify recipients of this domain at RCPT.</param>
/// <param name="PositiveTtl">How long "the server accepts this recipient" is trusted; zero: <see cref="DefaultPositiveTtl"/>.</param>
/// <param name="NegativeTtl">How long "the server refuses this recipient" is trusted; zero: <see cref="DefaultNegativeTtl"/>.</param>
public sealed record RecipientVerificationSettings(bool Enabled, TimeSpan PositiveTtl, TimeSpan NegativeTtl)
{
    /// <summary>
    /// 7 days. Postfix keeps positive answers 31 days but refreshes them after 7 (address_verify_positive_refresh_time) in
    /// the background; the gateway has no background refresh, so it keeps them only as long as Postfix trusts one without
    /// asking again. A mailbox deleted meanwhile is refused by the customer's server at delivery (one bounce).
    /// </summary>
    public static readonly TimeSpan DefaultPositiveTtl = TimeSpan.FromDays(7);

    /// <summary>
    /// 3 hours: Postfix's address_verify_negative_refresh_time. A 550 at RCPT is final for the sender (it does not retry),
    /// so a mailbox created after a refusal must not stay refused for days (Postfix's 3 d expiry); 3 h still spares the
    /// customer's server one probe per spam run to the same unknown address.
    /// </summary>
    public static readonly TimeSpan DefaultNegativeTtl = TimeSpan.FromHours(3);

    public static readonly TimeSpan MinTtl = TimeSpan.FromMinutes(1);
    public static readonly TimeSpan MaxPositiveTtl = TimeSpan.FromDays(31);
    public static readonly TimeSpan MaxNegativeTtl = TimeSpan.FromDays(3);

    /// <summary>Off, with the default lifetimes (zero; what a domain stored before this setting existed gets).</summary>
    public static readonly RecipientVerificationSettings Off = new(false, TimeSpan.Zero, TimeSpan.Zero);

    /// <summary>The positive lifetime in force (zero means the default).</summary>
    public TimeSpan EffectivePositiveTtl => PositiveTtl > TimeSpan.Zero ? PositiveTtl : DefaultPositiveTtl;

    /// <summary>The negative lifetime in force (zero means the default).</summary>
    public TimeSpan EffectiveNegativeTtl => NegativeTtl > TimeSpan.Zero ? NegativeTtl : DefaultNegativeTtl;
}
