using System.Net;
using Gateway.Core.Routing;
using Gateway.Core.Mail;
using Gateway.Core.Snapshot;
using Gateway.Core.Tls;
using Gateway.Core.Domains;

namespace Gateway.Core.Delivery;

/// <summary>Where a batch of recipients goes: the domain it is counted against (limits, dead hosts) and how it is routed.</summary>
public abstract record RouteDestination(string Domain);

/// <summary>Inbound: the managed domain's route for these recipients (requirements §3.5), hosts in preference groups.</summary>
public sealed record InboundDestination(string Domain, IReadOnlyList<RouteGroup> Plan) : RouteDestination(Domain)
{
    /// <summary>The domain's inbound rows: each host's <c>tls</c> mode comes from them (requirements §10).</summary>
    public IReadOnlyList<InboundServer> Rows { get; init; } = [];

    /// <summary>The groups of several hosts: each takes one round robin turn per message (fleet-wide counter).</summary>
    public IEnumerable<RouteGroup> TurnsNeeded => Plan.Where(g => g.NeedsTurn);
}

/// <summary>Outbound: the recipients' domain, by its MX (RFC 5321 §5.1).</summary>
public sealed record OutboundDestination(string Domain) : RouteDestination(Domain);

/// <summary>Recipients that travel together in one transaction, or that get an outcome without any connection.</summary>
/// <param name="Recipients">Pending recipients, as queued.</param>
/// <param name="Destination">How they are routed; null when <paramref name="Outcome"/> is set.</param>
/// <param name="Outcome">The outcome for all of them without a connection (no route, inbound off, no domain, outbound off).</param>
public sealed record RouteBatch(IReadOnlyList<string> Recipients, RouteDestination? Destination, DeliveryOutcome? Outcome)
{
    /// <summary>Held because the owning domain's outbound relay is off (<see cref="RouteChoice.OutboundHold"/>).</summary>
    public bool Held { get; init; }
}

/// <summary>
/// The route choice of one delivery attempt as pure functions (requirements §3.5, §6.4, §6.5): from the snapshot and the queued
/// message to batches of recipients (<see cref="Batches"/>); from an inbound batch and its round robin turns to the
/// hosts in try order (<see cref="Hosts"/>); from what DNS said to the endpoints to try, with the loop check and the cap
/// on addresses per attempt (<see cref="InboundEndpoints"/>, <see cref="OutboundEndpoints"/>). The Deliverer only does
/// the I/O between them: the turn counters in Redis, DNS, SMTP.
/// </summary>
public static class RouteChoice
{
    /// <summary>
    /// requirements §3.10, outbound off means off: an outbound copy of a domain whose outbound relay is off waits (a
    /// temporary outcome), also when it was queued or released from the quarantine before; turning outbound on again
    /// sends it, and the message lifetime still applies. Null when it may leave. The gateway's own DSNs are not the
    /// customer's outbound mail (an inbound-only domain's bounces go out this way).
    /// </summary>
    public static DeliveryOutcome? OutboundHold(QueuedMessage message, ConfigSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(snapshot);
        return message.Direction == Direction.Outbound && !message.IsDsn && snapshot.Find(message.Domain) is { } entry && !entry.Outbound.Enabled
            ? DeliveryOutcome.Transient($"Outbound is disabled for {entry.Name}: held until outbound is turned on again")
            : null;
    }

    /// <summary>
    /// The pending recipients of <paramref name="message"/> in batches. Outbound: one batch per recipient domain.
    /// Inbound: one batch per managed domain and route (recipients with the same route travel in one transaction); a
    /// recipient whose domain is not managed (any more), has inbound off, or that no row matches is deferred (transient):
    /// a change saved while mail waits applies at the next attempt (requirements §3.14), and turning inbound on again
    /// delivers it.
    /// </summary>
    public static IReadOnlyList<RouteBatch> Batches(QueuedMessage message, ConfigSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(snapshot);
        var pending = message.Pending.Select(r => r.Address).ToList();
        var batches = new List<RouteBatch>();
        if (message.Direction == Direction.Outbound && OutboundHold(message, snapshot) is { } hold)
        {
            return [new RouteBatch(pending, null, hold) { Held = true }];
        }

        if (message.Direction == Direction.Outbound)
        {
            foreach (var byDomain in pending.GroupBy(r => EnvelopeAddress.DomainOf(r).ToLowerInvariant()))
            {
                batches.Add(byDomain.Key.Length == 0
                    ? new RouteBatch(byDomain.ToList(), null, DeliveryOutcome.Permanent("550 5.1.3 Recipient address has no domain"))
                    : new RouteBatch(byDomain.ToList(), new OutboundDestination(byDomain.Key), null));
            }

            return batches;
        }

        var byRoute = new Dictionary<string, (List<string> Recipients, InboundDestination Destination)>(StringComparer.Ordinal);
        foreach (var r in pending)
        {
            var domain = EnvelopeAddress.DomainOf(r);
            var entry = snapshot.FindEnvelopeDomain(domain);
            if (entry is not { InboundEnabled: true })
            {
                batches.Add(new RouteBatch([r], null, DeliveryOutcome.Transient(entry is null
                    ? $"No inbound route: {domain} is not a managed domain (any more)"
                    : $"No inbound route: inbound is disabled for {entry.Name}")));
                continue;
            }

            var plan = RoutePlanner.Plan(r, entry.Name, entry.Config.Settings.InboundServers);
            if (plan.Count == 0)
            {
                batches.Add(new RouteBatch([r], null, DeliveryOutcome.Transient($"No inbound server of {entry.Name} matches {r}")));
                continue;
            }

            var key = entry.Name + "/" + RoutePlanner.PlanKey(plan);
            if (!byRoute.TryGetValue(key, out var bucket))
            {
                bucket = ([], new InboundDestination(entry.Name, plan) { Rows = entry.Config.Settings.InboundServers });
                byRoute[key] = bucket;
            }

            bucket.Recipients.Add(r);
        }

        batches.AddRange(byRoute.Values.Select(b => new RouteBatch(b.Recipients, b.Destination, null)));
        return batches;
    }

    /// <summary>
    /// The hosts of an inbound route in try order for this message: groups by preference, a group of several hosts
    /// rotated by its turn (requirements §3.5: round robin message by message across the fleet). A group without a
    /// turn in <paramref name="turns"/> starts at its first host.
    /// </summary>
    /// <param name="turns">Per <see cref="RouteGroup.Key"/>: the group's counter for this message, counting from 0.</param>
    public static IReadOnlyList<RouteHost> Hosts(InboundDestination destination, IReadOnlyDictionary<string, long> turns)
    {
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentNullException.ThrowIfNull(turns);
        return RoutePlanner.Order(destination.Plan, g => turns.TryGetValue(g.Key, out var t) ? t : 0);
    }

    /// <summary>
    /// The endpoints to try for an inbound route, in order: each host's addresses as DNS gave them; a host that did not
    /// resolve keeps its place with its transient failure (the next host is tried, requirements §3.5); a host or address
    /// of the gateway itself gets the permanent loop failure and nothing after it is tried. At most
    /// <paramref name="maxAddresses"/> addresses are tried per attempt, so one attempt stays short whatever the rows and
    /// DNS hold (Postfix: <c>smtp_mx_address_limit</c>). Each endpoint carries the TLS its row asks for
    /// (<paramref name="rows"/>' <c>tls</c>, <see cref="TlsPolicy.ForInboundHost"/>; opportunistic without rows).
    /// </summary>
    public static IReadOnlyList<Endpoint> InboundEndpoints(string domain, IReadOnlyList<(RouteHost Host, Resolution Resolution)> resolved, GatewaySelf self, int maxAddresses,
        IReadOnlyList<InboundServer>? rows = null)
    {
        ArgumentNullException.ThrowIfNull(resolved);
        ArgumentNullException.ThrowIfNull(self);
        var endpoints = new List<Endpoint>();
        var addresses = 0;
        foreach (var (host, resolution) in resolved)
        {
            if (self.IsSelfName(host.Host))
            {
                endpoints.Add(Placeholder(host) with { Failure = GatewaySelf.Loop(domain, $"{host} is this gateway") });
                return endpoints;
            }

            if (resolution.Failure is { } failure)
            {
                endpoints.Add(Placeholder(host) with { Failure = failure });
                continue;
            }

            foreach (var e in resolution.Endpoints)
            {
                if (addresses == maxAddresses)
                {
                    return endpoints;
                }

                if (self.IsSelf(e.Address))
                {
                    endpoints.Add(e with { Failure = GatewaySelf.Loop(domain, e.ToString()) });
                    return endpoints;
                }

                endpoints.Add(rows is null ? e : e with { Tls = TlsPolicy.ForInboundHost(rows, host) });
                addresses++;
            }
        }

        return endpoints;
    }

    /// <summary>
    /// The endpoints to try for an outbound domain: its MX endpoints in order, capped at <paramref name="maxAddresses"/>;
    /// or the outcome for the whole batch when DNS gave none (NXDOMAIN and null MX permanent, the rest transient) or the
    /// best MX is the gateway itself (a loop). MX hosts less preferred than the gateway are not tried.
    /// </summary>
    public static (IReadOnlyList<Endpoint> Endpoints, DeliveryOutcome? Outcome) OutboundEndpoints(string domain, Resolution mx, GatewaySelf self, int maxAddresses)
    {
        ArgumentNullException.ThrowIfNull(mx);
        ArgumentNullException.ThrowIfNull(self);
        if (mx.Failure is { } failure)
        {
            return ([], failure);
        }

        var endpoints = new List<Endpoint>();
        foreach (var e in mx.Endpoints.Take(maxAddresses))
        {
            if (self.IsSelfName(e.HostName) || self.IsSelf(e.Address))
            {
                var loop = GatewaySelf.Loop(domain, e.ToString());
                if (endpoints.Count == 0)
                {
                    return ([], loop);
                }

                // Postfix tries only the MX hosts more preferred than itself (and bounces when it is the best one).
                break;
            }

            endpoints.Add(e);
        }

        return (endpoints, endpoints.Count == 0 ? DeliveryOutcome.Transient($"No address for the MX hosts of {domain}") : null);
    }

    /// <summary>The place of a host in the failover order when it has no address to connect to.</summary>
    private static Endpoint Placeholder(RouteHost host) => new(host.Host, new IPEndPoint(IPAddress.None, host.Port));
}
