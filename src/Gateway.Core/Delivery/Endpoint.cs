using System.Net;
using Gateway.Core.Routing;

namespace Gateway.Core.Delivery;

/// <summary>One address to connect to, with the name it came from (for logs, DSNs and EHLO peers).</summary>
public sealed record Endpoint(string HostName, IPEndPoint Address)
{
    /// <summary>
    /// Set when this place in the failover order gets an outcome instead of a connection: a route host whose name did
    /// not resolve (transient: the next host is tried), or an address of the gateway itself (permanent: a loop).
    /// </summary>
    public DeliveryOutcome? Failure { get; init; }

    /// <summary>What TLS the connection must have (an inbound row's <c>tls</c>, or the recipient domain's MTA-STS policy).</summary>
    public Gateway.Core.Tls.TlsRequirement Tls { get; init; } = Gateway.Core.Tls.TlsRequirement.Opportunistic;

    /// <summary><c>name[ip]:port</c> as Postfix logs relays.</summary>
    public override string ToString() =>
        Failure is not null && Address.Address.Equals(IPAddress.None) ? new RouteHost(HostName, Address.Port).ToString() :
        HostName == Address.Address.ToString() ? new RouteHost(HostName, Address.Port).ToString() : $"{HostName}[{Address.Address}]:{Address.Port}";
}

/// <summary>The result of resolving a host or a domain's MX: endpoints, or why there are none.</summary>
public sealed record Resolution(IReadOnlyList<Endpoint> Endpoints, DeliveryOutcome? Failure)
{
    public static Resolution Fail(DeliveryOutcome failure) => new([], failure);
}
