using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Gateway.PolicyDaemon;
using Gateway.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace PolicyDaemon.Tests;

/// <summary>
/// The PolicyDaemon as deployed on hosts (docs/operations.md "Deploying on hosts"): JSON console logs by configuration
/// (it is built on the slim host, whose console formatter is otherwise fixed), and /metrics on a listener of its own.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class DeployHostingTests
{
    [Fact]
    public async Task ConsoleLogs_FormatterJson_EveryLineAJsonObject()
    {
        await using var redis = await RedisServer.StartAsync();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
                 {
                     Path.Combine(AppContext.BaseDirectory, "Gateway.PolicyDaemon.dll"), "--Gateway:Redis", redis.ConnectionString,
                     "--PolicyDaemon:PolicyEndpoint", $"127.0.0.1:{FreePort.Get()}", "--PolicyDaemon:SocketmapEndpoint", $"127.0.0.1:{FreePort.Get()}",
                     "--PolicyDaemon:HttpUrl", "", "--Gateway:ProviderRanges:RefreshInterval", "00:00:00", "--Logging:Console:FormatterName", "json",
                 })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var lines = new List<string>();
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            // The durability warning (event 110: this Redis runs without AOF) and the snapshot load (event 300).
            while (!(lines.Any(l => l.Contains("\"EventId\":110", StringComparison.Ordinal)) && lines.Any(l => l.Contains("\"EventId\":300", StringComparison.Ordinal))))
            {
                lines.Add(await p.StandardOutput.ReadLineAsync(cts.Token) ?? throw new InvalidOperationException("exited: " + string.Join('\n', lines)));
            }
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }

        foreach (var line in lines)
        {
            using var json = JsonDocument.Parse(line);
            Assert.True(json.RootElement.TryGetProperty("EventId", out _), line);
            Assert.True(json.RootElement.TryGetProperty("Message", out _), line);
        }
    }

    [Fact]
    public async Task Metrics_OnItsOwnListener_404OnTheHttpListener()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString, "--PolicyDaemon:MetricsUrl", "http://127.0.0.3:0");
        var metrics = daemon.Services.GetRequiredService<PolicyDaemonEndpoints>().MetricsAddress!;
        using var http = new HttpClient();
        using (var r = await http.GetAsync(new Uri(metrics + "/metrics")))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Contains("gateway_snapshot_loaded", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var r = await http.GetAsync(new Uri(daemon.HttpAddress + "/metrics")))
        {
            Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        }

        using (var r = await http.GetAsync(new Uri(daemon.HttpAddress + "/healthz")))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
    }
}
