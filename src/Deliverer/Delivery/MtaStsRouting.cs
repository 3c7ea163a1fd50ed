using Gateway.Core.Delivery;
using Gateway.Core.MtaSts;

namespace Gateway.Deliverer.Delivery;

/// <summary>
/// Applies a recipient domain's MTA-STS policy to the MX endpoints of an outbound delivery (RFC 8461 §5; docs/outbound.md):
/// enforce keeps only the MX hosts the policy lists, each to be reached over TLS verified for its host name; with none left
/// the recipients are deferred with the reason in the message log. Testing keeps every host and reports.
/// </summary>
public static class MtaStsRouting
{
    public static async Task<(IReadOnlyList<Endpoint> Endpoints, DeliveryOutcome? Failure)> ApplyAsync(MtaStsPolicySource source, string domain,
        IReadOnlyList<Endpoint> endpoints, OutboundMetrics metrics, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(metrics);
        MtaStsPolicy? policy;
        try
        {
            policy = await source.GetAsync(domain, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is StackExchange.Redis.RedisException or StackExchange.Redis.RedisTimeoutException or TimeoutException)
        {
            // The fleet's policy cache is away: deliver later rather than without a policy the domain may have (no downgrade).
            return ([], DeliveryOutcome.Transient($"MTA-STS policy of {domain} unknown: the policy cache is unavailable ({e.GetType().Name}); retried later"));
        }

        if (policy is null || policy.Mode == MtaStsMode.None)
        {
            return (endpoints, null);
        }

        var hosts = endpoints.Select(e => e.HostName).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
        var plan = MtaStsRules.Plan(domain, policy, hosts).ToDictionary(p => p.Host, StringComparer.OrdinalIgnoreCase);
        var kept = new List<Endpoint>(endpoints.Count);
        foreach (var e in endpoints)
        {
            var p = plan[e.HostName];
            if (policy.Mode == MtaStsMode.Enforce)
            {
                metrics.MtaStsCheck("enforce", p.Allowed);
            }

            if (p.Allowed)
            {
                kept.Add(e with { Tls = p.Tls });
            }
        }

        return kept.Count > 0 ? (kept, null) : ([], DeliveryOutcome.Transient(MtaStsRules.NoMatchingMx(domain, policy, hosts)));
    }
}
