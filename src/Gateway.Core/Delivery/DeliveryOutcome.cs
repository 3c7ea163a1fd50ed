namespace Gateway.Core.Delivery;

/// <summary>The one outcome type of delivery (STYLE: chasquid's courier returns <c>(err, permanent)</c>).</summary>
public enum OutcomeKind
{
    Delivered,

    /// <summary>Try the next host, then retry later (4xx, refused, timeout, broken connection).</summary>
    Transient,

    /// <summary>Bounce at once; no other host is tried (5xx, requirements §3).</summary>
    Permanent,
}

/// <summary>
/// An outcome with what the server (or the local failure) said, kept for the queue, the log and the DSN. The text comes
/// from remote servers, so it is kept to <see cref="MaxReplyLength"/> characters (requirements §11.9): a server that
/// answers with megabytes cannot grow a queued message, a log entry or a DSN by as much.
/// </summary>
public readonly record struct DeliveryOutcome
{
    /// <summary>The most characters of a reply that are kept.</summary>
    public const int MaxReplyLength = 1024;

    public DeliveryOutcome(OutcomeKind kind, string reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        Kind = kind;
        Reply = reply.Length <= MaxReplyLength ? reply : string.Concat(reply.AsSpan(0, MaxReplyLength - TruncatedMark.Length), TruncatedMark);
    }

    /// <summary>What a shortened reply ends with.</summary>
    public const string TruncatedMark = "…[truncated]";

    public OutcomeKind Kind { get; }

    public string Reply { get; }

    public static DeliveryOutcome Delivered(string reply) => new(OutcomeKind.Delivered, reply);

    public static DeliveryOutcome Transient(string reply) => new(OutcomeKind.Transient, reply);

    public static DeliveryOutcome Permanent(string reply) => new(OutcomeKind.Permanent, reply);
}
