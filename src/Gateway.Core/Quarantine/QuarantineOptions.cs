namespace Gateway.Core.Quarantine;

/// <summary>Quarantine settings (<c>Gateway:Quarantine</c>).</summary>
public sealed class QuarantineOptions
{
    public const string Section = "Gateway:Quarantine";

    /// <summary>How long a message stays in quarantine before it is deleted (requirements §7: 30 days by default).</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>A release that did not finish within this time (its ControlPlane died) may be taken over by another.</summary>
    public TimeSpan ReleaseClaimTimeout { get; set; } = TimeSpan.FromMinutes(2);

    public static bool IsValid(QuarantineOptions o) =>
        o is not null && o.Retention > TimeSpan.Zero && o.ReleaseClaimTimeout > TimeSpan.Zero;
}
