using Gateway.Core.Mail;

namespace Gateway.Core.Relay;

/// <summary>The SMTP stage a relay question is asked at. Only <see cref="Rcpt"/> gets a relay decision.</summary>
public enum SmtpStage
{
    Other = 0,
    Connect,
    Helo,
    Mail,
    Rcpt,
    Data,
    EndOfMessage,
}

/// <summary>
/// Which direction a front end lets the rules grant. Postfix sets it per listener with
/// <c>policy_context</c> (requirements §4): an MX-only listener asks for <see cref="Inbound"/>, a relay
/// listener for customers' servers for <see cref="Outbound"/>.
/// </summary>
public enum RelayScope
{
    /// <summary>Both rules apply (one listener for the internet and the customers' servers).</summary>
    Any = 0,
    Inbound,
    Outbound,

    /// <summary>The front end named a scope this gateway does not know: a configuration error.</summary>
    Unknown,
}

/// <summary>An envelope address that is not a valid address (<see cref="EnvelopeAddress"/>).</summary>
public enum EnvelopeProblem
{
    None = 0,
    BadSender,
    BadRecipient,
}

/// <summary>
/// One relay question in MTA-neutral terms: the envelope and the client of one recipient. Front ends
/// (Postfix policy delegation today; a milter or an HTTP check later) translate their protocol into it.
/// </summary>
public sealed record RelayRequest
{
    public SmtpStage Stage { get; init; }

    public RelayScope Scope { get; init; }

    /// <summary>Envelope sender (MAIL FROM) in canonical form (<see cref="EnvelopeAddress"/>); empty for the null sender <c>&lt;&gt;</c>.</summary>
    public string Sender { get; init; } = string.Empty;

    /// <summary>Envelope recipient (RCPT TO) in canonical form (<see cref="EnvelopeAddress"/>).</summary>
    public string Recipient { get; init; } = string.Empty;

    /// <summary>The SMTP client's IP address as text (IPv4 dotted quad or IPv6).</summary>
    public string ClientAddress { get; init; } = string.Empty;

    /// <summary>Verified client host name, when the front end knows it (for rules and logs).</summary>
    public string? ClientName { get; init; }

    public string? HeloName { get; init; }

    /// <summary>Message size announced with MAIL FROM (SIZE=), when known.</summary>
    public long? Size { get; init; }

    /// <summary>When the question is asked; rules with a time limit (the unverified-inbound grace period) need it. Null: no time limit applies.</summary>
    public DateTimeOffset? Time { get; init; }
    /// <summary>Which envelope address the front end could not put in canonical form, if any (refused at RCPT).</summary>
    public EnvelopeProblem Problem { get; init; }

    /// <summary>The MTA's own id of the transaction (Postfix queue id), when known; for logs.</summary>
    public string? QueueId { get; init; }

    /// <summary>The domain of <see cref="Recipient"/> (after the last '@'); empty when there is none.</summary>
    public string RecipientDomain => EnvelopeAddress.DomainOf(Recipient);

    /// <summary>The domain of <see cref="Sender"/>; empty for the null sender.</summary>
    public string SenderDomain => EnvelopeAddress.DomainOf(Sender);
}
