using System.Net;
using Gateway.Testing;

namespace PolicyDaemon.Tests;

/// <summary>The PolicyDaemon's /metrics and /healthz on its HTTP listener, scraped over HTTP as Prometheus would.</summary>
[Trait("Kind", "Integration")]
public sealed class TelemetryTests(DaemonFixture fixture) : IClassFixture<DaemonFixture>
{
    private PolicyDaemonServer Daemon => fixture.Daemon;

    [Fact]
    public async Task Metrics_DecisionsLookupsAndSnapshot_MoveWithRequests()
    {
        var name = DaemonFixture.NewName("tel");
        await fixture.Domains.CreateAsync(DaemonFixture.Company, name, DaemonFixture.Inbound(name));
        await Eventually.WaitAsync(() => Daemon.Snapshot.Find(name) is not null, TimeSpan.FromSeconds(1), "domain in snapshot");
        var before = await Scrape.GetAsync(Daemon.HttpAddress!);

        await using (var wire = await PolicyWire.ConnectAsync(Daemon.Policy))
        {
            Assert.Equal("OK", await wire.AskAsync(PolicyWire.Request("a@" + name)));
            Assert.Equal("OK", await wire.AskAsync(PolicyWire.Request("b@" + name)));
            Assert.Equal("REJECT NO-DOMAIN", await wire.AskAsync(PolicyWire.Request("c@unmanaged-tel.example")));
        }

        await using (var map = await PolicyWire.ConnectAsync(Daemon.Socketmap))
        {
            Assert.StartsWith("OK", await map.LookupAsync("domains", name), StringComparison.Ordinal);
        }

        var after = await Scrape.GetAsync(Daemon.HttpAddress!);
        const string Decisions = "gateway_policy_decisions_total";
        Assert.Equal("counter", after.TypeOf(Decisions));
        Assert.True(after.Value(Decisions, ("outcome", "accept"), ("reason", "inbound")) >= before.Value(Decisions, ("outcome", "accept"), ("reason", "inbound")) + 2, after.Text);
        Assert.True(after.Value(Decisions, ("outcome", "reject"), ("managed", "false")) >= before.Value(Decisions, ("outcome", "reject"), ("managed", "false")) + 1);
        Assert.True(after.Value("gateway_policy_socketmap_lookups_total", ("map", "domains"), ("status", "found")) >=
                    before.Value("gateway_policy_socketmap_lookups_total", ("map", "domains"), ("status", "found")) + 1);

        // Snapshot gauges: loaded, holds the new domain, and in sync within a few reconcile intervals.
        Assert.Equal(1, after.Value("gateway_snapshot_loaded"));
        Assert.True(after.Value("gateway_snapshot_domains") >= 1);
        Assert.Equal("gauge", after.TypeOf("gateway_snapshot_age_seconds"));
        Assert.InRange(after.Value("gateway_snapshot_age_seconds"), 0, 10);
        Assert.True(after.Value("gateway_snapshot_version") > before.Value("gateway_snapshot_version") - 1);
    }

    [Fact]
    public async Task Healthz_SnapshotLoaded_200Healthy()
    {
        using var http = new HttpClient { BaseAddress = new Uri(Daemon.HttpAddress!) };
        using var r = await http.GetAsync(new Uri("/healthz", UriKind.Relative));
        var body = await r.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Contains("snapshot: Healthy", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Healthz_NoRedisAtStart_503Unhealthy_NotLoaded()
    {
        // A Redis port nobody listens on: the daemon starts, answers "try later", and says so on /healthz.
        await using var daemon = await PolicyDaemonServer.StartAsync($"127.0.0.1:{FreePort.Get()}");
        using var http = new HttpClient { BaseAddress = new Uri(daemon.HttpAddress!) };
        using var r = await http.GetAsync(new Uri("/healthz", UriKind.Relative));
        var body = await r.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
        Assert.Contains("not loaded", body, StringComparison.Ordinal);
        var scrape = await Scrape.GetAsync(daemon.HttpAddress!);
        Assert.Equal(0, scrape.Value("gateway_snapshot_loaded"));
    }

    [Fact]
    public async Task Healthz_RedisGone_DegradedWhileServingFromSnapshot_AgeGrows()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString);
        await daemon.WaitLoadedAsync();
        using var http = new HttpClient { BaseAddress = new Uri(daemon.HttpAddress!) };
        await redis.StopAsync();

        // More than five reconcile intervals (at least 5 s) without Redis: still deciding, but degraded.
        string body = string.Empty;
        await Eventually.WaitAsync(async () =>
        {
            using var r = await http.GetAsync(new Uri("/healthz", UriKind.Relative));
            body = await r.Content.ReadAsStringAsync();
            // (The test's Redis runs without AOF, so redis-durability is Degraded from the start: wait for the snapshot's own line.)
            return r.StatusCode == HttpStatusCode.OK && body.StartsWith("Degraded", StringComparison.Ordinal) &&
                   body.Contains("snapshot: Degraded (snapshot stale", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(20), "/healthz says the snapshot is stale");
        var scrape = await Scrape.GetAsync(daemon.HttpAddress!);
        Assert.True(scrape.Value("gateway_snapshot_age_seconds") >= 5, scrape.Text);
        Assert.Equal(1, scrape.Value("gateway_snapshot_loaded"));
    }
}
