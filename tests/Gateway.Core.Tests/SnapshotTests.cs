using Gateway.Core.Domains;
using Gateway.Core.Snapshot;
using Gateway.Core.Storage;
using Gateway.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;
using Gateway.ControlPlane.Application;

namespace Gateway.Core.Tests;

/// <summary>The snapshot against a real redis-server: load, propagation, missed messages, gaps, outages.</summary>
[Trait("Kind", "Integration")]
public sealed class SnapshotTests : IAsyncLifetime
{
    private RedisServer _redis = null!;
    private ConnectionMultiplexer _mux = null!;
    private GatewayOptions _options = null!;
    private ConfigChangeFeed _feed = null!;
    private DomainStore _store = null!;
    private DomainManager _domains = null!;
    private const string Company = "acme";

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _mux = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString + ",abortConnect=false,connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000");
        _options = new GatewayOptions { Redis = _redis.ConnectionString, SnapshotReconcileInterval = TimeSpan.FromMilliseconds(200), ConfigChangeStreamLength = 100 };
        _feed = new ConfigChangeFeed(_mux, _options);
        _store = new DomainStore(_mux, _feed);
        _domains = new DomainManager(_store, new DomainValidator(_options), _options, TimeProvider.System);
        Assert.True(await new TenantStore(_mux).CreateAsync(new TenantRecord(Company, Company, DateTimeOffset.UtcNow)));
    }

    public async Task DisposeAsync()
    {
        _mux.Dispose();
        await _redis.DisposeAsync();
    }

    private async Task<(ConfigSnapshot Snapshot, ConfigSnapshotService Service, ConnectionMultiplexer Mux)> StartSnapshotAsync()
    {
        var mux = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString + ",abortConnect=false,connectTimeout=1000,syncTimeout=1000,asyncTimeout=1000");
        var feed = new ConfigChangeFeed(mux, _options);
        var snapshot = new ConfigSnapshot();
        var service = new ConfigSnapshotService(snapshot, new DomainStore(mux, feed), feed, mux, _options, TimeProvider.System,
            NullLogger<ConfigSnapshotService>.Instance);
        await service.StartAsync(CancellationToken.None);
        return (snapshot, service, mux);
    }

    private static DomainSettings Inbound(string domain, string host) =>
        new(true, [new InboundServer("*@" + domain, host, 25, 10)], OutboundSettings.Disabled);

    [Fact]
    public async Task Start_LoadsEveryDomain_LookupsCaseInsensitive()
    {
        for (var i = 0; i < 300; i++)
        {
            await _domains.CreateAsync(Company, $"d{i}.example.com", DomainSettings.Empty);
        }

        var (snapshot, service, mux) = await StartSnapshotAsync();
        try
        {
            await Eventually.WaitAsync(() => snapshot.IsLoaded, TimeSpan.FromSeconds(10), "snapshot loaded");
            Assert.Equal(300, snapshot.Count);
            Assert.NotNull(snapshot.Find("D17.Example.COM"));
            Assert.NotNull(snapshot.Find("d17.example.com."));
            Assert.Null(snapshot.Find("sub.d17.example.com"));
            Assert.Null(snapshot.Find("example.com"));
            Assert.Equal(await _feed.GetVersionAsync(), snapshot.Version);
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
            mux.Dispose();
        }
    }

    [Fact]
    public async Task SavedChanges_AppliedWithinOneSecond_CreateUpdateDelete()
    {
        var (snapshot, service, mux) = await StartSnapshotAsync();
        try
        {
            await Eventually.WaitAsync(() => snapshot.IsLoaded, TimeSpan.FromSeconds(10), "snapshot loaded");
            await _domains.CreateAsync(Company, "live.example.com", Inbound("live.example.com", "192.0.2.1"));
            await Eventually.WaitAsync(() => snapshot.Find("live.example.com") is not null, TimeSpan.FromSeconds(1), "create applied");

            await _domains.UpdateAsync(Company, "live.example.com", Inbound("live.example.com", "192.0.2.2"), ["inbound_servers"], null);
            await Eventually.WaitAsync(() => snapshot.Find("live.example.com")!.Config.Settings.InboundServers[0].Host == "192.0.2.2",
                TimeSpan.FromSeconds(1), "update applied");

            await _domains.DeleteAsync(Company, "live.example.com", force: false, etag: null);
            await Eventually.WaitAsync(() => snapshot.Find("live.example.com") is null, TimeSpan.FromSeconds(1), "delete applied");
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
            mux.Dispose();
        }
    }

    [Fact]
    public async Task MissedMessage_ReconciledFromVersionOnTimer()
    {
        var (snapshot, service, mux) = await StartSnapshotAsync();
        try
        {
            await Eventually.WaitAsync(() => snapshot.IsLoaded, TimeSpan.FromSeconds(10), "snapshot loaded");
            // Save a domain the way the store does, but without the PUBLISH: only the version and the stream tell.
            var db = _mux.GetDatabase();
            var config = new DomainConfig
            {
                Name = "quiet.example.com", CompanyId = Company, Settings = DomainSettings.Empty,
                Verification = new VerificationState(new string('a', 32), false, VerificationMethod.None, null),
                CreateTime = DateTimeOffset.UtcNow, UpdateTime = DateTimeOffset.UtcNow,
            };
            await db.HashSetAsync(RedisKeys.DomainRegistry, config.Name, Company);
            await db.HashSetAsync(RedisKeys.Domain(config.Name), [new("company", Company), new("etag", 1), new("data", StoreJson.Serialize(config))]);
            var v = await db.StringIncrementAsync(RedisKeys.ConfigVersion);
            await db.ExecuteAsync("XADD", RedisKeys.ConfigChanges, $"{v}-0", "d", config.Name, "op", "create");

            await Eventually.WaitAsync(() => snapshot.Find(config.Name) is not null, TimeSpan.FromSeconds(2), "reconciled without a message");
            Assert.Equal(v, snapshot.Version);
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
            mux.Dispose();
        }
    }

    [Fact]
    public async Task StreamTrimmedPastAppliedVersion_FullReload()
    {
        var (snapshot, service, mux) = await StartSnapshotAsync();
        try
        {
            await Eventually.WaitAsync(() => snapshot.IsLoaded, TimeSpan.FromSeconds(10), "snapshot loaded");
            await service.StopAsync(CancellationToken.None);

            // While the service is away: many changes, and the stream forgets the early ones.
            for (var i = 0; i < 50; i++)
            {
                await _domains.CreateAsync(Company, $"t{i}.example.com", DomainSettings.Empty);
            }

            await _mux.GetDatabase().ExecuteAsync("XTRIM", RedisKeys.ConfigChanges, "MAXLEN", "5");
            await service.StartAsync(CancellationToken.None);
            await Eventually.WaitAsync(() => snapshot.Count == 50, TimeSpan.FromSeconds(3), "full reload");
            Assert.Equal(await _feed.GetVersionAsync(), snapshot.Version);
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
            mux.Dispose();
        }
    }

    [Fact]
    public async Task RedisDown_SnapshotKeepsServing_RestartedWithoutData_HeldUntilAccepted()
    {
        await _domains.CreateAsync(Company, "kept.example.com", Inbound("kept.example.com", "192.0.2.1"));
        var (snapshot, service, mux) = await StartSnapshotAsync();
        try
        {
            await Eventually.WaitAsync(() => snapshot.IsLoaded && snapshot.Find("kept.example.com") is not null, TimeSpan.FromSeconds(10), "loaded");
            await _redis.StopAsync();
            await Task.Delay(1500);
            Assert.True(snapshot.IsLoaded);
            Assert.NotNull(snapshot.Find("kept.example.com"));

            await _redis.RestartAsync();
            // Data was not persisted (no AOF in this test): Redis lost data. requirements §4 rule 5: the loss is not a
            // decision; the snapshot keeps the domain and holds until an operator accepts the empty state.
            await Eventually.WaitAsync(() => snapshot.Hold is not null, TimeSpan.FromSeconds(15), "hold after Redis lost data");
            Assert.NotNull(snapshot.Find("kept.example.com"));
            Assert.Contains("lineage id vanished", snapshot.Hold!.Reason, StringComparison.Ordinal);

            await new ConfigStateStore(_mux).AcceptAsync("operator", "restart without persistence, test", DateTimeOffset.UtcNow);
            await Eventually.WaitAsync(() => snapshot.Hold is null && snapshot.Find("kept.example.com") is null, TimeSpan.FromSeconds(15), "reload once accepted");
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
            mux.Dispose();
        }
    }

    [Fact]
    public async Task FlushAll_SnapshotHeld_ReportedInRedis_NewSavesIgnored_UntilAccepted()
    {
        await _domains.CreateAsync(Company, "kept.example.com", Inbound("kept.example.com", "192.0.2.1"));
        var (snapshot, service, mux) = await StartSnapshotAsync();
        try
        {
            await Eventually.WaitAsync(() => snapshot.Find("kept.example.com") is not null && snapshot.Epoch is not null, TimeSpan.FromSeconds(10), "loaded");
            var epoch = snapshot.Epoch;
            using (var admin = await _redis.ConnectAsync())
            {
                await admin.GetServers()[0].FlushAllDatabasesAsync();
            }

            await Eventually.WaitAsync(() => snapshot.Hold is not null, TimeSpan.FromSeconds(10), "hold after FLUSHALL");

            // New saves after the loss climb past the old version: still held (the lineage id changed), nothing applied.
            Assert.True(await new TenantStore(_mux).CreateAsync(new TenantRecord(Company, Company, DateTimeOffset.UtcNow)));
            for (var i = 0; i < 5; i++)
            {
                await _domains.CreateAsync(Company, $"after{i}.example.com", DomainSettings.Empty);
            }

            var states = new ConfigStateStore(_mux);
            await Eventually.WaitAsync(async () => (await states.ListHeldAsync(DateTimeOffset.UtcNow, TimeSpan.FromSeconds(30))).Count == 1,
                TimeSpan.FromSeconds(10), "the hold reported in Redis");
            await Task.Delay(1000);
            Assert.NotNull(snapshot.Hold);
            Assert.NotNull(snapshot.Find("kept.example.com"));
            Assert.Null(snapshot.Find("after0.example.com"));
            Assert.Equal(epoch, snapshot.Epoch);

            var accepted = await states.AcceptAsync("operator", "FLUSHALL in a test", DateTimeOffset.UtcNow);
            await Eventually.WaitAsync(() => snapshot.Hold is null && snapshot.Count == 5, TimeSpan.FromSeconds(10), "the accepted state applied");
            Assert.Null(snapshot.Find("kept.example.com"));
            Assert.Equal(accepted.Epoch, snapshot.Epoch);
            Assert.Empty(await states.ListHeldAsync(DateTimeOffset.UtcNow, TimeSpan.FromSeconds(30)));

            // Back to normal: later changes apply within the usual time.
            await _domains.CreateAsync(Company, "later.example.com", DomainSettings.Empty);
            await Eventually.WaitAsync(() => snapshot.Find("later.example.com") is not null, TimeSpan.FromSeconds(3), "a later change applied");
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
            mux.Dispose();
        }
    }

    [Fact]
    public async Task FullLoadDroppingMostDomains_Held_UntilAccepted()
    {
        for (var i = 0; i < 20; i++)
        {
            await _domains.CreateAsync(Company, $"m{i}.example.com", DomainSettings.Empty);
        }

        var (snapshot, service, mux) = await StartSnapshotAsync();
        try
        {
            await Eventually.WaitAsync(() => snapshot.Count == 20, TimeSpan.FromSeconds(10), "loaded");
            await service.StopAsync(CancellationToken.None);

            // Redis loses 15 domains without announcement (e.g. restored from a partial copy), the stream no longer
            // reaches back, and the version moved on: the full load would drop 75 % of the domains.
            var db = _mux.GetDatabase();
            for (var i = 0; i < 15; i++)
            {
                await db.HashDeleteAsync(RedisKeys.DomainRegistry, $"m{i}.example.com");
                await db.KeyDeleteAsync(RedisKeys.Domain($"m{i}.example.com"));
            }

            await _domains.CreateAsync(Company, "new.example.com", DomainSettings.Empty);
            await db.ExecuteAsync("XTRIM", RedisKeys.ConfigChanges, "MAXLEN", "0");
            await _domains.CreateAsync(Company, "new2.example.com", DomainSettings.Empty);
            await service.StartAsync(CancellationToken.None);
            await Eventually.WaitAsync(() => snapshot.Hold is not null, TimeSpan.FromSeconds(10), "hold on a sharp drop");
            Assert.Equal(20, snapshot.Count);
            Assert.Contains("drop 13 of 20", snapshot.Hold!.Reason, StringComparison.Ordinal);

            await new ConfigStateStore(_mux).AcceptAsync("operator", "partial restore, test", DateTimeOffset.UtcNow);
            await Eventually.WaitAsync(() => snapshot.Hold is null && snapshot.Count == 7, TimeSpan.FromSeconds(10), "the accepted state applied");
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
            mux.Dispose();
        }
    }

    [Fact]
    public async Task SavedButAnnouncementFailed_WorkersConvergeWithinSeconds()
    {
        const string Name = "atomic.example.com";
        await _domains.CreateAsync(Company, Name, Inbound(Name, "192.0.2.1"));
        var (snapshot, service, mux) = await StartSnapshotAsync();
        try
        {
            await Eventually.WaitAsync(() => snapshot.Find(Name)?.Config.Settings.InboundServers[0].Host == "192.0.2.1", TimeSpan.FromSeconds(10), "loaded");

            // A ControlPlane whose announcement fails after its save landed, as if it died in between: its Redis user
            // may not INCR, the first command of the announcement script (the save scripts do not use it).
            using (var admin = await _redis.ConnectAsync())
            {
                await admin.GetDatabase().ExecuteAsync("ACL", "SETUSER", "dying", "on", "nopass", "~*", "&*", "+@all", "-incr");
            }

            using var dying = await ConnectionMultiplexer.ConnectAsync(_redis.ConnectionString + ",user=dying,password=x");
            var feed = new ConfigChangeFeed(dying, _options);
            var manager = new DomainManager(new DomainStore(dying, feed), new DomainValidator(_options), _options, TimeProvider.System);
            var version = await _feed.GetVersionAsync();
            var failure = await Assert.ThrowsAsync<RedisServerException>(() => manager.ChangeAsync(Name,
                d => d with { Settings = d.Settings with { InboundServers = [new InboundServer("*@" + Name, "192.0.2.2", 25, 10)] } }, ConfigOps.Update));
            Assert.True(failure.Message.Contains("NOPERM", StringComparison.Ordinal) || failure.Message.Contains("can't run this command", StringComparison.Ordinal), failure.Message);
            Assert.Equal("192.0.2.2", (await _store.GetAsync(Name))!.Settings.InboundServers[0].Host);
            Assert.Equal(version, await _feed.GetVersionAsync());

            // The intent it left is announced by the worker once it is older than Gateway:ConfigPendingGrace (2 s).
            await Eventually.WaitAsync(() => snapshot.Find(Name)?.Config.Settings.InboundServers[0].Host == "192.0.2.2",
                TimeSpan.FromSeconds(10), "the saved change applied without its writer's announcement");
            Assert.Equal(version + 1, await _feed.GetVersionAsync());

            // Announced once; it stays, marked, for the second announcement at Gateway:ConfigPendingFinal.
            var left = await _mux.GetDatabase().SortedSetRangeByRankAsync(RedisKeys.ConfigPending);
            Assert.Equal(["update " + Name], left.Select(m => m.ToString().Split(' ', 2)[1]));
            Assert.StartsWith("!", left[0].ToString(), StringComparison.Ordinal);
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
            mux.Dispose();
        }
    }

    [Fact]
    public async Task RefusedSave_LeavesNoIntent_AnnouncedSaveForgetsItsIntent()
    {
        await _domains.CreateAsync(Company, "intent.example.com", DomainSettings.Empty);
        var (outcome, _) = await _store.ReplaceAsync((await _store.GetAsync("intent.example.com"))!, expectedRevision: 99, ConfigOps.Update);
        Assert.Equal(ChangeDomainOutcome.EtagMismatch, outcome);
        Assert.Equal(0, await _mux.GetDatabase().SortedSetLengthAsync(RedisKeys.ConfigPending));
        Assert.Equal(0, await _feed.AnnounceAbandonedAsync(TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(1)));
    }

    [Fact]
    public async Task SlowSave_WriteLandsAfterTheFirstAnnouncement_WriterDies_AnnouncedAgainAtTheFinalAge()
    {
        const string Name = "slow.example.com";
        await _domains.CreateAsync(Company, Name, Inbound(Name, "192.0.2.1"));
        _options.ConfigPendingGrace = TimeSpan.FromMilliseconds(500);
        _options.ConfigPendingFinal = TimeSpan.FromSeconds(4);
        var (snapshot, service, mux) = await StartSnapshotAsync();
        try
        {
            await Eventually.WaitAsync(() => snapshot.Find(Name)?.Config.Settings.InboundServers[0].Host == "192.0.2.1", TimeSpan.FromSeconds(10), "loaded");

            // A save's first step, its intent, as DomainStore.ReplaceAsync records it…
            var version = await _feed.GetVersionAsync();
            await _feed.BeginAsync(Name, ConfigOps.Update);

            // …is announced by the worker after the grace, while the save's write has not landed yet (Redis or the
            // connection stalled): the worker reloads the domain and finds it unchanged.
            await Eventually.WaitAsync(async () => await _feed.GetVersionAsync() == version + 1, TimeSpan.FromSeconds(10), "first announcement");
            Assert.Equal("192.0.2.1", snapshot.Find(Name)!.Config.Settings.InboundServers[0].Host);

            // Then the write lands, exactly as ReplaceAsync's script writes it, and its writer dies before announcing it.
            var current = (await _store.GetAsync(Name))!;
            var next = current with { Settings = current.Settings with { InboundServers = [new InboundServer("*@" + Name, "192.0.2.2", 25, 10)] } };
            var written = (long)await _mux.GetDatabase().ScriptEvaluateAsync(DomainStore.ReplaceScript, [RedisKeys.Domain(Name)],
                [Company, current.Revision, StoreJson.Serialize(next)]);
            Assert.True(written > current.Revision);

            // The intent comes up again at Gateway:ConfigPendingFinal: every worker applies the change, and it is forgotten.
            await Eventually.WaitAsync(() => snapshot.Find(Name)?.Config.Settings.InboundServers[0].Host == "192.0.2.2",
                TimeSpan.FromSeconds(15), "the late write applied without its writer's announcement");
            Assert.Equal(version + 2, await _feed.GetVersionAsync());
            Assert.Equal(0, await _mux.GetDatabase().SortedSetLengthAsync(RedisKeys.ConfigPending));
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
            mux.Dispose();
        }
    }

    [Fact]
    public async Task AnnouncedSave_AfterTheFirstAbandonedAnnouncement_ForgetsTheMarkedIntentToo()
    {
        await _domains.CreateAsync(Company, "marked.example.com", DomainSettings.Empty);
        var intent = await _feed.BeginAsync("marked.example.com", ConfigOps.Update);
        await Task.Delay(50);
        Assert.Equal(1, await _feed.AnnounceAbandonedAsync(TimeSpan.FromMilliseconds(1), TimeSpan.FromHours(1)));
        Assert.Equal(1, await _mux.GetDatabase().SortedSetLengthAsync(RedisKeys.ConfigPending));

        // The slow writer lives after all and announces its save: both forms of its intent go.
        await _feed.PublishAsync("marked.example.com", ConfigOps.Update, intent);
        Assert.Equal(0, await _mux.GetDatabase().SortedSetLengthAsync(RedisKeys.ConfigPending));
    }

    [Theory]
    [InlineData(10, null, 10, "e1", null)]
    [InlineData(10, "e1", 12, "e1", null)]
    [InlineData(10, "e1", 3, "e1", "went back from 10 to 3")]
    [InlineData(10, "e1", 0, null, "vanished")]
    [InlineData(10, "e1", 50, "e2", "changed")]
    [InlineData(10, null, 3, "e1", "went back from 10 to 3")]
    public void DataLossGuard_CheckLineage(long applied, string? appliedEpoch, long version, string? epoch, string? expected)
    {
        var reason = DataLossGuard.CheckLineage(applied, appliedEpoch, new ConfigLineage(version, epoch));
        if (expected is null)
        {
            Assert.Null(reason);
        }
        else
        {
            Assert.Contains(expected, reason, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(100, 49, true)]
    [InlineData(100, 50, false)]
    [InlineData(12, 0, true)]
    [InlineData(9, 0, false)]
    [InlineData(100, 120, false)]
    public void DataLossGuard_CheckDrop_PercentAndMinimum(int loaded, int incoming, bool held) =>
        Assert.Equal(held, DataLossGuard.CheckDrop(loaded, incoming, 50, 10) is not null);

    [Fact]
    public void DataLossGuard_IsAccepted_OnlyANewerLineageTheOperatorNamed()
    {
        var acceptance = new ConfigAcceptance("e2", 3, 1, DateTimeOffset.UtcNow, "operator", "test");
        Assert.True(DataLossGuard.IsAccepted(acceptance, new ConfigLineage(3, "e2"), heldEpoch: "e1"));
        Assert.False(DataLossGuard.IsAccepted(acceptance, new ConfigLineage(3, "e2"), heldEpoch: "e2"));
        Assert.False(DataLossGuard.IsAccepted(acceptance, new ConfigLineage(3, "e3"), heldEpoch: "e1"));
        Assert.False(DataLossGuard.IsAccepted(null, new ConfigLineage(3, "e2"), heldEpoch: "e1"));
    }

    [Fact]
    public async Task RedisUnreachableAtStart_NotLoaded_UntilItComes()
    {
        await _redis.StopAsync();
        var (snapshot, service, mux) = await StartSnapshotAsync();
        try
        {
            await Task.Delay(1000);
            Assert.False(snapshot.IsLoaded);
            await _redis.RestartAsync();
            await Eventually.WaitAsync(() => snapshot.IsLoaded, TimeSpan.FromSeconds(15), "loaded once Redis is up");
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
            mux.Dispose();
        }
    }
}
