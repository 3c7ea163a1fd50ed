using System.Net;
using System.Net.Sockets;
using DnsClient;
using DnsClient.Protocol;

namespace Gateway.Core.Dns;

/// <summary>How a DNS question ended: answered (maybe with nothing), the name does not exist, or no answer.</summary>
public enum DnsOutcome
{
    /// <summary>RCODE 0 (NOERROR); the records may be empty (NODATA).</summary>
    Ok,

    /// <summary>RCODE 3 (NXDOMAIN).</summary>
    NxDomain,

    /// <summary>SERVFAIL, REFUSED, timeout or another failure: try again later.</summary>
    Failed,
}

/// <summary>The answer to one DNS question.</summary>
public sealed record DnsAnswer<T>(DnsOutcome Outcome, IReadOnlyList<T> Records, string? Error = null)
{
    /// <summary>RFC 7208 §4.6.4 "void lookup": NXDOMAIN, or NOERROR with no answer.</summary>
    public bool IsVoid => Outcome == DnsOutcome.NxDomain || (Outcome == DnsOutcome.Ok && Records.Count == 0);
}

/// <summary>One MX record; <see cref="Exchange"/> without the trailing dot, empty for a null MX (RFC 7505).</summary>
public sealed record MxHost(int Preference, string Exchange)
{
    public bool IsNullMx => Exchange.Length == 0;
}

/// <summary>
/// The DNS questions that SPF evaluation (RFC 7208 §5) and domain onboarding ask. One implementation
/// goes over the wire with the configured resolver (<see cref="MailDns"/>); unit tests may answer from
/// tables.
/// </summary>
public interface IMailDns
{
    /// <summary>TXT records of a name, each one's character-strings joined without separator (RFC 7208 §3.3).</summary>
    Task<DnsAnswer<string>> TxtAsync(string name, CancellationToken cancellationToken);

    /// <summary>A (InterNetwork) or AAAA (InterNetworkV6) records of a name.</summary>
    Task<DnsAnswer<IPAddress>> AddressesAsync(string name, AddressFamily family, CancellationToken cancellationToken);

    /// <summary>MX records of a name, lowest preference first.</summary>
    Task<DnsAnswer<MxHost>> MxAsync(string name, CancellationToken cancellationToken);

    /// <summary>PTR names of an address (reverse zone), without trailing dots.</summary>
    Task<DnsAnswer<string>> PtrAsync(IPAddress address, CancellationToken cancellationToken);
}

/// <summary><see cref="IMailDns"/> over DnsClient with the name servers of <c>Gateway:Dns:Servers</c>.</summary>
public sealed class MailDns(ILookupClient client) : IMailDns
{
    public async Task<DnsAnswer<string>> TxtAsync(string name, CancellationToken cancellationToken)
    {
        var (answer, response) = await QueryAsync<string>(name, QueryType.TXT, cancellationToken).ConfigureAwait(false);
        return answer ?? new DnsAnswer<string>(DnsOutcome.Ok, response!.Answers.TxtRecords().Select(r => string.Concat(r.Text)).ToList());
    }

    public async Task<DnsAnswer<IPAddress>> AddressesAsync(string name, AddressFamily family, CancellationToken cancellationToken)
    {
        var type = family == AddressFamily.InterNetworkV6 ? QueryType.AAAA : QueryType.A;
        var (answer, response) = await QueryAsync<IPAddress>(name, type, cancellationToken).ConfigureAwait(false);
        if (answer is not null)
        {
            return answer;
        }

        var records = type == QueryType.A
            ? response!.Answers.ARecords().Select(r => r.Address)
            : response!.Answers.AaaaRecords().Select(r => r.Address);
        return new DnsAnswer<IPAddress>(DnsOutcome.Ok, records.ToList());
    }

    public async Task<DnsAnswer<MxHost>> MxAsync(string name, CancellationToken cancellationToken)
    {
        var (answer, response) = await QueryAsync<MxHost>(name, QueryType.MX, cancellationToken).ConfigureAwait(false);
        return answer ?? new DnsAnswer<MxHost>(DnsOutcome.Ok, response!.Answers.MxRecords()
            .OrderBy(r => r.Preference)
            .Select(r => new MxHost(r.Preference, r.Exchange.Value.TrimEnd('.')))
            .ToList());
    }

    public async Task<DnsAnswer<string>> PtrAsync(IPAddress address, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(address);
        var (answer, response) = await QueryAsync<string>(address.GetArpaName(), QueryType.PTR, cancellationToken).ConfigureAwait(false);
        return answer ?? new DnsAnswer<string>(DnsOutcome.Ok, response!.Answers.PtrRecords().Select(r => r.PtrDomainName.Value.TrimEnd('.')).ToList());
    }

    /// <summary>Either a finished answer (failure, NXDOMAIN) or the response to read records from.</summary>
    private async Task<(DnsAnswer<T>? Answer, IDnsQueryResponse? Response)> QueryAsync<T>(string name, QueryType type, CancellationToken cancellationToken)
    {
        IDnsQueryResponse response;
        try
        {
            response = await client.QueryAsync(name, type, QueryClass.IN, cancellationToken).ConfigureAwait(false);
        }
        catch (DnsResponseException e)
        {
            return (new DnsAnswer<T>(DnsOutcome.Failed, [], $"{type} lookup of {name} failed: {e.Code}"), null);
        }
        catch (ArgumentException)
        {
            // Not a name DNS can carry (e.g. a label over 63 octets after macro expansion): no such domain.
            return (new DnsAnswer<T>(DnsOutcome.NxDomain, []), null);
        }

        if (!response.HasError)
        {
            return (null, response);
        }

        return response.Header.ResponseCode == DnsHeaderResponseCode.NotExistentDomain
            ? (new DnsAnswer<T>(DnsOutcome.NxDomain, []), null)
            : (new DnsAnswer<T>(DnsOutcome.Failed, [], $"{type} lookup of {name} failed: {response.Header.ResponseCode}"), null);
    }
}
