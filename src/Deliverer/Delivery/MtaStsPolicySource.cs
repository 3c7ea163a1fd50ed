using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using DnsClient;
using DnsClient.Protocol;
using Gateway.Core;
using Gateway.Core.Domains;
using Gateway.Core.MtaSts;
using Gateway.Core.Storage;
using Gateway.Core.Tls;
using StackExchange.Redis;

namespace Gateway.Deliverer.Delivery;

/// <summary>Settings of <c>Gateway:Deliverer:MtaSts</c> (docs/outbound.md "MTA-STS").</summary>
public sealed class MtaStsOptions
{
    public const string Section = "Gateway:Deliverer:MtaSts";

    /// <summary>Honour recipient domains' MTA-STS policies for outbound delivery (RFC 8461).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// How long this Deliverer reuses what it learnt about a domain (policy or none) before it looks at the TXT record and the
    /// fleet cache again: a new policy id is noticed within this time, and a busy route costs no lookup per message.
    /// </summary>
    public TimeSpan RecheckInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How long one policy fetch (connect, TLS, response) may take (RFC 8461 §3.3 suggests a short timeout).</summary>
    public TimeSpan FetchTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Tests only: fetch policies from this port instead of 443 (the tests' HTTPS server runs on a free loopback port). Refused
    /// unless <c>Gateway:AllowLoopbackDestinations</c> is on, so a production Deliverer always asks port 443 as RFC 8461 says.
    /// </summary>
    public int PolicyPortForTests { get; set; }

    internal static bool IsValid(MtaStsOptions o, GatewayOptions gateway) =>
        o.FetchTimeout > TimeSpan.Zero && o.RecheckInterval >= TimeSpan.Zero && (o.PolicyPortForTests == 0 || (gateway.AllowLoopbackDestinations && o.PolicyPortForTests is > 0 and <= 65535));
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true)]
[JsonSerializable(typeof(MtaStsPolicy))]
internal sealed partial class MtaStsJson : JsonSerializerContext;

/// <summary>
/// The MTA-STS policy of a recipient domain for outbound delivery (RFC 8461 §3, §5.1): looks up <c>_mta-sts.&lt;domain&gt;</c>,
/// uses the policy cached in Redis for the whole fleet while its id is current and its max_age has not passed, else fetches
/// <c>https://mta-sts.&lt;domain&gt;/.well-known/mta-sts.txt</c> (certificate verified, no redirects, text/plain, at most 64 KiB,
/// a time limit) under a short fleet-wide lock, so a policy is fetched once per max_age however many messages and Deliverers
/// there are. A failed lookup or fetch keeps using an unexpired cached policy; with none, the domain has no policy.
/// </summary>
public sealed partial class MtaStsPolicySource : IDisposable
{
    private static readonly TimeSpan LockTime = TimeSpan.FromSeconds(30);
    private readonly IConnectionMultiplexer _redis;
    private readonly ILookupClient _dns;
    private readonly MtaStsOptions _options;
    private readonly GatewayOptions _gateway;
    private readonly CertificateVerifier _certificates;
    private readonly OutboundMetrics _metrics;
    private readonly TimeProvider _clock;
    private readonly ILogger<MtaStsPolicySource> _logger;
    private readonly DestinationFilter _destinations;
    private readonly HttpClient _http;
    private readonly ConcurrentDictionary<string, Lazy<Task<MtaStsPolicy?>>> _inFlight = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, (MtaStsPolicy? Policy, long Checked)> _recent = new(StringComparer.Ordinal);

    public MtaStsPolicySource(IConnectionMultiplexer redis, ILookupClient dns, MtaStsOptions options, GatewayOptions gateway, CertificateVerifier certificates,
        OutboundMetrics metrics, TimeProvider clock, ILogger<MtaStsPolicySource> logger)
    {
        _redis = redis;
        _dns = dns;
        _options = options;
        _gateway = gateway;
        _destinations = new DestinationFilter(gateway);
        _certificates = certificates;
        _metrics = metrics;
        _clock = clock;
        _logger = logger;
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = false, // RFC 8461 §3.3: redirects must not be followed
            UseProxy = false,
            UseCookies = false,
            ConnectTimeout = options.FetchTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(1),
            ConnectCallback = ConnectAsync,
        };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) => _certificates.Check(certificate, chain, errors).Verified;
        _http = new HttpClient(handler) { Timeout = options.FetchTimeout, MaxResponseContentBufferSize = MtaStsRules.MaxPolicyBytes };
    }

    /// <summary>The policy to apply to a delivery to <paramref name="domain"/>, or null when it has none (or MTA-STS is off).</summary>
    public async Task<MtaStsPolicy?> GetAsync(string domain, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(domain);
        if (!_options.Enabled || domain.Length == 0)
        {
            return null;
        }

        // What this process learnt recently: no TXT lookup nor Redis read per message (bench/deliverer (o): the lookups made a
        // busy route wait on each other).
        if (_recent.TryGetValue(domain, out var recent) && _clock.GetElapsedTime(recent.Checked) < _options.RecheckInterval &&
            (recent.Policy is null || recent.Policy.Expires > _clock.GetUtcNow()))
        {
            return recent.Policy;
        }

        // One lookup per domain at a time in this process; concurrent deliveries to the domain share it.
        var lazy = _inFlight.GetOrAdd(domain, d => new Lazy<Task<MtaStsPolicy?>>(() => ResolveAsync(d)));
        try
        {
            var policy = await lazy.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (_recent.Count > 100_000)
            {
                _recent.Clear(); // bounded: a flood of distinct recipient domains costs lookups, not memory
            }

            _recent[domain] = (policy, _clock.GetTimestamp());
            return policy;
        }
        finally
        {
            _inFlight.TryRemove(new KeyValuePair<string, Lazy<Task<MtaStsPolicy?>>>(domain, lazy));
        }
    }

    public void Dispose() => _http.Dispose();

    private async Task<MtaStsPolicy?> ResolveAsync(string domain)
    {
        var now = _clock.GetUtcNow();
        var cached = await CachedAsync(domain).ConfigureAwait(false);
        if (cached is not null && cached.Expires <= now)
        {
            cached = null;
        }

        var id = await TxtIdAsync(domain).ConfigureAwait(false);
        if (id is null)
        {
            // §5.1: no (valid) record, or DNS trouble: a cached unexpired policy still applies; else there is none.
            return cached;
        }

        if (cached is not null && cached.Id == id)
        {
            return cached;
        }

        var db = _redis.GetDatabase();
        var token = Guid.NewGuid().ToString("N");
        if (!await db.StringSetAsync(RedisKeys.MtaStsFetchLock(domain), token, LockTime, When.NotExists).ConfigureAwait(false))
        {
            // Another Deliverer fetches it now: wait briefly for its result, else use what is cached.
            for (var i = 0; i < 20; i++)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), _clock).ConfigureAwait(false);
                var fresh = await CachedAsync(domain).ConfigureAwait(false);
                if (fresh is not null && fresh.Id == id)
                {
                    return fresh;
                }
            }

            return cached;
        }

        try
        {
            var fetched = await FetchAsync(domain, id, now).ConfigureAwait(false);
            if (fetched is null)
            {
                return cached;
            }

            if (fetched.MaxAge > 0)
            {
                await db.StringSetAsync(RedisKeys.MtaStsPolicy(domain), JsonSerializer.Serialize(fetched, MtaStsJson.Default.MtaStsPolicy),
                    TimeSpan.FromSeconds(fetched.MaxAge)).ConfigureAwait(false);
            }

            return fetched;
        }
        finally
        {
            await db.ScriptEvaluateAsync("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
                [RedisKeys.MtaStsFetchLock(domain)], [token]).ConfigureAwait(false);
        }
    }

    private async Task<MtaStsPolicy?> CachedAsync(string domain)
    {
        var value = await _redis.GetDatabase().StringGetAsync(RedisKeys.MtaStsPolicy(domain)).ConfigureAwait(false);
        if (value.IsNullOrEmpty)
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(value.ToString(), MtaStsJson.Default.MtaStsPolicy);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>The id of the domain's TXT record; null without a valid one or when DNS failed (both: keep using the cache, §5.1).</summary>
    private async Task<string?> TxtIdAsync(string domain)
    {
        try
        {
            var response = await _dns.QueryAsync("_mta-sts." + domain, QueryType.TXT).ConfigureAwait(false);
            return response.HasError ? null : MtaStsRules.ParseTxt(response.Answers.TxtRecords().Select(r => string.Concat(r.Text)));
        }
        catch (DnsResponseException)
        {
            return null;
        }
    }

    private async Task<MtaStsPolicy?> FetchAsync(string domain, string id, DateTimeOffset now)
    {
        var port = _options.PolicyPortForTests > 0 ? _options.PolicyPortForTests : 443;
        var url = new Uri($"https://mta-sts.{domain}{(port == 443 ? string.Empty : ":" + port.ToString(System.Globalization.CultureInfo.InvariantCulture))}/.well-known/mta-sts.txt");
        try
        {
            using var timeout = new CancellationTokenSource(_options.FetchTimeout);
            using var response = await _http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, timeout.Token).ConfigureAwait(false);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return Failed(domain, $"HTTP {(int)response.StatusCode}");
            }

            if (response.Content.Headers.ContentType is not MediaTypeHeaderValue { MediaType: "text/plain" })
            {
                return Failed(domain, $"Content-Type {response.Content.Headers.ContentType?.MediaType ?? "missing"}, not text/plain");
            }

            if (response.Content.Headers.ContentLength > MtaStsRules.MaxPolicyBytes)
            {
                return Failed(domain, "larger than 64 KiB");
            }

            var bytes = await ReadCappedAsync(response.Content, timeout.Token).ConfigureAwait(false);
            if (bytes is null)
            {
                return Failed(domain, "larger than 64 KiB");
            }

            var policy = MtaStsRules.ParsePolicy(Encoding.UTF8.GetString(bytes), id, now, out var error);
            if (policy is null)
            {
                return Failed(domain, "invalid policy: " + error);
            }

            _metrics.MtaStsFetch(true);
            LogFetched(_logger, domain, id, policy.Mode, policy.MaxAge);
            return policy;
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException or SocketException or System.Security.Authentication.AuthenticationException)
        {
            return Failed(domain, e is OperationCanceledException ? "timed out" : e.Message);
        }
    }

    private MtaStsPolicy? Failed(string domain, string reason)
    {
        _metrics.MtaStsFetch(false);
        LogFetchFailed(_logger, domain, reason);
        return null;
    }

    private static async Task<byte[]?> ReadCappedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        await using var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int n;
        while ((n = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > MtaStsRules.MaxPolicyBytes)
            {
                return null;
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }

    /// <summary>Resolves <c>mta-sts.&lt;domain&gt;</c> with the gateway's resolver and refuses addresses mail is never delivered to.</summary>
    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var host = context.DnsEndPoint.Host;
        var addresses = new List<IPAddress>();
        foreach (var type in new[] { QueryType.A, QueryType.AAAA })
        {
            var r = await _dns.QueryAsync(host, type, QueryClass.IN, cancellationToken).ConfigureAwait(false);
            addresses.AddRange(r.Answers.OfType<AddressRecord>().Select(a => a.Address));
        }

        // A hostile domain must not make the gateway fetch from its own host or private services (SSRF).
        var usable = addresses.Where(a => _destinations.Refusal(a) is null).ToList();
        if (usable.Count == 0)
        {
            throw new HttpRequestException($"{host} has no usable address ({(addresses.Count == 0 ? "none" : string.Join(", ", addresses))})");
        }

        Exception? last = null;
        foreach (var address in usable)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), cancellationToken).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = e;
            }
        }

        throw new HttpRequestException($"cannot connect to {host}: {last?.Message}", last);
    }

    [LoggerMessage(EventId = 1310, Level = LogLevel.Information, Message = "MTA-STS policy of {Domain} fetched: id {Id}, mode {Mode}, max_age {MaxAge} s")]
    private static partial void LogFetched(ILogger logger, string domain, string id, MtaStsMode mode, long maxAge);

    [LoggerMessage(EventId = 1311, Level = LogLevel.Warning, Message = "MTA-STS policy of {Domain} could not be fetched: {Reason}")]
    private static partial void LogFetchFailed(ILogger logger, string domain, string reason);
}
