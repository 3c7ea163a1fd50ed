using Gateway.Core.MessageLog;
using Gateway.Core.Snapshot;

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
    /// later. Never a false accept, never a permanent refusal caused by the gateway's own trouble (SPEC §4 rule 5).
    /// </summary>
    TryLater,
}

/// <summary>Why the decision came out as it did (metrics, logs, tests).</summary>
public enum RelayReason
{
    NotRecipientStage = 0,
    NotLoaded,
    UnknownScope,

    /// <summary>SPEC §4 rule 1: the recipient's domain is managed with inbound enabled.</summary>
    Inbound,

    /// <summary>SPEC §4 rule 2: the sender's domain is managed, verified, outbound enabled, and the client is one of its sources.</summary>
    Outbound,

    /// <summary>SPEC §4 rule 3: neither rule applies.</summary>
    NoDomain,

    /// <summary>SPEC §4 rule 4: an envelope check (a domain rule) refused a recipient the relay rules accepted.</summary>
    EnvelopeRule,
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

    public required RelayOutcome Outcome { get; init; }

    public required RelayReason Reason { get; init; }

    /// <summary><see cref="Directions.Inbound"/> or <see cref="Directions.Outbound"/> when a domain granted the relay.</summary>
    public string? Direction { get; init; }

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
