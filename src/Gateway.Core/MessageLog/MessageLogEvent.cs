using Gateway.Core.Mail;

namespace Gateway.Core.MessageLog;

/// <summary>Event names of the message log (requirements §7). Stable: clients filter on them.</summary>
public static class MessageLogEvents
{
    public const string PolicyReject = "policy_reject";
    public const string PolicyAccept = "policy_accept";
    public const string Intake = "intake";
    public const string Attempt = "attempt";
    public const string Deferred = "deferred";
    public const string Delivered = "delivered";
    public const string Bounced = "bounced";
    public const string Expired = "expired";
    public const string Quarantined = "quarantined";
    public const string Released = "released";
    public const string Deleted = "deleted";

    /// <summary>An operator made a queued message due now (RetryNow).</summary>
    public const string Retry = "retry";

    /// <summary>The intake's protection verdict (requirements §9): score, action, main symbols, malware name (docs/protection.md).</summary>
    public const string Scanned = "scanned";

    /// <summary>Recipient verification: the customer's server accepted the recipient at RCPT (one per probe; docs/operations.md).</summary>
    public const string Verified = "verified";

    /// <summary>Recipient verification: the server refused the recipient (detail <c>undeliverable</c>) or gave no answer (<c>unknown</c>).</summary>
    public const string VerifyFailed = "verify_failed";

    /// <summary>Every event name, for validating filters.</summary>
    public static readonly IReadOnlySet<string> All = new HashSet<string>(StringComparer.Ordinal)
    {
        PolicyReject, PolicyAccept, Intake, Attempt, Deferred, Delivered, Bounced, Expired, Quarantined, Released, Deleted, Retry, Scanned, Verified, VerifyFailed,
    };
}

/// <summary>
/// One step of one message, written to the managed domain's log stream. Only <see cref="Domain"/> and
/// <see cref="Event"/> are required; empty fields are not stored.
/// </summary>
public sealed record MessageLogEvent
{
    public required string Domain { get; init; }

    public required string Event { get; init; }

    public DateTimeOffset Time { get; init; } = DateTimeOffset.UtcNow;

    /// <summary>The gateway's message id (assigned at intake), when there is a message.</summary>
    public string? MessageId { get; init; }

    public Direction? Direction { get; init; }

    public string? Sender { get; init; }

    public string? Recipient { get; init; }

    /// <summary>The SMTP client's address (policy decisions, intake).</summary>
    public string? ClientAddress { get; init; }

    /// <summary>The remote host of a delivery attempt, <c>host:port</c>.</summary>
    public string? Host { get; init; }

    /// <summary>The SMTP reply or the decision text.</summary>
    public string? Reply { get; init; }

    /// <summary>Anything else worth keeping (rule id, error class, next attempt time).</summary>
    public string? Detail { get; init; }

    /// <summary>Which program wrote it (policydaemon, deliverer, controlplane).</summary>
    public string? Program { get; init; }

    /// <summary>
    /// Postfix's queue id: from XFORWARD IDENT at the Deliverer's intake, or from a policy request that
    /// carried one. Links Postfix's log and the policy decision to the gateway's message id.
    /// </summary>
    public string? PostfixQueueId { get; init; }

    /// <summary>Delivery attempts: the connection's TLS (<c>TLSv1.3 verified</c>, <c>TLSv1.2 not verified</c>, <c>none</c>; requirements §10).</summary>
    public string? Tls { get; init; }

    /// <summary>Output only: the entry id in the domain's stream (<c>&lt;unix ms&gt;-&lt;seq&gt;</c>), set when read back.</summary>
    public string? Id { get; init; }
}
