using System.Net;
using Gateway.Api.V1;
using Gateway.Core.Snapshot;
using Gateway.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace PolicyDaemon.Tests;

/// <summary>
/// requirements §4 rule 5, §8 (issue 15): data loss is not a decision. Redis FLUSHALL under a running PolicyDaemon: it keeps
/// answering from its last good snapshot (never REJECT NO-DOMAIN for a domain managed a moment before), reports
/// unhealthy (/healthz, gateway_snapshot_held, the held report an operator lists) and applies the new state only once
/// the operator accepts it through the ControlPlane's ConfigStateService.
/// </summary>
public sealed class DataLossTests
{
    [Fact]
    public async Task FlushAll_KeepsAnsweringFromSnapshot_Unhealthy_NewStateOnlyOnceOperatorAccepts()
    {
        await using var redis = await RedisServer.StartAsync();
        var name = DaemonFixture.NewName("loss");
        await DaemonFixture.SeedAsync(redis, name, DaemonFixture.Inbound(name));
        await using var controlPlane = await ControlPlaneHost.StartAsync(redis.ConnectionString);
        await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString, "--Gateway:SnapshotReconcileInterval", "00:00:00.200");
        await daemon.WaitLoadedAsync();
        await using var wire = await PolicyWire.ConnectAsync(daemon.Policy);
        await using var socketmap = await PolicyWire.ConnectAsync(daemon.Socketmap);
        using var http = new HttpClient { BaseAddress = new Uri(daemon.HttpAddress!) };
        Assert.Equal("OK", await wire.AskAsync(PolicyWire.Request($"bob@{name}")));
        using (var healthy = await http.GetAsync(new Uri("/healthz", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, healthy.StatusCode);
        }

        using (var admin = await redis.ConnectAsync())
        {
            await admin.GetServers()[0].FlushAllDatabasesAsync();
        }

        // For 10 seconds (the bound, 50 reconcile intervals): every answer is the one from before, and the
        // daemon says it is unhealthy and why.
        var sawUnhealthy = false;
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < until)
        {
            Assert.Equal("OK", await wire.AskAsync(PolicyWire.Request($"bob@{name}")));
            Assert.Equal($"OK {name}", await socketmap.LookupAsync("domains", name));
            if (!sawUnhealthy)
            {
                using var r = await http.GetAsync(new Uri("/healthz", UriKind.Relative));
                var body = await r.Content.ReadAsStringAsync();
                sawUnhealthy = r.StatusCode == HttpStatusCode.ServiceUnavailable && body.Contains("holding the last good snapshot", StringComparison.Ordinal);
            }

            await Task.Delay(250);
        }

        Assert.True(sawUnhealthy, "/healthz reports the hold");
        Assert.Equal(1, (await Scrape.GetAsync(daemon.HttpAddress!)).Value("gateway_snapshot_held"));

        // The operator sees which program holds, and accepts the (empty) stored state.
        var config = new ConfigStateService.ConfigStateServiceClient(controlPlane.WithKey(ControlPlaneHost.OperatorKey));
        var state = await config.GetConfigStateAsync(new GetConfigStateRequest());
        var instance = daemon.Services.GetRequiredService<ConfigSnapshotService>().Instance;
        Assert.Contains(state.Held, h => h.Instance == instance && h.Reason.Contains("lineage", StringComparison.Ordinal));
        Assert.Equal(0, state.DomainCount);

        var accepted = await config.AcceptConfigStateAsync(new AcceptConfigStateRequest { Reason = "FLUSHALL in a test; the empty state is right" });
        Assert.Equal("operator", accepted.LastAcceptance.AcceptedBy);
        Assert.Empty(accepted.Held);
        await Eventually.WaitAsync(async () => await wire.AskAsync(PolicyWire.Request($"bob@{name}")) == "REJECT NO-DOMAIN",
            TimeSpan.FromSeconds(10), "the accepted (empty) state applies");
        using (var r = await http.GetAsync(new Uri("/healthz", UriKind.Relative)))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }

        Assert.Equal(0, (await Scrape.GetAsync(daemon.HttpAddress!)).Value("gateway_snapshot_held"));
    }
}
