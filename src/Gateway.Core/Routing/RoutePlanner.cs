using System.Globalization;
using System.IO.Hashing;
using System.Text;
using Gateway.Core.Domains;

namespace Gateway.Core.Routing;

/// <summary>One server of a route: an IP address or a host name (resolved to A/AAAA at delivery, requirements §3) and a port.</summary>
public readonly record struct RouteHost(string Host, int Port)
{
    public override string ToString() => Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}

/// <summary>
/// The servers of one preference in a recipient's route. With more than one host the group is served
/// round robin across the fleet, with a Redis counter named by <see cref="Key"/>.
/// </summary>
/// <param name="Preference">Lower is tried first.</param>
/// <param name="Hosts">In canonical order (host, then port), so every Deliverer rotates the same list.</param>
/// <param name="Key">Stable across processes: a hash of the domain-independent host list.</param>
public sealed record RouteGroup(int Preference, IReadOnlyList<RouteHost> Hosts, string Key)
{
    public bool NeedsTurn => Hosts.Count > 1;
}

/// <summary>
/// requirements §3.4 as pure functions: which rows apply to a recipient, in which order, and how a
/// round robin turn rotates a group. No I/O: the turn numbers come from Redis counters outside.
/// </summary>
public static class RoutePlanner
{
    /// <summary>
    /// The route of <paramref name="recipient"/>: every row whose recipient is the exact address or the
    /// <c>*@domain</c> catch-all, grouped by preference (ascending). A host:port that appears twice keeps
    /// only its lowest preference, so failover never returns to a host that already failed.
    /// Empty when no row matches.
    /// </summary>
    public static IReadOnlyList<RouteGroup> Plan(string recipient, string domain, IReadOnlyList<InboundServer> servers)
    {
        ArgumentNullException.ThrowIfNull(recipient);
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(servers);
        var exact = recipient.ToLowerInvariant();
        var catchAll = "*@" + domain.ToLowerInvariant();
        var best = new Dictionary<RouteHost, int>();
        foreach (var s in servers)
        {
            if (!string.Equals(s.Recipient, exact, StringComparison.OrdinalIgnoreCase) && !string.Equals(s.Recipient, catchAll, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            var host = new RouteHost(s.Host, s.Port == 0 ? InboundServer.DefaultPort : s.Port);
            var pref = s.Preference == 0 ? InboundServer.DefaultPreference : s.Preference;
            if (!best.TryGetValue(host, out var known) || pref < known)
            {
                best[host] = pref;
            }
        }

        return best
            .GroupBy(kv => kv.Value)
            .OrderBy(g => g.Key)
            .Select(g =>
            {
                var hosts = g.Select(kv => kv.Key).OrderBy(h => h.Host, StringComparer.Ordinal).ThenBy(h => h.Port).ToList();
                return new RouteGroup(g.Key, hosts, GroupKey(hosts));
            })
            .ToList();
    }

    /// <summary>
    /// Whether any row of the domain routes <paramref name="recipient"/> (its exact address or the <c>*@domain</c>
    /// catch-all): the same rows <see cref="Plan"/> picks, answered from the lookup sets the snapshot built once. A
    /// recipient without a row would never be delivered, so the relay rule refuses it at RCPT (requirements §3.6).
    /// </summary>
    public static bool HasRoute(string recipient, Snapshot.DomainEntry domain)
    {
        ArgumentNullException.ThrowIfNull(recipient);
        ArgumentNullException.ThrowIfNull(domain);
        return domain.HasCatchAll || domain.ExactRecipients.Contains(recipient);
    }

    /// <summary>
    /// The order in which hosts are tried for one message: groups by preference; inside a group of
    /// several hosts the list is rotated by the group's turn (message n starts at host n mod k, then the
    /// others follow, so a host that is down is skipped to the next one at once).
    /// </summary>
    /// <param name="turn">The round robin counter value of each group that <see cref="RouteGroup.NeedsTurn"/>.</param>
    public static IReadOnlyList<RouteHost> Order(IReadOnlyList<RouteGroup> plan, Func<RouteGroup, long> turn)
    {
        ArgumentNullException.ThrowIfNull(plan);
        ArgumentNullException.ThrowIfNull(turn);
        var order = new List<RouteHost>();
        foreach (var group in plan)
        {
            var n = group.Hosts.Count;
            var start = group.NeedsTurn ? (int)(((turn(group) % n) + n) % n) : 0;
            for (var i = 0; i < n; i++)
            {
                order.Add(group.Hosts[(start + i) % n]);
            }
        }

        return order;
    }

    /// <summary>A key for the plan as a whole, so recipients with the same route travel in one transaction.</summary>
    public static string PlanKey(IReadOnlyList<RouteGroup> plan) =>
        string.Join(';', plan.Select(g => g.Preference.ToString(CultureInfo.InvariantCulture) + "=" + g.Key));

    private static string GroupKey(IReadOnlyList<RouteHost> hosts)
    {
        var text = string.Join(',', hosts.Select(h => h.ToString()));
        return XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(text)).ToString("x16", CultureInfo.InvariantCulture);
    }
}
