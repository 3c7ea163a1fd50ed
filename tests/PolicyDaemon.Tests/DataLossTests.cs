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
[Trait("Kind", "Integration")]
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

    [Fact]
    public async Task RestartDuringDataLoss_WithLineageFile_AnswersTryLater_NeverReject_UntilOperatorAccepts()
    {
        await using var redis = await RedisServer.StartAsync();
        var name = DaemonFixture.NewName("restart");
        await DaemonFixture.SeedAsync(redis, name, DaemonFixture.Inbound(name));
        await using var controlPlane = await ControlPlaneHost.StartAsync(redis.ConnectionString);
        var folder = Directory.CreateTempSubdirectory("gw-lineage-");
        try
        {
            var file = Path.Combine(folder.FullName, "config-lineage");
            string[] settings = ["--Gateway:SnapshotReconcileInterval", "00:00:00.200", "--Gateway:LineageFile", file];
            await using (var first = await PolicyDaemonServer.StartAsync(redis.ConnectionString, settings))
            {
                await first.WaitLoadedAsync();
                await using var wire = await PolicyWire.ConnectAsync(first.Policy);
                Assert.Equal("OK", await wire.AskAsync(PolicyWire.Request($"bob@{name}")));
                await Eventually.WaitAsync(() => File.Exists(file) && File.ReadAllText(file).Split(' ')[3].Trim() != "0",
                    TimeSpan.FromSeconds(10), "the lineage file written");
            }

            // The daemon was stopped (an upgrade, a reboot) and Redis lost its data while it was down.
            using (var admin = await redis.ConnectAsync())
            {
                await admin.GetServers()[0].FlushAllDatabasesAsync();
            }

            await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString, settings);
            await using var policy = await PolicyWire.ConnectAsync(daemon.Policy);
            using var http = new HttpClient { BaseAddress = new Uri(daemon.HttpAddress!) };
            await Eventually.WaitAsync(() => daemon.Snapshot.Hold is not null, TimeSpan.FromSeconds(10), "held at start");

            // Never "REJECT NO-DOMAIN" for the domain Redis forgot: "try later", so Postfix answers 4xx and the sender retries.
            for (var i = 0; i < 10; i++)
            {
                var answer = await policy.AskAsync(PolicyWire.Request($"bob@{name}"));
                Assert.StartsWith("DEFER_IF_PERMIT", answer, StringComparison.Ordinal);
                await Task.Delay(200);
            }

            Assert.False(daemon.Snapshot.IsLoaded);
            using (var r = await http.GetAsync(new Uri("/healthz", UriKind.Relative)))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
                Assert.Contains("at start: the config lineage id vanished", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }

            var config = new ConfigStateService.ConfigStateServiceClient(controlPlane.WithKey(ControlPlaneHost.OperatorKey));
            var instance = daemon.Services.GetRequiredService<ConfigSnapshotService>().Instance;
            Assert.Contains((await config.GetConfigStateAsync(new GetConfigStateRequest())).Held, h => h.Instance == instance);

            await config.AcceptConfigStateAsync(new AcceptConfigStateRequest { Reason = "FLUSHALL in a test; the empty state is right" });
            await Eventually.WaitAsync(async () => await policy.AskAsync(PolicyWire.Request($"bob@{name}")) == "REJECT NO-DOMAIN",
                TimeSpan.FromSeconds(10), "the accepted (empty) state applies");
            using (var r = await http.GetAsync(new Uri("/healthz", UriKind.Relative)))
            {
                Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            }
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Restart_NothingLost_WithLineageFile_LoadsAtOnce()
    {
        await using var redis = await RedisServer.StartAsync();
        var name = DaemonFixture.NewName("norestartloss");
        await DaemonFixture.SeedAsync(redis, name, DaemonFixture.Inbound(name));
        var folder = Directory.CreateTempSubdirectory("gw-lineage-");
        try
        {
            var file = Path.Combine(folder.FullName, "config-lineage");
            string[] settings = ["--Gateway:SnapshotReconcileInterval", "00:00:00.200", "--Gateway:LineageFile", file];
            await using (var first = await PolicyDaemonServer.StartAsync(redis.ConnectionString, settings))
            {
                await first.WaitLoadedAsync();
                await Eventually.WaitAsync(() => File.Exists(file), TimeSpan.FromSeconds(10), "the lineage file written");
            }

            await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString, settings);
            await daemon.WaitLoadedAsync();
            Assert.Null(daemon.Snapshot.Hold);
            await using var policy = await PolicyWire.ConnectAsync(daemon.Policy);
            Assert.Equal("OK", await policy.AskAsync(PolicyWire.Request($"bob@{name}")));
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
