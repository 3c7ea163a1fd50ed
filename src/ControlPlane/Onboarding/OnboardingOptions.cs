using System.ComponentModel.DataAnnotations;

namespace Gateway.ControlPlane.Onboarding;

/// <summary>
/// Domain onboarding: verification, health checks and the connection test (<c>Gateway:Onboarding</c>).
/// The gateway's own sending addresses, against which SPF is evaluated, are
/// <see cref="GatewayOptions.SendingAddresses"/>.
/// </summary>
public sealed class OnboardingOptions
{
    public const string Section = "Gateway:Onboarding";

    /// <summary>
    /// Run the background job that re-verifies unverified domains and refreshes every domain's stored
    /// health. Test hosts without a test DNS server turn it off so nothing is asked of the real DNS.
    /// </summary>
    public bool BackgroundChecks { get; set; } = true;

    /// <summary>How often the background job looks for domains that are due (the first round runs one interval after start).</summary>
    public TimeSpan RoundInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often an unverified domain's DNS is checked again for the TXT record or MX (requirements §3.2).</summary>
    public TimeSpan UnverifiedRecheckInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How old a domain's stored health may get before the background job checks it again. A saved change
    /// to the domain makes it due at the next round whatever its age.
    /// </summary>
    public TimeSpan HealthRefreshInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Per-host limit of the connection test, DNS resolution of a host name included.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a ControlPlane holds a domain's check lock in Redis; several ControlPlanes share the
    /// background work by locking domain by domain. Longer than a check can take.
    /// </summary>
    public TimeSpan CheckLockTime { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Domains checked at the same time by one ControlPlane's background job.</summary>
    [Range(1, 64)]
    public int MaxParallelChecks { get; set; } = 4;
}
