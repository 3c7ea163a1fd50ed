using System.Net;

namespace Gateway.Core.Delivery;

/// <summary>
/// What is the gateway itself, for the one loop check of delivery (requirements §3.7): the intake's listeners,
/// the gateway's own sending addresses and its own host names (the EHLO name and every tenant MX host
/// <c>&lt;company&gt;.in.&lt;gateway domain&gt;</c>). A destination that is one of them would hand the message back to
/// the gateway: it is never connected to, the recipient fails with <c>554 5.4.6</c> as Postfix's "mail for ... loops
/// back to myself". IPv4-mapped IPv6 addresses are compared as IPv4, so <c>::ffff:127.0.0.1</c> is no way around it.
/// </summary>
public sealed class GatewaySelf
{
    private readonly IPEndPoint[] _listeners;
    private readonly HashSet<IPAddress> _addresses;
    private readonly HashSet<string> _names;
    private readonly string? _mxSuffix;

    /// <param name="listeners">The intake's listeners (a wildcard address stands for every loopback address; port 0 for every port).</param>
    /// <param name="addresses">Addresses of the gateway on any port (its public sending addresses).</param>
    /// <param name="names">Host names of the gateway (its EHLO name).</param>
    /// <param name="gatewayDomain">The gateway's domain: <c>*.in.&lt;domain&gt;</c> are its tenants' MX hosts.</param>
    public GatewaySelf(IEnumerable<IPEndPoint> listeners, IEnumerable<IPAddress> addresses, IEnumerable<string> names, string? gatewayDomain)
    {
        ArgumentNullException.ThrowIfNull(listeners);
        ArgumentNullException.ThrowIfNull(addresses);
        ArgumentNullException.ThrowIfNull(names);
        _listeners = listeners.Select(l => new IPEndPoint(Plain(l.Address), l.Port)).ToArray();
        _addresses = addresses.Select(Plain).ToHashSet();
        _names = names.Where(n => n.Length > 0).Select(n => n.TrimEnd('.').ToLowerInvariant()).ToHashSet(StringComparer.Ordinal);
        _mxSuffix = string.IsNullOrEmpty(gatewayDomain) ? null : ".in." + gatewayDomain.TrimEnd('.').ToLowerInvariant();
    }

    /// <summary>Nothing is the gateway (tests of the pure route choice).</summary>
    public static readonly GatewaySelf None = new([], [], [], null);

    /// <summary>True when connecting to <paramref name="endpoint"/> would reach the gateway itself.</summary>
    public bool IsSelf(IPEndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var address = Plain(endpoint.Address);
        if (_addresses.Contains(address))
        {
            return true;
        }

        foreach (var l in _listeners)
        {
            if (l.Port != 0 && l.Port != endpoint.Port)
            {
                continue;
            }

            if (l.Address.Equals(address) || ((l.Address.Equals(IPAddress.Any) || l.Address.Equals(IPAddress.IPv6Any)) && IPAddress.IsLoopback(address)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True for a host name of the gateway: its own name or a tenant MX host under <c>.in.&lt;gateway domain&gt;</c>.</summary>
    public bool IsSelfName(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        var h = host.TrimEnd('.').ToLowerInvariant();
        return _names.Contains(h) || (_mxSuffix is not null && h.EndsWith(_mxSuffix, StringComparison.Ordinal));
    }

    /// <summary>The outcome of a destination that is the gateway itself.</summary>
    public static DeliveryOutcome Loop(string domain, string what) =>
        DeliveryOutcome.Permanent($"554 5.4.6 Mail for {domain} loops back to myself ({what})");

    private static IPAddress Plain(IPAddress a) => a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a;
}
