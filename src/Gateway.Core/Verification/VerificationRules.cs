using System.Globalization;
using Gateway.Core.Domains;
using Gateway.Core.Relay;

namespace Gateway.Core.Verification;

/// <summary>What the customer's server said about one recipient.</summary>
public enum VerifyStatus
{
    /// <summary>2xx to RCPT: the recipient exists.</summary>
    Deliverable,

    /// <summary>5xx to RCPT: the server refuses the recipient.</summary>
    Undeliverable,

    /// <summary>4xx, a timeout, no connection, a refusal before RCPT, the rate limit: not known now.</summary>
    Unknown,
}

/// <summary>The answer of one probe (or of the cache), with the remote reply or the reason for the log.</summary>
/// <param name="Reply">The server's reply to RCPT (one line, cut to <see cref="VerificationRules.MaxReplyLength"/>), or why nothing is known.</param>
/// <param name="Host">The server that answered (<c>host[ip]:port</c>), when one did.</param>
public sealed record VerifyResult(VerifyStatus Status, string Reply, string? Host = null)
{
    /// <summary>When a cached answer expires (null: a fresh answer, not read from the cache).</summary>
    public DateTimeOffset? Expires { get; init; }
}

/// <summary>
/// The decision table of recipient verification, pure (Postfix ADDRESS_VERIFICATION_README, <c>reject_unverified_recipient</c>):
/// <list type="table">
/// <item><term>2xx to RCPT</term><description>accept; cached for the domain's positive lifetime (7 d)</description></item>
/// <item><term>5xx to RCPT</term><description><c>550 5.1.1 &lt;rcpt&gt;: Recipient address rejected: undeliverable address: &lt;reply&gt;</c>; cached for the negative lifetime (3 h)</description></item>
/// <item><term>4xx, timeout, no connection, 5xx before RCPT</term><description><c>450 4.1.1 … unverified address: &lt;why&gt;</c>; cached <see cref="VerificationOptions.TempfailTtl"/> (1 min)</description></item>
/// <item><term>probe still running after <see cref="VerificationOptions.ProbeWait"/>, rate limit, Redis down</term><description><c>450 4.1.1</c>, nothing cached</description></item>
/// </list>
/// A 5xx before RCPT (to the greeting, EHLO or <c>MAIL FROM:&lt;&gt;</c>) says nothing about the recipient: unknown, never
/// "undeliverable", so a server that refuses the null sender defers mail instead of losing it.
/// </summary>
public static class VerificationRules
{
    /// <summary>Remote replies kept in the cache, the log and the 550 text (as delivery keeps them short, requirements §11).</summary>
    public const int MaxReplyLength = 200;

    public const string UndeliverablePrefix = "undeliverable address: ";
    public const string UnverifiedPrefix = "unverified address: ";
    public const string Pending = "verification in progress, try again later";
    public const string RateLimited = "too many verifications for the domain, try again later";
    public const string Unavailable = "verification temporarily unavailable";

    /// <summary>The status of a reply to RCPT.</summary>
    public static VerifyStatus Classify(int code) => code switch
    {
        >= 200 and < 300 => VerifyStatus.Deliverable,
        >= 500 and < 600 => VerifyStatus.Undeliverable,
        _ => VerifyStatus.Unknown,
    };

    /// <summary>How long an answer is kept.</summary>
    public static TimeSpan Lifetime(VerifyStatus status, RecipientVerificationSettings settings, VerificationOptions options)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(options);
        return status switch
        {
            VerifyStatus.Deliverable => settings.EffectivePositiveTtl,
            VerifyStatus.Undeliverable => settings.EffectiveNegativeTtl,
            _ => options.TempfailTtl,
        };
    }

    /// <summary>
    /// A cached "deliverable" that is older than <paramref name="refreshAfter"/> (Postfix's
    /// <c>address_verify_positive_refresh_time</c>): it still answers the RCPT, and a probe renews it in the background. Its age
    /// is the positive lifetime minus what is left of it (the cache keeps the expiry only, so a lifetime changed since
    /// moves the refresh, never the answer).
    /// </summary>
    public static bool NeedsRefresh(VerifyResult cached, TimeSpan positiveLifetime, TimeSpan refreshAfter, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(cached);
        return cached is { Status: VerifyStatus.Deliverable, Expires: { } expires } && refreshAfter > TimeSpan.Zero && refreshAfter < positiveLifetime &&
               positiveLifetime - (expires - now) >= refreshAfter;
    }

    /// <summary>True when <paramref name="decision"/> is an inbound accept at a domain that verifies recipients.</summary>
    public static bool Applies(RelayDecision decision)
    {
        ArgumentNullException.ThrowIfNull(decision);
        return decision is { Outcome: RelayOutcome.Accept, Direction: Mail.Direction.Inbound, Domain: { } d } && d.Config.Settings.RecipientVerification.Enabled;
    }

    /// <summary>The relay decision after verification: the accept unchanged, or a refusal with Postfix's wording.</summary>
    public static RelayDecision Apply(RelayDecision accepted, VerifyResult result)
    {
        ArgumentNullException.ThrowIfNull(accepted);
        ArgumentNullException.ThrowIfNull(result);
        return result.Status switch
        {
            VerifyStatus.Deliverable => accepted,
            VerifyStatus.Undeliverable => accepted with
            {
                Outcome = RelayOutcome.Reject, Reason = RelayReason.UnverifiedRecipient, ReplyText = UndeliverablePrefix + result.Reply,
                LogDetail = "recipient verification: the domain's server refused the recipient" + (result.Host is { } h ? " (" + h + ")" : string.Empty),
            },
            _ => Later(accepted, result.Reply, result.Host),
        };
    }

    /// <summary>A temporary refusal (450 4.1.1) with <paramref name="why"/>.</summary>
    public static RelayDecision Later(RelayDecision accepted, string why, string? host = null)
    {
        ArgumentNullException.ThrowIfNull(accepted);
        return accepted with
        {
            Outcome = RelayOutcome.TryLater, Reason = RelayReason.UnverifiedRecipient, ReplyText = UnverifiedPrefix + why,
            LogDetail = "recipient verification: not known now" + (host is { } h ? " (" + h + ")" : string.Empty),
        };
    }

    /// <summary>One line of printable text, at most <see cref="MaxReplyLength"/> characters (marked when cut).</summary>
    public static string Clean(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var chars = text.Select(c => c < ' ' || c == '\x7f' ? ' ' : c).ToArray();
        var s = new string(chars).Trim();
        return s.Length <= MaxReplyLength ? s : string.Concat(s.AsSpan(0, MaxReplyLength - 3), "...");
    }

    /// <summary>The cache's form of an answer: <c>&lt;D|U|T&gt;|&lt;expires, unix ms&gt;|&lt;host&gt;|&lt;reply&gt;</c>.</summary>
    public static string Format(VerifyResult result, DateTimeOffset expires)
    {
        ArgumentNullException.ThrowIfNull(result);
        var code = result.Status switch { VerifyStatus.Deliverable => 'D', VerifyStatus.Undeliverable => 'U', _ => 'T' };
        return string.Create(CultureInfo.InvariantCulture, $"{code}|{expires.ToUnixTimeMilliseconds()}|{(result.Host ?? string.Empty).Replace('|', ' ')}|{result.Reply}");
    }

    /// <summary>A cached answer that is still valid at <paramref name="now"/>, or null (absent, expired, unreadable).</summary>
    public static VerifyResult? Parse(string? value, DateTimeOffset now)
    {
        if (string.IsNullOrEmpty(value))
        {
            return null;
        }

        var parts = value.Split('|', 4);
        if (parts.Length != 4 || parts[0].Length != 1 || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var expires) ||
            expires <= now.ToUnixTimeMilliseconds())
        {
            return null;
        }

        VerifyStatus? status = parts[0][0] switch { 'D' => VerifyStatus.Deliverable, 'U' => VerifyStatus.Undeliverable, 'T' => VerifyStatus.Unknown, _ => null };
        return status is { } s ? new VerifyResult(s, parts[3], parts[2].Length == 0 ? null : parts[2]) { Expires = DateTimeOffset.FromUnixTimeMilliseconds(expires) } : null;
    }
}
