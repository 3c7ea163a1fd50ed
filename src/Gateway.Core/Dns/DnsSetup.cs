using System.Net;
using DnsClient;

namespace Gateway.Core.Dns;

/// <summary>Name servers the gateway asks (<c>Gateway:Dns</c>).</summary>
public sealed class DnsOptions
{
    /// <summary>Name servers as <c>ip</c> or <c>ip:port</c> (IPv6 as <c>[ip]:port</c>); empty: the system's resolvers.</summary>
    public string[] Servers { get; set; } = [];

    /// <summary>Per-query timeout.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Retries per query after a timeout.</summary>
    public int Retries { get; set; } = 2;

    /// <summary>Cache answers for their TTL (off in tests that change records while running).</summary>
    public bool UseCache { get; set; } = true;
}

/// <summary>Builds the DnsClient resolver from <see cref="DnsOptions"/>.</summary>
public static class DnsSetup
{
    public static bool TryParseServer(string text, out IPEndPoint endPoint)
    {
        ArgumentNullException.ThrowIfNull(text);
        var s = text.Trim();
        var hasPort = s.StartsWith('[') || s.Count(c => c == ':') == 1;
        if (!hasPort && IPAddress.TryParse(s, out var bare))
        {
            endPoint = new IPEndPoint(bare, 53);
            return true;
        }

        if (hasPort && s.StartsWith('[') && s.EndsWith(']') && IPAddress.TryParse(s[1..^1], out var bracketed))
        {
            endPoint = new IPEndPoint(bracketed, 53);
            return true;
        }

        if (hasPort && IPEndPoint.TryParse(s, out var parsed) && parsed.Port != 0 && !s.EndsWith(':'))
        {
            endPoint = parsed;
            return true;
        }

        endPoint = new IPEndPoint(IPAddress.None, 0);
        return false;
    }

    public static ILookupClient CreateClient(DnsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var servers = options.Servers.Select(s => TryParseServer(s, out var ep) ? ep : throw new ArgumentException($"Gateway:Dns:Servers: '{s}' is not ip or ip:port"))
            .ToArray();
        var lookup = servers.Length == 0 ? new LookupClientOptions() : new LookupClientOptions(servers);
        lookup.Timeout = options.Timeout;
        lookup.Retries = options.Retries;
        lookup.UseCache = options.UseCache;
        lookup.ContinueOnDnsError = false;
        lookup.ContinueOnEmptyResponse = false;
        lookup.ThrowDnsErrors = false;
        lookup.UseTcpFallback = true;
        return new LookupClient(lookup);
    }
}
