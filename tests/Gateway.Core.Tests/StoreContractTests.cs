using Gateway.Core.Domains;
using Gateway.Core.MessageLog;
using Gateway.Core.Snapshot;
using Gateway.Core.Storage;
using Gateway.ControlPlane.Application;
using Gateway.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Gateway.Core.Tests;

/// <summary>
/// The store's behaviour, run against a single redis-server and against a 3-master Redis Cluster:
/// every script must stay in one slot, scans must cover every master, pub/sub must reach subscribers.
/// </summary>
[Trait("Kind", "Integration")]
public abstract class StoreContractTests : IAsyncLifetime
{
    private IAsyncDisposable _redis = null!;

    protected ConnectionMultiplexer Mux { get; private set; } = null!;

    protected GatewayOptions Options { get; private set; } = null!;

    protected abstract Task<(IAsyncDisposable Server, string ConnectionString)> StartRedisAsync();

    public async Task InitializeAsync()
    {
        var (server, connection) = await StartRedisAsync();
        _redis = server;
        Mux = await ConnectionMultiplexer.ConnectAsync(connection + ",allowAdmin=true");
        Options = new GatewayOptions { Redis = connection, SnapshotReconcileInterval = TimeSpan.FromMilliseconds(200) };
    }

    public async Task DisposeAsync()
    {
        Mux.Dispose();
        await _redis.DisposeAsync();
    }

    private (TenantManager Tenants, DomainManager Domains, DomainStore Store, ConfigChangeFeed Feed) Services()
    {
        var feed = new ConfigChangeFeed(Mux, Options);
        var store = new DomainStore(Mux, feed);
        var tenantStore = new TenantStore(Mux);
        return (new TenantManager(tenantStore, store, Options, TimeProvider.System),
            new DomainManager(store, new DomainValidator(Options), Options, TimeProvider.System), store, feed);
    }

    [Fact]
    public async Task Tenants_CreateListKeysDelete()
    {
        var (tenants, _, _, _) = Services();
        foreach (var id in new[] { "alpha", "bravo", "charlie" })
        {
            await tenants.CreateAsync(id, null);
        }

        var (page, next) = await tenants.ListAsync(2, null);
        Assert.Equal(["alpha", "bravo"], page.Select(t => t.CompanyId));
        var (rest, end) = await tenants.ListAsync(2, next);
        Assert.Equal(["charlie"], rest.Select(t => t.CompanyId));
        Assert.Equal(string.Empty, end);

        var (record, key) = await tenants.CreateApiKeyAsync("bravo", "k");
        Assert.Equal(Principal.Tenant("bravo"), await tenants.AuthenticateAsync(key));
        await tenants.RevokeApiKeyAsync(record.KeyId);
        Assert.Null(await tenants.AuthenticateAsync(key));

        var (_, key2) = await tenants.CreateApiKeyAsync("charlie", "k2");
        await tenants.DeleteAsync("charlie", force: false);
        Assert.Null(await tenants.AuthenticateAsync(key2));
    }

    [Fact]
    public async Task Domains_UniqueAcrossTenants_CasUpdate_DeleteRemovesEveryKeyOnEveryNode()
    {
        var (tenants, domains, store, feed) = Services();
        await tenants.CreateAsync("acme", null);
        await tenants.CreateAsync("other", null);
        var names = Enumerable.Range(0, 20).Select(i => $"n{i}.example.com").ToList();
        foreach (var n in names)
        {
            await domains.CreateAsync("acme", n, DomainSettings.Empty);
        }

        var dup = await Assert.ThrowsAsync<Errors.GatewayException>(() => domains.CreateAsync("other", "N3.example.com", DomainSettings.Empty));
        Assert.Equal(DomainManager.AlreadyManagedMessage, dup.Message);

        var listed = new List<string>();
        string? token = null;
        do
        {
            var (items, next) = await domains.ListAsync("acme", 7, token);
            listed.AddRange(items.Select(d => d.Name));
            token = next.Length == 0 ? null : next;
        }
        while (token is not null);
        Assert.Equal(names.Order(StringComparer.Ordinal), listed);

        var current = await domains.GetAsync("acme", "n1.example.com");
        var patch = new DomainSettings(false, [], new OutboundSettings(true, true, false, ["192.0.2.1"]));
        var updated = await domains.UpdateAsync("acme", "n1.example.com", patch, ["outbound"], current.Etag);
        Assert.Equal(current.Revision + 1, updated.Revision);
        await Assert.ThrowsAsync<Errors.GatewayException>(() => domains.UpdateAsync("acme", "n1.example.com", patch, ["outbound"], current.Etag));

        // Keys of later features carry the domain's hash tag; deletion must find them wherever the slot lives.
        var db = Mux.GetDatabase();
        for (var i = 0; i < names.Count; i++)
        {
            await db.StringSetAsync($"gw:{RedisKeys.DomainTag(names[i])}:extra:{i}", "x");
        }

        var before = await feed.GetVersionAsync();
        foreach (var n in names)
        {
            await domains.DeleteAsync("acme", n, force: false, etag: null);
        }

        Assert.Equal(before + names.Count, await feed.GetVersionAsync());
        foreach (var n in names)
        {
            await foreach (var _ in KeysAsync(RedisKeys.DomainKeyPattern(n)))
            {
                Assert.Fail($"a key of {n} survived deletion");
            }
        }

        Assert.Equal(0, await store.CountAsync("acme"));
        await domains.CreateAsync("other", "n3.example.com", DomainSettings.Empty);
    }

    [Fact]
    public async Task ChangeFeed_PublishedAndStreamed_SnapshotFollows()
    {
        var (tenants, domains, store, feed) = Services();
        await tenants.CreateAsync("acme", null);
        await domains.CreateAsync("acme", "before.example.com", DomainSettings.Empty);

        var snapshot = new ConfigSnapshot();
        var service = new ConfigSnapshotService(snapshot, store, feed, Mux, Options, TimeProvider.System, NullLogger<ConfigSnapshotService>.Instance);
        var received = System.Threading.Channels.Channel.CreateUnbounded<string>();
        var subscriber = Mux.GetSubscriber();
        await subscriber.SubscribeAsync(RedisKeys.ConfigChannel, (_, m) => received.Writer.TryWrite(m.ToString()));
        await service.StartAsync(CancellationToken.None);
        try
        {
            await Eventually.WaitAsync(() => snapshot.Find("before.example.com") is not null, TimeSpan.FromSeconds(10), "initial load");
            await domains.CreateAsync("acme", "after.example.com", DomainSettings.Empty);
            await Eventually.WaitAsync(() => snapshot.Find("after.example.com") is not null, TimeSpan.FromSeconds(1), "change applied");

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            string message;
            do
            {
                message = await received.Reader.ReadAsync(timeout.Token);
            }
            while (!message.EndsWith(" after.example.com", StringComparison.Ordinal));
            Assert.True(ConfigChangeFeed.TryParseMessage(message, out var change));
            Assert.Equal(ConfigOps.Create, change.Op);
            Assert.Contains(change, await feed.ReadAfterAsync(change.Version - 1));
        }
        finally
        {
            await service.StopAsync(CancellationToken.None);
            await subscriber.UnsubscribeAllAsync();
        }
    }

    [Fact]
    public async Task MessageLog_AppendsToTheDomainsStream()
    {
        var writer = new MessageLogWriter(Mux, Options, TimeProvider.System);
        var db = Mux.GetDatabase();
        await db.HashSetAsync(RedisKeys.Domain("a.example.com"), "company", "acme");
        await db.HashSetAsync(RedisKeys.Domain("b.example.com"), "company", "acme");
        await writer.AppendManyAsync([
            new MessageLogEvent { Domain = "a.example.com", Event = MessageLogEvents.Intake, MessageId = "m1" },
            new MessageLogEvent { Domain = "b.example.com", Event = MessageLogEvents.Delivered, MessageId = "m2" },
            new MessageLogEvent { Domain = "unmanaged.example.com", Event = MessageLogEvents.Delivered, MessageId = "m3" },
        ]);
        Assert.Equal("m1", (await db.StreamRangeAsync(RedisKeys.DomainLog("a.example.com")))[0]["message_id"].ToString());
        Assert.Equal("m2", (await db.StreamRangeAsync(RedisKeys.DomainLog("b.example.com")))[0]["message_id"].ToString());
        Assert.False(await db.KeyExistsAsync(RedisKeys.DomainLog("unmanaged.example.com")), "no log for a domain without settings (deleted)");
    }

    private async IAsyncEnumerable<RedisKey> KeysAsync(RedisValue pattern)
    {
        foreach (var endpoint in Mux.GetEndPoints())
        {
            var server = Mux.GetServer(endpoint);
            if (server.IsReplica)
            {
                continue;
            }

            await foreach (var key in server.KeysAsync(pattern: pattern))
            {
                yield return key;
            }
        }
    }
}

public sealed class SingleRedisStoreTests : StoreContractTests
{
    protected override Task<(IAsyncDisposable Server, string ConnectionString)> StartRedisAsync() => RedisTopology.StartSingleAsync();
}

/// <summary>The same contract on a 3-master Redis Cluster (requirements §1: one Redis or Redis Cluster).</summary>
public sealed class ClusterStoreTests : StoreContractTests
{
    protected override Task<(IAsyncDisposable Server, string ConnectionString)> StartRedisAsync() => RedisTopology.StartClusterAsync();
}
