using Gateway.Core.Mail;
using Gateway.Core.Delivery;
using Gateway.Core.Domains;
using Gateway.Core.Errors;
using Gateway.Core.MessageLog;
using Gateway.Core.Storage;
using Gateway.ControlPlane.Application;
using Gateway.Testing;
using StackExchange.Redis;

namespace Gateway.Core.Tests;

/// <summary>
/// requirements §3.15 at the store: refused while mail is queued or quarantined, forced deletion removes every key
/// of the domain (its hash-tag keys and its schedule shard members) in batches, writers racing the purge create
/// nothing, and a crashed deletion is finished by <see cref="DomainStore.ResumePurgesAsync"/>. On one redis-server
/// and on a 3-master Redis Cluster (SCAN must run on every master).
/// </summary>
[Trait("Kind", "Integration")]
public abstract class DomainDeletionTests : IAsyncLifetime
{
    private const string Company = "acme";
    private IAsyncDisposable _redis = null!;
    private ConnectionMultiplexer _mux = null!;
    private GatewayOptions _options = null!;
    private readonly QueueOptions _queueOptions = new() { ScheduleShards = 4 };

    protected abstract Task<(IAsyncDisposable Server, string ConnectionString)> StartRedisAsync();

    public async Task InitializeAsync()
    {
        var (server, connection) = await StartRedisAsync();
        _redis = server;
        _mux = await ConnectionMultiplexer.ConnectAsync(connection + ",allowAdmin=true");
        _options = new GatewayOptions { Redis = connection };
    }

    public async Task DisposeAsync()
    {
        _mux.Dispose();
        await _redis.DisposeAsync();
    }

    private (DomainManager Domains, DomainStore Store, MessageQueue Queue, MessageLogWriter Log) Services()
    {
        var store = new DomainStore(_mux, new ConfigChangeFeed(_mux, _options), _queueOptions.ScheduleShards);
        return (new DomainManager(store, new DomainValidator(_options), _options, TimeProvider.System), store,
            new MessageQueue(_mux, _queueOptions, TimeProvider.System), new MessageLogWriter(_mux, _options, TimeProvider.System));
    }

    private async Task<(DomainManager Domains, DomainStore Store, MessageQueue Queue, MessageLogWriter Log)> SetUpAsync(params string[] names)
    {
        var s = Services();
        await new TenantManager(new TenantStore(_mux), s.Store, _options, TimeProvider.System).CreateAsync(Company, null);
        foreach (var n in names)
        {
            await s.Domains.CreateAsync(Company, n, DomainSettings.Empty);
        }

        return s;
    }

    private static Task<string> EnqueueAsync(MessageQueue queue, string domain) =>
        queue.EnqueueAsync(new QueueEnvelope(domain, Direction.Inbound, "s@remote.test", ["u@" + domain]), "Subject: t\r\n\r\nx\r\n"u8.ToArray());

    [Fact]
    public async Task Delete_WhileQueuedOrQuarantined_FailedPreconditionAndNothingRemoved()
    {
        var (domains, _, queue, log) = await SetUpAsync("queued.example.com", "held.example.com");
        await EnqueueAsync(queue, "queued.example.com");
        var db = _mux.GetDatabase();
        // A quarantine entry as the quarantine store keeps it: the index plus a hash in the domain's slot.
        await db.SortedSetAddAsync(RedisKeys.DomainQuarantine("held.example.com"), "q1", 1);
        await db.HashSetAsync($"gw:{RedisKeys.DomainTag("held.example.com")}:quarantine:q1", "env", "{}");
        await log.AppendAsync(new MessageLogEvent { Domain = "held.example.com", Event = MessageLogEvents.Quarantined, MessageId = "q1" });

        foreach (var name in new[] { "queued.example.com", "held.example.com" })
        {
            var e = await Assert.ThrowsAsync<GatewayException>(() => domains.DeleteAsync(Company, name, force: false, etag: null));
            Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
            Assert.NotNull(await domains.GetAsync(Company, name));
        }

        Assert.Equal(1, await db.StreamLengthAsync(RedisKeys.DomainLog("held.example.com")));
        Assert.Equal(0, await db.HashLengthAsync(RedisKeys.DomainsBeingDeleted));
        Assert.Equal(1, await queue.CountAsync("queued.example.com"));
    }

    [Fact]
    public async Task ForcedDelete_LargeDomain_EveryKeyAndScheduleMemberGone_NeighbourUntouched()
    {
        const string Doomed = "doomed.example.com";
        const string Neighbour = "doomed.example.com.neighbour.test";
        var (domains, store, queue, log) = await SetUpAsync(Doomed, Neighbour);
        var db = _mux.GetDatabase();
        var ids = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            ids.Add(await EnqueueAsync(queue, Doomed));
        }

        var kept = await EnqueueAsync(queue, Neighbour);
        // One message leased by a worker at this moment (its lease hash entry must go too).
        var taken = new List<ScheduledItem>();
        for (var shard = 0; shard < _queueOptions.ScheduleShards; shard++)
        {
            taken.AddRange(await queue.TakeDueAsync(shard, 1));
        }

        Assert.NotEmpty(taken);
        await queue.NextTurnAsync(Doomed, "g1");
        await db.SortedSetAddAsync(RedisKeys.DomainQuarantine(Doomed), "q1", 1);
        await log.AppendManyAsync(Enumerable.Range(0, 100).Select(i => new MessageLogEvent { Domain = Doomed, Event = MessageLogEvents.Intake, MessageId = "m" + i }).ToList());
        await log.AppendAsync(new MessageLogEvent { Domain = Neighbour, Event = MessageLogEvents.Intake, MessageId = kept });
        // Many more keys than one batch: the purge must page through them (rules, quarantined bodies, ...).
        const int Extra = 12_000;
        foreach (var chunk in Enumerable.Range(0, Extra).Chunk(1000))
        {
            await Task.WhenAll(chunk.Select(i => db.StringSetAsync($"gw:{RedisKeys.DomainTag(Doomed)}:extra:{i}", "x")));
        }

        var (_, undo) = await domains.DeleteAsync(Company, Doomed, force: true, etag: null);
        Assert.Equal(["MX", "CONNECTOR", "SPF", "TXT"], undo.Select(u => u.Code));

        Assert.Empty(await KeysMentioningAsync(Doomed, Neighbour));
        Assert.Empty(await ScheduleMembersOfAsync(Doomed + "|"));
        Assert.False(await db.HashExistsAsync(RedisKeys.DomainRegistry, Doomed));
        Assert.Equal(0, await db.HashLengthAsync(RedisKeys.DomainsBeingDeleted));
        Assert.Equal(1, await store.CountAsync(Company));

        // The neighbour (whose name starts with the deleted one) keeps everything.
        Assert.NotNull(await queue.GetAsync(Neighbour, kept));
        Assert.Single(await ScheduleMembersOfAsync(Neighbour + "|"));
        Assert.Equal(1, await db.StreamLengthAsync(RedisKeys.DomainLog(Neighbour)));

        // The name is free again, for anyone.
        await new TenantManager(new TenantStore(_mux), store, _options, TimeProvider.System).CreateAsync("other", null);
        Assert.Equal(Doomed, (await domains.CreateAsync("other", Doomed, DomainSettings.Empty)).Name);
    }

    [Fact]
    public async Task Tombstoned_RacingWritersCreateNothing_ResumeFinishesThePurge()
    {
        const string D = "race.example.com";
        var (domains, store, queue, log) = await SetUpAsync(D);
        var db = _mux.GetDatabase();
        var id = await EnqueueAsync(queue, D);
        var message = (await queue.GetAsync(D, id))!;
        await log.AppendAsync(new MessageLogEvent { Domain = D, Event = MessageLogEvents.Intake, MessageId = id });

        // A ControlPlane that crashed right after the tombstone: intent recorded, settings gone, nothing purged.
        await db.HashSetAsync(RedisKeys.DomainsBeingDeleted, D, "1 0");
        await db.KeyDeleteAsync(RedisKeys.Domain(D));

        // A Deliverer that still has the domain in its snapshot keeps working on it meanwhile.
        Assert.Null(await queue.LoadAsync(D, id)); // dropped, never delivered
        await log.AppendAsync(new MessageLogEvent { Domain = D, Event = MessageLogEvents.Delivered, MessageId = id });
        Assert.Equal(1, await db.StreamLengthAsync(RedisKeys.DomainLog(D)));
        Assert.Equal(1, await queue.NextTurnAsync(D, "g1"));
        Assert.False(await db.KeyExistsAsync(RedisKeys.RoundRobin(D, "g1")));
        Assert.False(await queue.SaveStateAsync(message with { Attempts = 1 }, finished: false));
        Assert.False(await db.KeyExistsAsync(RedisKeys.QueueMessage(D, id)));
        await Assert.ThrowsAsync<DomainDeletedException>(() => EnqueueAsync(queue, D));

        // Nobody can register the name while its keys are being purged.
        var e = await Assert.ThrowsAsync<GatewayException>(() => domains.CreateAsync(Company, D, DomainSettings.Empty));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);

        Assert.Equal([D], await store.ResumePurgesAsync(TimeSpan.Zero));
        Assert.Empty(await KeysMentioningAsync(D, null));
        Assert.Empty(await ScheduleMembersOfAsync(D + "|"));
        Assert.False(await db.HashExistsAsync(RedisKeys.DomainRegistry, D));
        Assert.Equal(0, await store.CountAsync(Company));
        Assert.Equal(D, (await domains.CreateAsync(Company, D, DomainSettings.Empty)).Name);
    }

    [Fact]
    public async Task Delete_RefusedWhileAForcedDeleteOfTheSameDomainRuns_ItsIntentStays()
    {
        const string D = "twice.example.com";
        var (domains, _, queue, _) = await SetUpAsync(D);
        await EnqueueAsync(queue, D);
        var db = _mux.GetDatabase();
        // A forced delete has recorded its intent and not yet tombstoned the settings.
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        await db.HashSetAsync(RedisKeys.DomainsBeingDeleted, D, "1 " + now);

        var e = await Assert.ThrowsAsync<GatewayException>(() => domains.DeleteAsync(Company, D, force: false, etag: null));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Equal("1 " + now, (string?)await db.HashGetAsync(RedisKeys.DomainsBeingDeleted, D));
    }

    [Fact]
    public async Task ResumePurges_RefusedDeleteLeftAnIntent_DomainKept()
    {
        const string D = "kept.example.com";
        var (domains, store, _, _) = await SetUpAsync(D);
        await _mux.GetDatabase().HashSetAsync(RedisKeys.DomainsBeingDeleted, D, "1 0");
        Assert.Empty(await store.ResumePurgesAsync(TimeSpan.Zero));
        Assert.NotNull(await domains.GetAsync(Company, D));
        Assert.Equal(0, await _mux.GetDatabase().HashLengthAsync(RedisKeys.DomainsBeingDeleted));
    }

    /// <summary>Every key on every master whose name contains <paramref name="name"/> (and not <paramref name="except"/>).</summary>
    private async Task<List<string>> KeysMentioningAsync(string name, string? except)
    {
        var found = new List<string>();
        foreach (var endpoint in _mux.GetEndPoints())
        {
            var server = _mux.GetServer(endpoint);
            if (server.IsReplica)
            {
                continue;
            }

            await foreach (var key in server.KeysAsync(pattern: "*", pageSize: 1000))
            {
                var k = key.ToString();
                if (k.Contains(name, StringComparison.Ordinal) && (except is null || !k.Contains(except, StringComparison.Ordinal)))
                {
                    found.Add(k);
                }
            }
        }

        return found;
    }

    private async Task<List<string>> ScheduleMembersOfAsync(string prefix)
    {
        var db = _mux.GetDatabase();
        var found = new List<string>();
        for (var shard = 0; shard < _queueOptions.ScheduleShards; shard++)
        {
            found.AddRange((await db.SortedSetRangeByRankAsync(RedisKeys.ScheduleDue(shard))).Select(m => m.ToString()).Where(m => m.StartsWith(prefix, StringComparison.Ordinal)));
            found.AddRange((await db.HashKeysAsync(RedisKeys.ScheduleLeases(shard))).Select(m => m.ToString()).Where(m => m.StartsWith(prefix, StringComparison.Ordinal)));
        }

        return found;
    }
}

public sealed class SingleRedisDomainDeletionTests : DomainDeletionTests
{
    protected override async Task<(IAsyncDisposable Server, string ConnectionString)> StartRedisAsync()
    {
        var redis = await RedisServer.StartAsync();
        return (redis, redis.ConnectionString);
    }
}

public sealed class ClusterDomainDeletionTests : DomainDeletionTests
{
    protected override async Task<(IAsyncDisposable Server, string ConnectionString)> StartRedisAsync()
    {
        var cluster = await RedisCluster.StartAsync();
        return (cluster, cluster.ConnectionString);
    }
}
