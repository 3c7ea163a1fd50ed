using System.Net;
using System.Net.Sockets;
using DnsClient;
using DnsClient.Protocol;
using Gateway.Core;
using Gateway.Core.Delivery;
using Gateway.Core.Routing;

namespace Gateway.Deliverer.Delivery;

/// <summary>
/// DNS for delivery, through the gateway's resolver (<c>Gateway:Dns:Servers</c>): inbound server host
/// names to A/AAAA (requirements §3: not MX), and outbound recipient domains to MX hosts (RFC 5321 §5.1) with
/// the null MX of RFC 7505. Whether a destination is the gateway itself is decided by <see cref="GatewaySelf"/>.
/// </summary>
public sealed class DestinationResolver(ILookupClient dns, DelivererOptions options, GatewayOptions gateway)
{
    private readonly Gateway.Core.Domains.DestinationFilter _destinations = new(gateway);

    /// <summary>
    /// Why the Deliverer must not connect to <paramref name="endpoint"/> (loopback, link-local, this host, …, in any
    /// IPv6 spelling; <see cref="Gateway.Core.Domains.DestinationFilter"/>), or null. Checked on the resolved address,
    /// just before connecting (security review M6).
    /// </summary>
    public string? Refusal(IPEndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return _destinations.Refusal(endpoint.Address);
    }

    /// <summary>Postfix: smtp_mx_address_limit = 5. Enough to get past a few dead hosts; bounded so one attempt stays short.</summary>
    public const int MaxMxAddresses = 5;

    /// <summary>Addresses of one inbound route host (an IP is used as is; a name is resolved to A/AAAA).</summary>
    public async Task<Resolution> ResolveHostAsync(RouteHost host, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(host.Host, out var ip))
        {
            return new Resolution([new Endpoint(host.Host, new IPEndPoint(ip, host.Port))], null);
        }

        var (addresses, failure) = await AddressesAsync(host.Host, cancellationToken).ConfigureAwait(false);
        if (addresses.Count == 0)
        {
            // A route host that does not resolve is a failed host: the next one is tried, the message retried.
            return Resolution.Fail(DeliveryOutcome.Transient(failure ?? $"Host {host.Host} not found (no A/AAAA record)"));
        }

        return new Resolution(addresses.Select(a => new Endpoint(host.Host, new IPEndPoint(a, host.Port))).ToList(), null);
    }

    /// <summary>The MX endpoints of a recipient domain, in order (preference, equal ones shuffled).</summary>
    public async Task<Resolution> ResolveMxAsync(string domain, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(domain);
        IDnsQueryResponse response;
        try
        {
            response = await dns.QueryAsync(domain, QueryType.MX, QueryClass.IN, cancellationToken).ConfigureAwait(false);
        }
        catch (DnsResponseException e)
        {
            return Resolution.Fail(DeliveryOutcome.Transient($"DNS lookup of MX for {domain} failed: {e.Code}"));
        }

        if (response.Header.ResponseCode == DnsHeaderResponseCode.NotExistentDomain)
        {
            // Postfix bounces here too: "Host or domain name not found".
            return Resolution.Fail(DeliveryOutcome.Permanent($"550 5.1.2 Host or domain name not found: {domain} (NXDOMAIN)"));
        }

        if (response.HasError)
        {
            return Resolution.Fail(DeliveryOutcome.Transient($"DNS lookup of MX for {domain} failed: {response.ErrorMessage}"));
        }

        var records = response.Answers.MxRecords().Select(r => new Core.Routing.MxRecord(r.Preference, r.Exchange.Value.TrimEnd('.'))).ToList();
        if (records.Count == 1 && records[0].Exchange.Length == 0)
        {
            records = [new Core.Routing.MxRecord(records[0].Preference, ".")];
        }

        var plan = MxPlanner.Plan(domain, records, Random.Shared);
        if (plan.NullMx)
        {
            // RFC 7505 §4.2: 556 / 5.1.10.
            return Resolution.Fail(DeliveryOutcome.Permanent($"556 5.1.10 Domain {domain} does not accept mail (null MX)"));
        }

        var endpoints = new List<Endpoint>();
        string? lastFailure = null;
        foreach (var host in plan.Hosts)
        {
            var (addresses, failure) = await AddressesAsync(host, cancellationToken).ConfigureAwait(false);
            lastFailure = failure ?? lastFailure;
            endpoints.AddRange(addresses.Select(a => new Endpoint(host, new IPEndPoint(a, options.OutboundPort))));
            if (endpoints.Count >= MaxMxAddresses)
            {
                break;
            }
        }

        if (endpoints.Count == 0)
        {
            return plan.ImplicitMx && lastFailure is null
                ? Resolution.Fail(DeliveryOutcome.Permanent($"550 5.1.2 Host or domain name not found: {domain} has no MX, A or AAAA record"))
                : Resolution.Fail(DeliveryOutcome.Transient(lastFailure ?? $"No address for the MX hosts of {domain}"));
        }

        return new Resolution(endpoints.Take(MaxMxAddresses).ToList(), null);
    }

    /// <summary>A then AAAA (IPv4 first, as most deployments prefer); an empty list and the reason when neither resolves.</summary>
    private async Task<(IReadOnlyList<IPAddress> Addresses, string? Failure)> AddressesAsync(string host, CancellationToken cancellationToken)
    {
        var result = new List<IPAddress>();
        string? failure = null;
        foreach (var type in new[] { QueryType.A, QueryType.AAAA })
        {
            try
            {
                var r = await dns.QueryAsync(host, type, QueryClass.IN, cancellationToken).ConfigureAwait(false);
                if (r.HasError && r.Header.ResponseCode != DnsHeaderResponseCode.NotExistentDomain)
                {
                    failure = $"DNS lookup of {type} for {host} failed: {r.ErrorMessage}";
                    continue;
                }

                result.AddRange(r.Answers.OfType<AddressRecord>().Select(a => a.Address)
                    .Where(a => a.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6));
            }
            catch (DnsResponseException e)
            {
                failure = $"DNS lookup of {type} for {host} failed: {e.Code}";
            }
        }

        return (result.Distinct().ToList(), result.Count == 0 ? failure : null);
    }
}
