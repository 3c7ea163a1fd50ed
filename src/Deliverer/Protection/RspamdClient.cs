using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Gateway.Deliverer.Protection;

/// <summary>One rspamd symbol of a verdict: its name, score and options (e.g. the virus name, <c>example.com:+</c>).</summary>
public sealed record RspamdSymbol(string Name, double Score, IReadOnlyList<string> Options);

/// <summary>rspamd's answer to <c>/checkv2</c> (https://rspamd.com/doc/developers/protocol.html).</summary>
/// <param name="Action">rspamd's own action (<c>no action</c>, <c>add header</c>, <c>rewrite subject</c>, <c>greylist</c>, <c>soft reject</c>, <c>reject</c>); logged, not obeyed: the domain's thresholds decide.</param>
/// <param name="Skipped">A pre-filter decided without running the rules (e.g. GTUBE).</param>
public sealed record RspamdResult(string Action, double Score, double RequiredScore, IReadOnlyList<RspamdSymbol> Symbols, bool Skipped)
{
    public RspamdSymbol? Symbol(string name)
    {
        foreach (var s in Symbols)
        {
            if (string.Equals(s.Name, name, StringComparison.Ordinal))
            {
                return s;
            }
        }

        return null;
    }

    public bool Has(string name) => Symbol(name) is not null;

    /// <summary>Parses a <c>/checkv2</c> reply; <see cref="FormatException"/> when it is not one.</summary>
    public static RspamdResult Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            using var doc = JsonDocument.ParseValue(ref reader);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("action", out var action) || action.ValueKind != JsonValueKind.String)
            {
                var error = root.ValueKind == JsonValueKind.Object && root.TryGetProperty("error", out var e) ? e.ToString() : "no action in the reply";
                throw new FormatException("rspamd: " + error);
            }

            var symbols = new List<RspamdSymbol>();
            if (root.TryGetProperty("symbols", out var map) && map.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in map.EnumerateObject())
                {
                    var score = p.Value.TryGetProperty("score", out var sc) && sc.ValueKind == JsonValueKind.Number ? sc.GetDouble() : 0;
                    var options = p.Value.TryGetProperty("options", out var o) && o.ValueKind == JsonValueKind.Array
                        ? o.EnumerateArray().Select(x => x.ValueKind == JsonValueKind.String ? x.GetString()! : x.ToString()).ToList()
                        : (IReadOnlyList<string>)[];
                    symbols.Add(new RspamdSymbol(p.Name, score, options));
                }
            }

            return new RspamdResult(
                action.GetString()!,
                Number(root, "score"),
                Number(root, "required_score"),
                symbols,
                root.TryGetProperty("is_skipped", out var skipped) && skipped.ValueKind == JsonValueKind.True);
        }
        catch (JsonException e)
        {
            throw new FormatException("rspamd: not a JSON reply: " + e.Message, e);
        }
    }

    private static double Number(JsonElement root, string name) =>
        root.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : 0;
}

/// <summary>The envelope and client rspamd is told about (its HTTP request headers).</summary>
/// <param name="Ip">The real SMTP client (Postfix's XFORWARD ADDR).</param>
/// <param name="Hostname">The client's verified reverse DNS name (XFORWARD NAME), when Postfix knew one.</param>
public sealed record RspamdRequest(string? Ip, string? Helo, string? Hostname, string From, IReadOnlyList<string> Recipients, string QueueId);

/// <summary>
/// rspamd's HTTP protocol client: <c>POST /checkv2</c> with the message as the body and the envelope as headers
/// (<c>IP</c>, <c>Helo</c>, <c>Hostname</c>, <c>From</c>, <c>Rcpt</c>, <c>Queue-Id</c>). Several
/// normal workers may be listed: each message starts at the next and fails over to the others
/// (<see cref="ServerRotation{T}"/>). Connections are pooled (HTTP/1.1 keep-alive).
/// </summary>
public sealed class RspamdClient : IDisposable
{
    public const string Engine = "rspamd";

    private readonly HttpClient _http;
    private readonly ServerRotation<Uri> _servers;
    private readonly TimeSpan _timeout;
    private readonly string _settings;

    public RspamdClient(ProtectionOptions options, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(options);
        _servers = new ServerRotation<Uri>(options.EffectiveRspamdUrls, options.ServerBackoff, clock);
        _timeout = options.RspamdTimeout;
        _settings = options.MalwareScanner == MalwareScanner.Clamd ? options.RspamdSettings : string.Empty;
        _http = new HttpClient(new SocketsHttpHandler
        {
            ConnectTimeout = options.RspamdTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
            UseProxy = false,
            AllowAutoRedirect = false,
            // SMTPUTF8 addresses travel as UTF-8, as rspamd reads them.
            RequestHeaderEncodingSelector = (_, _) => Encoding.UTF8,
        })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    public IReadOnlyList<Uri> Servers => _servers.Servers;

    /// <summary>Scans one message; <see cref="ScannerException"/> when no server gave a verdict.</summary>
    public Task<RspamdResult> CheckAsync(RspamdRequest request, ReadOnlyMemory<byte> message, CancellationToken cancellationToken) =>
        CheckAsync(request, message, null, cancellationToken);

    /// <summary>
    /// Scans a message received in pieces (requirements §11, bounded memory): the request's body is streamed from Redis block
    /// by block with its Content-Length, opened again for each server tried.
    /// </summary>
    public Task<RspamdResult> CheckAsync(RspamdRequest request, SpooledMessage spooled, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spooled);
        return CheckAsync(request, ReadOnlyMemory<byte>.Empty, spooled, cancellationToken);
    }

    private async Task<RspamdResult> CheckAsync(RspamdRequest request, ReadOnlyMemory<byte> message, SpooledMessage? spooled, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var reason = ScannerFailureReasons.Unavailable;
        var detail = "no rspamd configured";
        foreach (var (index, server) in _servers.Order())
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_timeout);
            try
            {
                using var http = Build(server, request, spooled is null ? new ReadOnlyMemoryContent(message) : await spooled.ContentAsync().ConfigureAwait(false));
                using var response = await _http.SendAsync(http, HttpCompletionOption.ResponseContentRead, timeout.Token).ConfigureAwait(false);
                var body = await response.Content.ReadAsByteArrayAsync(timeout.Token).ConfigureAwait(false);
                if (!response.IsSuccessStatusCode)
                {
                    throw new FormatException($"HTTP {(int)response.StatusCode} {Encoding.UTF8.GetString(body.AsSpan(0, Math.Min(body.Length, 200)))}");
                }

                var result = RspamdResult.Parse(body);
                _servers.Succeeded(index);
                return result;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                (reason, detail) = (ScannerFailureReasons.Timeout, $"{server} did not answer within {_timeout.TotalSeconds:0.#} s");
            }
            catch (HttpRequestException e)
            {
                // The cause says more than "an error occurred while sending the request" (refused, reset, a body read from Redis that failed).
                (reason, detail) = (ScannerFailureReasons.Unavailable, $"{server}: {e.Message}{(e.InnerException is { } inner ? " (" + inner.Message + ")" : string.Empty)}");
            }
            catch (FormatException e)
            {
                (reason, detail) = (ScannerFailureReasons.Error, $"{server}: {e.Message}");
            }

            _servers.Failed(index);
        }

        throw new ScannerException(Engine, reason, detail);
    }

    /// <summary>rspamd's <c>/ping</c> (health checks).</summary>
    public async Task<bool> PingAsync(Uri server, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(server);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            using var response = await _http.GetAsync(new Uri(server, "ping"), cts.Token).ConfigureAwait(false);
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private HttpRequestMessage Build(Uri server, RspamdRequest request, HttpContent content)
    {
        var http = new HttpRequestMessage(HttpMethod.Post, new Uri(server, "checkv2"))
        {
            Content = content,
        };
        http.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var h = http.Headers;
        Add(h, "IP", request.Ip);
        Add(h, "Helo", request.Helo);
        Add(h, "Hostname", request.Hostname);
        Add(h, "From", request.From);
        // One Rcpt header with the recipients joined by ",": rspamd (3.4) splits a Rcpt value at commas, and HttpClient would
        // join repeated Rcpt headers with ", ", which rspamd does not split (it reads only the first address then). At most
        // MaxRcptHeader characters: 1000 long addresses would pass rspamd's HTTP header limit and fail every scan, while
        // rspamd's rules need only a few of them (the domains' policies decide per recipient here, not there).
        Add(h, "Rcpt", JoinRecipients(request.Recipients));

        Add(h, "Queue-Id", request.QueueId);
        Add(h, "Settings", _settings);
        return http;
    }

    /// <summary>How long the <c>Rcpt</c> header may grow.</summary>
    public const int MaxRcptHeader = 16 * 1024;

    internal static string JoinRecipients(IReadOnlyList<string> recipients)
    {
        var b = new StringBuilder();
        foreach (var r in recipients)
        {
            if (b.Length + r.Length + 1 > MaxRcptHeader)
            {
                break;
            }

            b.Append(b.Length == 0 ? string.Empty : ",").Append(r);
        }

        return b.ToString();
    }

    private static void Add(HttpRequestHeaders headers, string name, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return;
        }

        // Values come from SMTP (already parsed); control characters would break the request, so they go.
        headers.TryAddWithoutValidation(name, value.Any(char.IsControl) ? new string(value.Where(c => !char.IsControl(c)).ToArray()) : value);
    }

    public void Dispose() => _http.Dispose();
}

/// <summary>Round-trip time of a call, for the scan latency metric.</summary>
internal static class Elapsed
{
    public static TimeSpan Since(long start) => Stopwatch.GetElapsedTime(start);
}
