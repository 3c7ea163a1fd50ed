using Gateway.Core.MessageLog;
using Gateway.Core.Snapshot;
using Gateway.Core.Mail;

namespace Gateway.Core.Relay;

/// <summary>What the gateway answers to one relay question, in MTA-neutral terms.</summary>
public enum RelayOutcome
{
    /// <summary>Not a recipient question (CONNECT, MAIL, DATA …): no opinion (Postfix <c>DUNNO</c>).</summary>
    NotApplicable = 0,

    /// <summary>Relay this recipient.</summary>
    Accept,

    /// <summary>Refuse this recipient permanently (5xx).</summary>
    Reject,

    /// <summary>
    /// Cannot decide now (no configuration loaded, a configuration error): the client must try again
    /// later. Never a false accept, never a permanent refusal caused by the gateway's own trouble (requirements §4.5).
    /// </summary>
    TryLater,
}

/// <summary>Why the decision came out as it did (metrics, logs, tests).</summary>
public enum RelayReason
{
    NotRecipientStage = 0,
    NotLoaded,
    UnknownScope,

    /// <summary>requirements §4.1: the recipient's domain is managed with inbound enabled.</summary>
    Inbound,

    /// <summary>requirements §4.2: the sender's domain is managed, verified, outbound enabled, and the client is one of its sources.</summary>
    Outbound,

    /// <summary>requirements §4.3: neither rule applies.</summary>
    NoDomain,

    /// <summary>requirements §4.4: an envelope check (a domain rule) refused a recipient the relay rules accepted.</summary>
    EnvelopeRule,

    /// <summary>
    /// The recipient's local part holds routing syntax (<c>%</c>, <c>!</c>, <c>@</c>): refused whatever the domain, as
    /// Postfix's <c>allow_untrusted_routing = no</c> refuses it for relay domains (requirements §11.3).
    /// </summary>
    SenderRouting,

    /// <summary>The sender or the recipient is not a valid address (<see cref="RelayRequest.Problem"/>).</summary>
    BadAddress,

    /// <summary>
    /// The recipient's domain is managed with inbound on, but no row of it routes this recipient: refused with
    /// <c>550 5.1.1</c> (requirements §3.6), by the policy service and the intake alike, so nothing is accepted that
    /// would later bounce to a possibly forged sender.
    /// </summary>
    UnknownRecipient,

    /// <summary>
    /// The domain verifies recipients at RCPT (<see cref="Domains.RecipientVerificationSettings"/>) and the customer's server
    /// refused this one (<see cref="RelayOutcome.Reject"/>, <c>550 5.1.1 … undeliverable address</c>), or its answer is not
    /// known yet (<see cref="RelayOutcome.TryLater"/>, <c>450 4.1.1 … unverified address</c>): Postfix's
    /// <c>reject_unverified_recipient</c> (Verification/RecipientVerifier.cs).
    /// </summary>
    UnverifiedRecipient,
}

/// <summary>
/// A refusal as an SMTP reply code, enhanced status code (RFC 3463) and text: what a Postfix policy action becomes on
/// the wire, so every front end (the policy service, the Deliverer's intake) words one decision the same way.
/// </summary>
public readonly record struct SmtpRefusal(int Code, string Status, string Text)
{
    /// <summary>Postfix's wording of an access action at RCPT: <c>554 5.7.1 &lt;rcpt&gt;: Recipient address rejected: NO-DOMAIN</c>.</summary>
    public string ForRecipient(string recipient) => $"{Code} {Status} <{recipient}>: Recipient address rejected: {Text}";

    public bool IsPermanent => Code >= 500;
}

/// <summary>
/// The outcome plus everything a front end needs to answer and a log needs to explain it. What the SMTP
/// client is told (<see cref="ReplyText"/>, or the front end's fixed text) is kept apart from the
/// explanation for the customer's log (<see cref="InboundRefusal"/>, <see cref="OutboundRefusal"/>,
/// <see cref="LogDetail"/>).
/// </summary>
public sealed record RelayDecision
{
    public static readonly RelayDecision NotApplicable = new() { Outcome = RelayOutcome.NotApplicable, Reason = RelayReason.NotRecipientStage };

    public static readonly RelayDecision NotLoaded = new() { Outcome = RelayOutcome.TryLater, Reason = RelayReason.NotLoaded };

    public static readonly RelayDecision UnknownScope = new() { Outcome = RelayOutcome.TryLater, Reason = RelayReason.UnknownScope };

    /// <summary>NO-DOMAIN with neither domain managed: nothing to explain to any customer.</summary>
    public static readonly RelayDecision NoDomainUnmanaged = new() { Outcome = RelayOutcome.Reject, Reason = RelayReason.NoDomain };

    public static readonly RelayDecision SenderRouting = new() { Outcome = RelayOutcome.Reject, Reason = RelayReason.SenderRouting };

    /// <summary>The text of a refused recipient when no domain manages either side (requirements §4.3).</summary>
    public const string NoDomainText = "NO-DOMAIN";

    public const string SenderRoutingText = "Sender-specified routing is not allowed";

    /// <summary>Postfix's text for a recipient its recipient tables do not know (<c>550 5.1.1 ... unknown recipient</c>).</summary>
    public const string UnknownRecipientText = "unknown recipient";
    public const string BadSenderText = "Bad sender address syntax";
    public const string BadRecipientText = "Bad recipient address syntax";

    public static readonly RelayDecision BadSender = new() { Outcome = RelayOutcome.Reject, Reason = RelayReason.BadAddress, ReplyText = BadSenderText };

    public static readonly RelayDecision BadRecipient = new() { Outcome = RelayOutcome.Reject, Reason = RelayReason.BadAddress, ReplyText = BadRecipientText };
    public const string NotLoadedText = "Gateway configuration not loaded yet, try again later";
    public const string UnknownScopeText = "Gateway policy service misconfigured (unknown policy_context)";

    /// <summary>
    /// What the SMTP client is told for a refusal (null for accepts and non-RCPT questions), in Postfix's codes: a
    /// <c>REJECT</c> action is 554 5.7.1, a <c>DEFER_IF_PERMIT</c> action 450 4.7.1, a rule's refusal 550 5.7.1.
    /// </summary>
    public SmtpRefusal? Refusal => (Outcome, Reason) switch
    {
        (RelayOutcome.Reject, RelayReason.NoDomain) => new SmtpRefusal(554, "5.7.1", NoDomainText),
        (RelayOutcome.Reject, RelayReason.SenderRouting) => new SmtpRefusal(550, "5.7.1", SenderRoutingText),
        (RelayOutcome.Reject, RelayReason.UnknownRecipient) => new SmtpRefusal(550, "5.1.1", UnknownRecipientText),
        (RelayOutcome.Reject, RelayReason.UnverifiedRecipient) => new SmtpRefusal(550, "5.1.1", OneLine(ReplyText)),
        (RelayOutcome.TryLater, RelayReason.UnverifiedRecipient) => new SmtpRefusal(450, "4.1.1", OneLine(ReplyText)),
        (RelayOutcome.Reject, RelayReason.BadAddress) => ReplyText == BadSenderText ? new SmtpRefusal(550, "5.1.7", BadSenderText) : new SmtpRefusal(550, "5.1.3", BadRecipientText),
        (RelayOutcome.Reject, _) => new SmtpRefusal(550, "5.7.1", OneLine(ReplyText)),
        (RelayOutcome.TryLater, RelayReason.NotLoaded) => new SmtpRefusal(450, "4.7.1", NotLoadedText),
        (RelayOutcome.TryLater, RelayReason.UnknownScope) => new SmtpRefusal(450, "4.7.1", UnknownScopeText),
        (RelayOutcome.TryLater, _) => new SmtpRefusal(450, "4.7.1", OneLine(ReplyText)),
        _ => null,
    };

    /// <summary>Reply text must be one line: CR, LF and NUL would break SMTP and the policy protocol.</summary>
    private static string OneLine(string? text)
    {
        var s = string.IsNullOrWhiteSpace(text) ? "Refused by policy" : text;
        return s.Replace('\r', ' ').Replace('\n', ' ').Replace('\0', ' ').Trim();
    }

    public required RelayOutcome Outcome { get; init; }

    public required RelayReason Reason { get; init; }

    /// <summary>Set when a domain granted the relay.</summary>
    public Direction? Direction { get; init; }

    /// <summary>The managed domain that granted the relay (whose rules and log apply).</summary>
    public DomainEntry? Domain { get; init; }

    /// <summary>The recipient's domain when it is managed (whether or not it granted anything).</summary>
    public DomainEntry? RecipientDomain { get; init; }

    /// <summary>The sender's domain when it is managed (whether or not it granted anything).</summary>
    public DomainEntry? SenderDomain { get; init; }

    /// <summary>Why a managed recipient domain did not grant inbound relay (for that domain's log).</summary>
    public string? InboundRefusal { get; init; }

    /// <summary>Why a managed sender domain did not grant outbound relay (for that domain's log).</summary>
    public string? OutboundRefusal { get; init; }

    /// <summary>Text for the SMTP client when an envelope check refused (front ends add codes as their MTA wants).</summary>
    public string? ReplyText { get; init; }

    /// <summary>Explanation for the log when an envelope check refused (rule id, condition).</summary>
    public string? LogDetail { get; init; }
}
