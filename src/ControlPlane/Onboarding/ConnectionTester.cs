using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Gateway.Core.Domains;
using Gateway.Core.Spf;
using Gateway.Core;
using Gateway.Core.Dns;

namespace Gateway.ControlPlane.Onboarding;

/// <summary>One host:port of a connection test and how it went.</summary>
/// <param name="Address">The address connected to (or the last one tried); null when the name did not resolve.</param>
/// <param name="Error">Why it failed, in words; null when connected.</param>
public sealed record HostConnectionResult(string Host, int Port, bool Connected, TimeSpan Elapsed, string? Address, string? Error)
{
    /// <summary>The SMTP and TLS part of the test (issue 17); null when TCP failed.</summary>
    public SmtpTlsProbeResult? Smtp { get; init; }

    /// <summary>The row's TLS mode (the strictest of the rows naming this host and port).</summary>
    public TlsMode Tls { get; init; }

    /// <summary>Connected, and TLS as the row demands (a required row needs STARTTLS, a verify row a verified certificate).</summary>
    public bool Passed => Connected && Error is null;
}

/// <summary>The overall result: success only when every host connected.</summary>
public sealed record ConnectionTestResult(bool Success, string Message, IReadOnlyList<HostConnectionResult> Results);

/// <summary>
/// requirements §3.12: a TCP connect to every inbound server host:port, all in parallel, each
/// within <see cref="OnboardingOptions.ConnectTimeout"/>. Only TCP is tested (a wrong port such as 587
/// can still pass; the test message is what proves delivery). A host name is resolved to A/AAAA with the
/// configured resolver (not MX), as delivery does; its addresses are tried in turn, IPv4 first.
/// </summary>
public sealed class ConnectionTester(IMailDns dns, OnboardingOptions options, GatewayOptions gateway, SmtpTlsProbe probe)
{
    /// <summary>The overall message when every host connected (the seed product's wording).</summary>
    public const string SuccessMessage = "Connected successfully.";

    /// <summary>The start of the overall message when any host failed.</summary>
    public const string FailureMessage = "Cannot connect to the inbound server.";

    private readonly DestinationFilter _destinations = new(gateway);

    /// <summary>Tests each distinct host:port of <paramref name="servers"/> once.</summary>
    public async Task<ConnectionTestResult> TestAsync(IEnumerable<InboundServer> servers, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(servers);
        var rows = servers.ToList();
        var targets = rows.Select(s => (s.Host, s.Port)).Distinct().ToList();
        if (targets.Count == 0)
        {
            return new ConnectionTestResult(false, $"{FailureMessage} No inbound server is configured.", []);
        }

        var results = await Task.WhenAll(targets.Select(t => TestOneAsync(t.Host, t.Port, Gateway.Core.Tls.TlsPolicy.ForInboundHost(rows, new Gateway.Core.Routing.RouteHost(t.Host, t.Port)),
            cancellationToken))).ConfigureAwait(false);
        var failed = results.Where(r => !r.Passed).ToList();
        var message = failed.Count == 0
            ? SuccessMessage
            : $"{FailureMessage} Failed: {string.Join("; ", failed.Select(f => $"{HostPort(f.Host, f.Port)} ({f.Error})"))}.";
        return new ConnectionTestResult(failed.Count == 0, message, results);
    }

    private static string HostPort(string host, int port) => host.Contains(':', StringComparison.Ordinal) ? $"[{host}]:{port}" : $"{host}:{port}";

    private async Task<HostConnectionResult> TestOneAsync(string host, int port, Gateway.Core.Tls.TlsRequirement tls, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(options.ConnectTimeout);
        HostConnectionResult Result(bool connected, IPAddress? address, string? error) =>
            new(host, port, connected, Stopwatch.GetElapsedTime(started), address?.ToString(), error) { Tls = tls.Mode };

        IReadOnlyList<IPAddress> addresses;
        try
        {
            (addresses, var resolveError) = await ResolveAsync(host, limit.Token).ConfigureAwait(false);
            if (resolveError is not null)
            {
                return Result(false, null, resolveError);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return Result(false, null, $"resolving {host} timed out after {options.ConnectTimeout.TotalSeconds:0.#} s");
        }

        IPAddress? last = null;
        string? error = null;
        foreach (var address in addresses)
        {
            last = address;
            try
            {
                // Created per attempt inside the try: a family the host has no stack for fails like a refused connect.
                using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(new IPEndPoint(address, port), limit.Token).ConfigureAwait(false);
                var elapsed = Stopwatch.GetElapsedTime(started);
                // Then SMTP on the same connection: EHLO, STARTTLS when offered, the certificate checked (requirements §10).
                var smtp = await probe.ProbeAsync(socket, tls.Name ?? host, options.ConnectTimeout, cancellationToken).ConfigureAwait(false);
                var unmet = Gateway.Core.Tls.TlsPolicy.Unmet(tls, smtp.Observation);
                return new HostConnectionResult(host, port, true, elapsed, address.ToString(), unmet) { Tls = tls.Mode, Smtp = smtp };
            }
            catch (SocketException e)
            {
                error = Describe(e.SocketErrorCode);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                error = $"timed out after {options.ConnectTimeout.TotalSeconds:0.#} s";
                break;
            }
        }

        return Result(false, last, addresses.Count > 1 ? $"{error} (tried {addresses.Count} addresses)" : error);
    }

    private async Task<(IReadOnlyList<IPAddress> Addresses, string? Error)> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(host, out var literal))
        {
            return _destinations.Refusal(literal) is { } refused ? ([], $"refused: {host} is {refused}") : ([literal], null);
        }

        var v4Task = dns.AddressesAsync(host, AddressFamily.InterNetwork, cancellationToken);
        var v6Task = dns.AddressesAsync(host, AddressFamily.InterNetworkV6, cancellationToken);
        var v4 = await v4Task.ConfigureAwait(false);
        var v6 = await v6Task.ConfigureAwait(false);
        var all = v4.Records.Concat(v6.Records).ToList();
        if (all.Count == 0)
        {
            return ([], v4.Outcome == DnsOutcome.Failed || v6.Outcome == DnsOutcome.Failed
                ? $"cannot resolve {host}: {v4.Error ?? v6.Error}"
                : $"{host} has no A or AAAA record");
        }

        // Checked after resolution, as delivery does: a name must not lead where a literal may not (a tenant could
        // otherwise probe the gateway host's own services; security review M6).
        var usable = all.Where(a => _destinations.Refusal(a) is null).ToList();
        return usable.Count == 0
            ? ([], $"refused: {host} resolves only to addresses the gateway does not connect to ({string.Join("; ", all.Select(a => $"{a}: {_destinations.Refusal(a)}"))})")
            : (usable, null);
    }

    private static string Describe(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => "connection refused",
        SocketError.TimedOut => "timed out",
        SocketError.HostUnreachable => "host unreachable",
        SocketError.NetworkUnreachable => "network unreachable",
        SocketError.AddressNotAvailable => "address not available",
        _ => error.ToString(),
    };
}
