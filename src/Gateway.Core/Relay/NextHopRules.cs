using System.Net;
using System.Net.Sockets;
using System.Text;
using Gateway.Core.Domains;
using Gateway.Core.Mail;
using Gateway.Core.Routing;
using Gateway.Core.Snapshot;

namespace Gateway.Core.Relay;

/// <summary>Where accepted mail goes next (requirements §5).</summary>
public enum TransportMode
{
    /// <summary>Everything to the Deliverer's intake, which queues, routes and retries (the default).</summary>
    Deliverer = 0,

    /// <summary>
    /// Without a Deliverer: inbound mail straight to the domain's inbound servers as a next-hop list in
    /// route order; everything else is left to the MTA's own routing (MX lookup).
    /// </summary>
    Direct,
}

public enum LookupStatus
{
    Found,
    NotFound,

    /// <summary>Cannot answer now (no snapshot loaded): the MTA must retry later.</summary>
    TryLater,
}

/// <summary>A table lookup's answer in MTA-neutral terms.</summary>
public readonly record struct LookupAnswer(LookupStatus Status, string? Value)
{
    public static readonly LookupAnswer NotFound = new(LookupStatus.NotFound, null);

    public static readonly LookupAnswer TryLater = new(LookupStatus.TryLater, null);

    public static LookupAnswer Found(string value) => new(LookupStatus.Found, value);
}

/// <summary>
/// The two lookup tables of requirements §5 as pure functions of a key and the snapshot. Keys match
/// case-insensitively; until a snapshot is loaded every answer is "try later".
/// </summary>
public static class NextHopRules
{
    /// <summary>
    /// Table <c>domains</c> (Postfix <c>relay_domains</c>): found for a managed domain. Only exact domain
    /// names match: a parent-domain probe (<c>.example.com</c>) or an address is not a managed domain.
    /// </summary>
    public static LookupAnswer ManagedDomain(string key, ConfigSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(snapshot);
        if (!snapshot.IsLoaded)
        {
            return LookupAnswer.TryLater;
        }

        if (key.Length == 0 || key[0] == '.' || key.Contains('@', StringComparison.Ordinal))
        {
            return LookupAnswer.NotFound;
        }

        return snapshot.FindEnvelopeDomain(key) is { } d ? LookupAnswer.Found(d.Name) : LookupAnswer.NotFound;
    }

    /// <summary>
    /// Table <c>transport</c>: the next hop for a recipient address (or a bare domain). Postfix also asks
    /// for <c>*</c>, its wildcard entry (transport(5)); that is never found, so each recipient gets its own answer.
    /// </summary>
    /// <param name="rotation">Rotates servers of equal preference in direct mode (any varying number, e.g. a counter).</param>
    public static LookupAnswer Transport(string key, ConfigSnapshot snapshot, TransportMode mode, string delivererNextHop, uint rotation = 0)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(snapshot);
        if (!snapshot.IsLoaded)
        {
            return LookupAnswer.TryLater;
        }

        if (key.Length == 0 || key == "*" || key[0] == '.')
        {
            return LookupAnswer.NotFound;
        }

        // Postfix asks with its internal (unquoted) form of the address, or with a bare domain.
        string? recipient = null;
        string domain;
        if (key.Contains('@', StringComparison.Ordinal))
        {
            if (!EnvelopeAddress.TryFromUnquoted(key, out var canonical, out _))
            {
                return LookupAnswer.NotFound;
            }

            recipient = canonical.Address;
            domain = canonical.Domain;
        }
        else
        {
            domain = key;
        }

        var entry = snapshot.FindEnvelopeDomain(domain);
        if (mode == TransportMode.Deliverer)
        {
            // Managed domains go to the intake. Other recipients (outbound mail) are not found here, so that
            // Postfix applies default_transport, which deploy/postfix also points at the intake, except for its own
            // null-sender notices (sender_dependent_default_transport_maps): the intake would refuse those.
            return entry is null ? LookupAnswer.NotFound : LookupAnswer.Found(delivererNextHop);
        }

        if (entry is null || !entry.InboundEnabled)
        {
            return LookupAnswer.NotFound;
        }

        var route = Route(entry, recipient, rotation);
        return route.Count == 0 ? LookupAnswer.NotFound : LookupAnswer.Found("smtp:" + string.Join(", ", route));
    }

    /// <summary>
    /// The inbound route (<see cref="RoutePlanner"/>, the one route rule, requirements §3.5) as Postfix next hops: the
    /// hosts in the order the Deliverer would try them, groups of equal preference rotated by <paramref name="rotation"/>.
    /// </summary>
    public static IReadOnlyList<string> Route(DomainEntry domain, string? recipient, uint rotation = 0)
    {
        ArgumentNullException.ThrowIfNull(domain);
        var plan = RoutePlanner.Plan(recipient ?? string.Empty, domain.Name, domain.Config.Settings.InboundServers);
        return RoutePlanner.Order(plan, _ => rotation).Select(NextHop).ToList();
    }

    /// <summary>
    /// One Postfix SMTP next hop: always in brackets, so a host name is resolved to A/AAAA and never to MX
    /// (requirements §3), and an IPv6 address is written bare inside them (<c>[2001:db8::1]:25</c>).
    /// </summary>
    public static string NextHop(RouteHost server)
    {
        var host = server.Host;
        if (IPAddress.TryParse(host, out var ip) && ip.AddressFamily == AddressFamily.InterNetworkV6)
        {
            host = ip.ToString();
        }

        return new StringBuilder(host.Length + 8).Append('[').Append(host).Append("]:").Append(server.Port).ToString();
    }
}
