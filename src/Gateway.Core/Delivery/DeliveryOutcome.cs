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

/// <summary>An outcome with what the server (or the local failure) said, kept for the log and the DSN.</summary>
public readonly record struct DeliveryOutcome(OutcomeKind Kind, string Reply)
{
    public static DeliveryOutcome Delivered(string reply) => new(OutcomeKind.Delivered, reply);

    public static DeliveryOutcome Transient(string reply) => new(OutcomeKind.Transient, reply);

    public static DeliveryOutcome Permanent(string reply) => new(OutcomeKind.Permanent, reply);
}
