using System.ComponentModel.DataAnnotations;
using Gateway.Core.Errors;

namespace Gateway.ControlPlane.Application;

/// <summary>
/// Per-tenant limits (<c>Gateway:Limits</c>, docs/requirements.md §11): tenants share one fleet, so none may starve
/// the others with domains, rules, live log streams, configuration churn or checks. Over a limit the API answers
/// <c>RESOURCE_EXHAUSTED</c> naming the setting (<see cref="Exceeded"/>). The operator key is not limited: it is the
/// gateway's own administrator. Defaults are meant for a shared fleet; raise them for a single-company gateway.
/// </summary>
public sealed class TenantLimits
{
    public const string Section = "Gateway:Limits";

    /// <summary>Domains one tenant may register.</summary>
    [Range(1, 10_000_000)]
    public int DomainsPerTenant { get; set; } = 1000;

    /// <summary>Policy rules of one domain (each RCPT of the domain's mail walks them all).</summary>
    [Range(1, 100_000)]
    public int RulesPerDomain { get; set; } = 1000;

    /// <summary>
    /// Characters of everything a tenant writes into one domain's rules (patterns, networks, subject texts, attachment
    /// patterns, descriptions, reject texts). The rule matcher's cost per character of an address grows with it
    /// (docs/benchmarks.md "Worst-case rules"), and every PolicyDaemon and Deliverer reloads the list on each change.
    /// </summary>
    [Range(1024, 100_000_000)]
    public int RuleBytesPerDomain { get; set; } = 65_536;

    /// <summary>Live FollowLog streams one tenant may hold open at once, fleet-wide (every ControlPlane on the same Redis).</summary>
    [Range(1, 100_000)]
    public int FollowStreamsPerTenant { get; set; } = 10;

    /// <summary>Configuration changes (domains and rules created, changed, deleted) one tenant may make per minute, fleet-wide.</summary>
    [Range(1, 1_000_000)]
    public int ChangesPerMinute { get; set; } = 300;

    /// <summary>On-demand checks (VerifyDomain, CheckDomain, TestConnection, SendTestMessage) one tenant may ask for per minute, fleet-wide: each costs DNS lookups or connections.</summary>
    [Range(1, 1_000_000)]
    public int ChecksPerMinute { get; set; } = 60;

    /// <summary>Domains of one tenant the background job checks per round (the others wait for the next rounds).</summary>
    [Range(1, 1_000_000)]
    public int BackgroundChecksPerTenant { get; set; } = 50;

    /// <summary>How often a live FollowLog stream checks again that its key is valid and its domain still belongs to its tenant.</summary>
    public TimeSpan FollowRecheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a live stream's place in <see cref="FollowStreamsPerTenant"/> lasts without renewal (renewed every third
    /// of it): the places of a ControlPlane that died without ending its streams are free again after this.
    /// </summary>
    public TimeSpan FollowSlotLease { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The error for a limit that was reached: RESOURCE_EXHAUSTED naming the setting and its value.</summary>
    public static GatewayException Exceeded(string setting, long limit, string what) =>
        new(ErrorKind.ResourceExhausted, $"Limit {Section}:{setting} ({limit}) reached: {what}.", [new FieldViolation($"{Section}:{setting}", what)]);

    /// <summary>The size a rule list counts against <see cref="RuleBytesPerDomain"/>: the characters of every text a tenant wrote.</summary>
    public static long RuleBytes(IEnumerable<Gateway.Core.Rules.PolicyRule> rules)
    {
        ArgumentNullException.ThrowIfNull(rules);
        long n = 0;
        foreach (var r in rules)
        {
            n += r.Description.Length + r.SubjectContains.Length + r.RejectText.Length;
            n += r.Senders.Sum(s => (long)s.Length) + r.Recipients.Sum(s => (long)s.Length) + r.ClientIps.Sum(s => (long)s.Length) +
                 r.AttachmentNames.Sum(s => (long)s.Length);
        }

        return n;
    }
}
