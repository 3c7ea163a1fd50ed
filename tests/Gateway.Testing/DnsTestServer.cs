using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using ARSoft.Tools.Net.Dns;
using ArsDomainName = ARSoft.Tools.Net.DomainName;

namespace Gateway.Testing;

/// <summary>
/// A real DNS server for tests, answering over UDP and TCP on a loopback port from records the test
/// sets (in-process, ARSoft.Tools.Net). Unknown names get NXDOMAIN, known names without the asked type
/// get an empty NOERROR (NODATA), names marked failing get SERVFAIL. Records can change while it runs.
/// </summary>
public sealed class DnsTestServer : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, List<DnsRecordBase>> _records = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, bool> _failing = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, int> _queries = new(StringComparer.OrdinalIgnoreCase);
    private readonly DnsServer _server;

    private DnsTestServer(IPEndPoint endPoint)
    {
        EndPoint = endPoint;
        _server = new DnsServer(new UdpServerTransport(endPoint, 5000), new TcpServerTransport(endPoint, 5000, 5000));
        _server.QueryReceived += OnQueryReceived;
        _server.Start();
    }

    public IPEndPoint EndPoint { get; }

    /// <summary><c>ip:port</c>, the form of <c>Gateway:Dns:Servers</c> entries.</summary>
    public string Address => $"{EndPoint.Address}:{EndPoint.Port}";

    public static DnsTestServer Start(IPAddress? address = null)
    {
        address ??= IPAddress.Loopback;
        return new DnsTestServer(new IPEndPoint(address, FreePort.Get(address)));
    }

    public DnsTestServer AddTxt(string name, params string[] text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return Add(name, new TxtRecord(Name(name), 60, text));
    }

    /// <summary>One TXT record whose text is split into several character-strings (RFC 7208 §3.3).</summary>
    public DnsTestServer AddTxtParts(string name, IEnumerable<string> parts) => Add(name, new TxtRecord(Name(name), 60, parts));

    public DnsTestServer AddMx(string name, ushort preference, string exchange) => Add(name, new MxRecord(Name(name), 60, preference, Name(exchange)));

    public DnsTestServer AddA(string name, string address) => Add(name, new ARecord(Name(name), 60, IPAddress.Parse(address)));

    public DnsTestServer AddAaaa(string name, string address) => Add(name, new AaaaRecord(Name(name), 60, IPAddress.Parse(address)));

    public DnsTestServer AddCname(string name, string target) => Add(name, new CNameRecord(Name(name), 60, Name(target)));

    /// <summary>Removes every record of a name (it then answers NXDOMAIN).</summary>
    public DnsTestServer Remove(string name)
    {
        _records.TryRemove(Key(name), out _);
        return this;
    }

    /// <summary>Answers SERVFAIL for the name (a broken authoritative server).</summary>
    public DnsTestServer Fail(string name, bool failing = true)
    {
        if (failing)
        {
            _failing[Key(name)] = true;
        }
        else
        {
            _failing.TryRemove(Key(name), out _);
        }

        return this;
    }

    /// <summary>How many queries for the name arrived (any type).</summary>
    public int QueryCount(string name) => _queries.TryGetValue(Key(name), out var n) ? n : 0;

    public ValueTask DisposeAsync()
    {
        _server.Stop();
        return ValueTask.CompletedTask;
    }

    private DnsTestServer Add(string name, DnsRecordBase record)
    {
        var list = _records.GetOrAdd(Key(name), _ => []);
        lock (list)
        {
            list.Add(record);
        }

        return this;
    }

    private static string Key(string name) => name.TrimEnd('.').ToLowerInvariant();

    // "." is the root: the exchange of a null MX (RFC 7505).
    private static ArsDomainName Name(string name) => name.TrimEnd('.') is { Length: > 0 } n ? ArsDomainName.Parse(n) : ArsDomainName.Root;

    private Task OnQueryReceived(object sender, QueryReceivedEventArgs e)
    {
        if (e.Query is not DnsMessage query || query.Questions.Count != 1)
        {
            return Task.CompletedTask;
        }

        var question = query.Questions[0];
        var key = Key(question.Name.ToString());
        _queries.AddOrUpdate(key, 1, (_, n) => n + 1);
        var response = query.CreateResponseInstance();
        response.IsAuthoritiveAnswer = true;
        if (_failing.ContainsKey(key))
        {
            response.ReturnCode = ReturnCode.ServerFailure;
        }
        else if (_records.TryGetValue(key, out var list))
        {
            response.ReturnCode = ReturnCode.NoError;
            lock (list)
            {
                foreach (var r in list)
                {
                    if (r.RecordType == question.RecordType || question.RecordType == RecordType.Any ||
                        (r.RecordType == RecordType.CName && question.RecordType != RecordType.CName))
                    {
                        response.AnswerRecords.Add(r);
                    }
                }
            }
        }
        else
        {
            response.ReturnCode = ReturnCode.NxDomain;
        }

        e.Response = response;
        return Task.CompletedTask;
    }
}
