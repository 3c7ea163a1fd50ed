using System.Net;
using System.Net.Sockets;
using Gateway.Core.Spf;
using Gateway.Core.Dns;

namespace ControlPlane.Tests.Spf;

/// <summary>
/// A DNS zone in a table, for unit tests of the SPF evaluator (the integration tests use the real DNS test
/// server). A name exists when it has any record; a name marked as timing out fails every question.
/// </summary>
internal sealed class ZoneDns : IMailDns
{
    private readonly Dictionary<string, List<(string Type, object Value)>> _names = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _timeouts = new(StringComparer.OrdinalIgnoreCase);

    public int Queries { get; private set; }

    public ZoneDns Txt(string name, params string[] values)
    {
        foreach (var v in values)
        {
            Add(name, "TXT", v);
        }

        return this;
    }

    public ZoneDns A(string name, params string[] addresses)
    {
        foreach (var a in addresses)
        {
            Add(name, IPAddress.Parse(a).AddressFamily == AddressFamily.InterNetworkV6 ? "AAAA" : "A", IPAddress.Parse(a));
        }

        return this;
    }

    public ZoneDns Mx(string name, int preference, string exchange) => Add(name, "MX", new MxHost(preference, exchange));

    public ZoneDns Ptr(string address, params string[] targets)
    {
        foreach (var t in targets)
        {
            Add(IPAddress.Parse(address).GetArpaName(), "PTR", t);
        }

        return this;
    }

    /// <summary>The name exists (NOERROR) but has no record of the asked types.</summary>
    public ZoneDns Exists(string name) => Add(name, "HINFO", "x");

    public ZoneDns Timeout(string name)
    {
        _timeouts.Add(name);
        return this;
    }

    public Task<DnsAnswer<string>> TxtAsync(string name, CancellationToken cancellationToken) => Task.FromResult(Answer<string>(name, "TXT"));

    public Task<DnsAnswer<IPAddress>> AddressesAsync(string name, AddressFamily family, CancellationToken cancellationToken) =>
        Task.FromResult(Answer<IPAddress>(name, family == AddressFamily.InterNetworkV6 ? "AAAA" : "A"));

    public Task<DnsAnswer<MxHost>> MxAsync(string name, CancellationToken cancellationToken) => Task.FromResult(Answer<MxHost>(name, "MX"));

    public Task<DnsAnswer<string>> PtrAsync(IPAddress address, CancellationToken cancellationToken) =>
        Task.FromResult(Answer<string>(address.GetArpaName(), "PTR"));

    private ZoneDns Add(string name, string type, object value)
    {
        if (!_names.TryGetValue(name, out var list))
        {
            _names[name] = list = [];
        }

        list.Add((type, value));
        return this;
    }

    private DnsAnswer<T> Answer<T>(string name, string type)
    {
        Queries++;
        if (_timeouts.Contains(name))
        {
            return new DnsAnswer<T>(DnsOutcome.Failed, [], $"{type} lookup of {name} timed out");
        }

        return _names.TryGetValue(name, out var list)
            ? new DnsAnswer<T>(DnsOutcome.Ok, list.Where(r => r.Type == type).Select(r => (T)r.Value).ToList())
            : new DnsAnswer<T>(DnsOutcome.NxDomain, []);
    }
}
