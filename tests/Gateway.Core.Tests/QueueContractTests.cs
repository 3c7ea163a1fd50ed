using Gateway.Core.Mail;
using Gateway.Core.Delivery;
using Gateway.Core.Domains;
using Gateway.Core.MessageLog;
using Gateway.Core.Storage;
using Gateway.ControlPlane.Application;
using Gateway.Testing;
using StackExchange.Redis;

namespace Gateway.Core.Tests;

/// <summary>One Redis (single server or 3-master cluster) shared by the tests of a class; emptied before each test.</summary>
public abstract class QueueRedisFixture : IAsyncLifetime
{
    private IAsyncDisposable _server = null!;

    public ConnectionMultiplexer Mux { get; private set; } = null!;

    public string ConnectionString { get; private set; } = string.Empty;

    protected abstract Task<(IAsyncDisposable Server, string ConnectionString)> StartAsync();

    public async Task InitializeAsync()
    {
        (_server, ConnectionString) = await StartAsync();
        Mux = await ConnectionMultiplexer.ConnectAsync(ConnectionString + ",allowAdmin=true");
    }

    public async Task DisposeAsync()
    {
        Mux.Dispose();
        await _server.DisposeAsync();
    }

    /// <summary>FLUSHALL on every master, so each test sees an empty schedule.</summary>
    public async Task FlushAsync()
    {
        foreach (var endpoint in Mux.GetEndPoints())
        {
            var server = Mux.GetServer(endpoint);
            if (!server.IsReplica)
            {
                await server.FlushAllDatabasesAsync();
            }
        }
    }
}

public sealed class SingleQueueRedisFixture : QueueRedisFixture
{
    protected override Task<(IAsyncDisposable Server, string ConnectionString)> StartAsync() => RedisTopology.StartSingleAsync();
}

public sealed class ClusterQueueRedisFixture : QueueRedisFixture
{
    protected override Task<(IAsyncDisposable Server, string ConnectionString)> StartAsync() => RedisTopology.StartClusterAsync();
}

/// <summary>A clock the test moves by hand: leases and due times are scores computed from it, never Redis TTLs.</summary>
public sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

/// <summary>
/// The delivery queue's contract (<see cref="MessageQueue"/>, <see cref="QueueAdmin"/>), run against a single
/// redis-server and a 3-master Redis Cluster: every script and transaction must stay in one slot, and two
/// workers (two queue instances with their own lease tokens) must see one consistent schedule.
/// </summary>
[Trait("Kind", "Integration")]
public abstract class QueueContractTests<TFixture>(TFixture fx) : IAsyncLifetime
    where TFixture : QueueRedisFixture
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 12, 1, 12, 0, 0, TimeSpan.Zero));
    private readonly QueueOptions _options = new() { Lease = Lease, ScheduleShards = 8, HostName = "gateway.test" };

    public async Task InitializeAsync()
    {
        await fx.FlushAsync();

        // The queue writes only for domains that exist (a deleted domain's mail is dropped): register them.
        var db = fx.Mux.GetDatabase();
        foreach (var d in Domains)
        {
            await db.HashSetAsync(RedisKeys.Domain(d), [new("company", "acme"), new("etag", 1), new("data", "{}")]);
        }
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private MessageQueue Worker() => new(fx.Mux, _options, _clock);

    /// <summary>Domains spread over many slots (on the cluster: over all three masters).</summary>
    private static readonly string[] Domains = [.. Enumerable.Range(0, 12).Select(i => $"q{i}.example.com")];

    private static QueueEnvelope Envelope(string domain, params string[] recipients) =>
        new(domain, Direction.Inbound, "sender@remote.test", recipients.Length == 0 ? ["user@" + domain] : recipients) { ClientAddress = "127.0.0.1" };

    private async Task<List<ScheduledItem>> TakeAllAsync(MessageQueue worker)
    {
        var taken = new List<ScheduledItem>();
        for (var shard = 0; shard < _options.ScheduleShards; shard++)
        {
            taken.AddRange(await worker.TakeDueAsync(shard, 1000));
        }

        return taken;
    }

    [Fact]
    public async Task Enqueue_TakeLoadComplete_EveryDomainOnce()
    {
        var producer = Worker();
        var worker = Worker();
        var ids = new Dictionary<string, string>();
        foreach (var d in Domains)
        {
            ids[d] = await producer.EnqueueAsync(Envelope(d), System.Text.Encoding.ASCII.GetBytes($"Subject: {d}\r\n\r\nbody\r\n"));
        }

        var taken = await TakeAllAsync(worker);
        Assert.Equal(ids.OrderBy(p => p.Key).Select(p => (p.Key, p.Value)), taken.OrderBy(t => t.Domain).Select(t => (t.Domain, t.Id)));
        Assert.All(taken, t => Assert.Equal(worker.Token, t.Token));
        Assert.Empty(await TakeAllAsync(Worker()));

        foreach (var item in taken)
        {
            var (message, body) = (await worker.LoadAsync(item.Domain, item.Id))!.Value;
            Assert.Equal($"Subject: {item.Domain}\r\n\r\nbody\r\n", System.Text.Encoding.ASCII.GetString(body));
            Assert.Equal(1, await worker.CountAsync(item.Domain));
            Assert.True(await worker.SaveStateAsync(message with { Recipients = [.. message.Recipients.Select(r => r with { State = RecipientState.Delivered })] }, finished: true));
            Assert.True(await worker.CompleteAsync(item, null));
            Assert.Equal(0, await worker.CountAsync(item.Domain));
            Assert.Null(await worker.LoadAsync(item.Domain, item.Id));
        }

        _clock.Advance(Lease * 3);
        Assert.Empty(await TakeAllAsync(worker));
    }

    [Fact]
    public async Task Lease_HeldThenExpired_AnotherWorkerTakesOver_OldHolderCannotCompleteOrRenew()
    {
        var a = Worker();
        var b = Worker();
        var items = new List<ScheduledItem>();
        foreach (var d in Domains)
        {
            items.Add(await a.EnqueueLeasedAsync(Envelope(d), "x"u8.ToArray()));
        }

        // Leased to A at enqueue (the intake's fast path): B finds nothing, even when A's lease is nearly over.
        Assert.Empty(await TakeAllAsync(b));
        _clock.Advance(Lease / 2);
        foreach (var shard in items.GroupBy(i => i.Shard))
        {
            Assert.Equal(shard.Count(), await a.RenewAsync(shard.Key, [.. shard.Select(i => i.Member)]));
        }

        _clock.Advance(Lease / 2 + TimeSpan.FromSeconds(1));
        Assert.Empty(await TakeAllAsync(b));

        // A died: nothing renews; once the lease is over B takes every message.
        _clock.Advance(Lease);
        var takenByB = await TakeAllAsync(b);
        Assert.Equal(items.Select(i => i.Member).Order(), takenByB.Select(i => i.Member).Order());
        foreach (var item in items)
        {
            Assert.False(await a.CompleteAsync(item, null));
        }

        foreach (var shard in items.GroupBy(i => i.Shard))
        {
            Assert.Equal(0, await a.RenewAsync(shard.Key, [.. shard.Select(i => i.Member)]));
        }

        foreach (var item in takenByB)
        {
            Assert.True(await b.CompleteAsync(item, null));
        }

        _clock.Advance(Lease * 3);
        Assert.Empty(await TakeAllAsync(a));
    }

    [Fact]
    public async Task SaveState_OfAWorkerWhoseLeaseExpiredAndAnotherTookIt_Refused_TheOthersOutcomeStays()
    {
        // Security review L1: the lease is in the schedule shard's slot, the message in its domain's slot; the claim each
        // take writes into the message fences the save (on the cluster the two slots are on different masters).
        var a = Worker();
        var b = Worker();
        var d = Domains[5];
        var id = await Worker().EnqueueAsync(Envelope(d, "one@" + d, "two@" + d), "m"u8.ToArray());
        var takenByA = Assert.Single(await TakeAllAsync(a));
        var (byA, _) = (await a.LoadForAttemptAsync(takenByA))!.Value;

        // A stalls past its lease; B takes the message, delivers "one", defers "two".
        _clock.Advance(Lease + TimeSpan.FromSeconds(1));
        var takenByB = Assert.Single(await TakeAllAsync(b));
        var (byB, _) = (await b.LoadForAttemptAsync(takenByB))!.Value;
        var next = _clock.GetUtcNow() + TimeSpan.FromMinutes(5);
        var outcomeB = byB with
        {
            Attempts = 1, NextAttempt = next, LastError = "by B",
            Recipients = [byB.Recipients[0] with { State = RecipientState.Delivered }, byB.Recipients[1]],
        };
        Assert.True(await b.SaveStateAsync(outcomeB, finished: false));

        // A's late outcomes (finished, or a deferral) are refused: B's state stays, nothing is deleted.
        Assert.False(await a.SaveStateAsync(byA with { Recipients = [.. byA.Recipients.Select(r => r with { State = RecipientState.Failed })] }, finished: true));
        Assert.False(await a.SaveStateAsync(byA with { Attempts = 1, LastError = "by A" }, finished: false));
        Assert.Equal(2, a.StaleSaves);
        var stored = (await a.GetAsync(d, id))!;
        Assert.Equal("by B", stored.LastError);
        Assert.Equal([RecipientState.Delivered, RecipientState.Pending], stored.Recipients.Select(r => r.State));
        Assert.Equal(1, await a.CountAsync(d));
        Assert.False(await a.CompleteAsync(takenByA, null));
        Assert.True(await b.CompleteAsync(takenByB, next));

        // The intake's fast path: the copy A stored and kept leased; its lease expires, B takes it: A's save is refused too.
        var (fastItem, fastCopy) = await a.EnqueueLeasedWithMessageAsync(Envelope(d), "f"u8.ToArray());
        _clock.Advance(Lease + TimeSpan.FromSeconds(1));
        var retaken = (await TakeAllAsync(b)).Single(i => i.Id == fastItem.Id);
        var (fastByB, _) = (await b.LoadForAttemptAsync(retaken))!.Value;
        Assert.False(await a.SaveStateAsync(fastCopy with { LastError = "by A" }, finished: true));
        Assert.True(await b.SaveStateAsync(fastByB with { LastError = "by B" }, finished: false));
        Assert.Equal("by B", (await b.GetAsync(d, fastItem.Id))!.LastError);

        // Unfenced when nobody took it since: the fast path's own save, and a worker's save of what it took.
        var (ownItem, ownCopy) = await a.EnqueueLeasedWithMessageAsync(Envelope(d), "o"u8.ToArray());
        Assert.True(await a.SaveStateAsync(ownCopy with { LastError = "mine" }, finished: false));
        Assert.True(await a.CompleteAsync(ownItem, _clock.GetUtcNow()));
        Assert.Equal(3, a.StaleSaves);
    }

    [Fact]
    public async Task Defer_PerRecipientStateKept_DueAgainAtNextAttempt()
    {
        var worker = Worker();
        var d = Domains[3];
        var item = await worker.EnqueueLeasedAsync(Envelope(d, "one@" + d, "two@" + d, "three@" + d), "m"u8.ToArray());
        var message = (await worker.GetAsync(d, item.Id))!;
        Assert.All(message.Recipients, r => Assert.Equal(RecipientState.Pending, r.State));

        var next = _clock.GetUtcNow() + TimeSpan.FromMinutes(5);
        var deferred = message with
        {
            Attempts = 1,
            NextAttempt = next,
            LastError = "127.0.0.2:25: 451 4.3.0 try later",
            Recipients =
            [
                message.Recipients[0] with { State = RecipientState.Delivered, LastReply = "250 ok" },
                message.Recipients[1] with { LastReply = "451 4.3.0 try later", LastHost = "127.0.0.2:25" },
                message.Recipients[2] with { State = RecipientState.Failed, LastReply = "550 5.1.1 no such user" },
            ],
        };
        Assert.True(await worker.SaveStateAsync(deferred, finished: false));
        Assert.True(await worker.CompleteAsync(item, next));

        Assert.Empty(await TakeAllAsync(worker));
        var listed = Assert.Single((await worker.ListAsync(d, null, 10)).Items);
        Assert.Equal(next, listed.NextAttempt);
        Assert.Equal(["two@" + d], listed.Pending.Select(r => r.Address));
        Assert.Equal(1, listed.Attempts);
        Assert.Equal("127.0.0.2:25: 451 4.3.0 try later", listed.LastError);

        _clock.Advance(TimeSpan.FromMinutes(5));
        var again = Assert.Single(await TakeAllAsync(Worker()));
        Assert.Equal(item.Member, again.Member);
    }

    [Fact]
    public async Task RoundRobin_TwoWorkersShareOneCounterPerGroup()
    {
        var a = Worker();
        var b = Worker();
        var turns = new List<long>();
        for (var i = 0; i < 50; i++)
        {
            turns.Add(await (i % 2 == 0 ? a : b).NextTurnAsync(Domains[0], "g1"));
        }

        Assert.Equal(Enumerable.Range(1, 50).Select(i => (long)i), turns);
        // Groups and domains count separately (each domain's counter lives in its own slot).
        Assert.Equal(1, await b.NextTurnAsync(Domains[0], "g2"));
        Assert.Equal(1, await a.NextTurnAsync(Domains[7], "g1"));
    }

    [Fact]
    public async Task Admin_ListPagesRetryNowRemoveSweep()
    {
        var worker = Worker();
        var d = Domains[5];
        var ids = new List<string>();
        for (var i = 0; i < 7; i++)
        {
            ids.Add(await worker.EnqueueAsync(Envelope(d), "m"u8.ToArray()));
        }

        // Paging by (next attempt, id) returns each message once.
        var seen = new List<string>();
        (double, string)? cursor = null;
        do
        {
            var (items, last) = await worker.ListAsync(d, cursor, 3);
            seen.AddRange(items.Select(m => m.Id));
            cursor = last;
        }
        while (cursor is not null);
        Assert.Equal(ids.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));

        // Retry now: a deferred message becomes due; one a worker holds is "in flight".
        var held = Assert.Single(await worker.TakeDueAsync(worker.ShardOf(ids[0]), 1000), t => t.Id == ids[0]);
        Assert.Equal(RetryNowOutcome.InFlight, await worker.RetryNowAsync(d, ids[0]));
        Assert.True(await worker.CompleteAsync(held, _clock.GetUtcNow() + TimeSpan.FromHours(1)));
        Assert.Equal(RetryNowOutcome.Scheduled, await worker.RetryNowAsync(d, ids[0]));
        Assert.Contains(await worker.TakeDueAsync(worker.ShardOf(ids[0]), 1000), t => t.Id == ids[0]);
        Assert.Equal(RetryNowOutcome.NotFound, await worker.RetryNowAsync(d, MessageId.New(_clock.GetUtcNow())));

        // Remove: gone from the domain's index and from the schedule.
        var removed = await worker.RemoveAsync(d, ids[1]);
        Assert.Equal(ids[1], removed!.Value.Message.Id);
        Assert.Null(await worker.RemoveAsync(d, ids[1]));
        Assert.Equal(6, await worker.CountAsync(d));
        _clock.Advance(Lease * 3);
        Assert.DoesNotContain(await TakeAllAsync(Worker()), t => t.Id == ids[1]);

        // Sweep: a message whose schedule entry was lost (crash between the two writes) is scheduled again.
        var lost = ids[2];
        var db = fx.Mux.GetDatabase();
        await db.SortedSetRemoveAsync(RedisKeys.ScheduleDue(worker.ShardOf(lost)), d + "|" + lost);
        await db.HashDeleteAsync(RedisKeys.ScheduleLeases(worker.ShardOf(lost)), d + "|" + lost);
        _clock.Advance(Lease * 3);
        Assert.Equal(1, await worker.SweepAsync([d]));
        Assert.Contains(await TakeAllAsync(worker), t => t.Id == lost);
    }

    [Fact]
    public async Task QueueAdmin_BounceQueuesDsnAndLogs_DeleteRemoves_OtherTenantNotFound()
    {
        var options = new GatewayOptions { Redis = fx.ConnectionString, AllowLoopbackDestinations = true };
        var feed = new ConfigChangeFeed(fx.Mux, options);
        var store = new DomainStore(fx.Mux, feed);
        var tenants = new TenantManager(new TenantStore(fx.Mux), store, options, _clock);
        var domains = new DomainManager(store, new DomainValidator(options), options, _clock);
        var queue = Worker();
        var admin = new QueueAdmin(domains, store, queue, new MessageLogWriter(fx.Mux, options, _clock), _clock);
        await tenants.CreateAsync("acme", null);
        await tenants.CreateAsync("other", null);
        var d = (await domains.CreateAsync("acme", "bounce.example.com", DomainSettings.Empty)).Name;

        var bounced = await queue.EnqueueAsync(Envelope(d), "Subject: hi\r\n\r\nbody\r\n"u8.ToArray());
        var deleted = await queue.EnqueueAsync(Envelope(d), "Subject: hi\r\n\r\nbody\r\n"u8.ToArray());
        await Assert.ThrowsAsync<Errors.GatewayException>(() => admin.GetAsync("other", d, bounced));

        var (_, dsnId) = await admin.BounceAsync("acme", d, bounced, "testing", CancellationToken.None);
        Assert.NotNull(dsnId);
        var dsn = (await queue.GetAsync(d, dsnId!))!;
        Assert.True(dsn.IsDsn);
        Assert.Equal(Direction.Outbound, dsn.Direction);
        Assert.Equal(["sender@remote.test"], dsn.Recipients.Select(r => r.Address));
        Assert.Null(await queue.GetAsync(d, bounced));
        var log = await fx.Mux.GetDatabase().StreamRangeAsync(RedisKeys.DomainLog(d));
        Assert.Contains(log, e => e["event"] == MessageLogEvents.Bounced && e["message_id"] == bounced);

        await admin.DeleteAsync("acme", d, deleted);
        Assert.Null(await queue.GetAsync(d, deleted));
        Assert.Equal([dsnId], (await admin.ListAsync("acme", d, 10, null)).Items.Select(m => m.Id));
    }
}

public sealed class SingleRedisQueueTests(SingleQueueRedisFixture fx) : QueueContractTests<SingleQueueRedisFixture>(fx), IClassFixture<SingleQueueRedisFixture>;

/// <summary>The same contract on a 3-master Redis Cluster (requirements §1: one Redis or Redis Cluster).</summary>
public sealed class ClusterQueueTests(ClusterQueueRedisFixture fx) : QueueContractTests<ClusterQueueRedisFixture>(fx), IClassFixture<ClusterQueueRedisFixture>;
