using Gateway.Api.V1;
using Gateway.Core;
using Gateway.Core.Delivery;
using Gateway.Core.Domains;
using Gateway.Core.MessageLog;
using Gateway.Core.Quarantine;
using QuarantinedMessage = Gateway.Core.Quarantine.QuarantinedMessage;
using Gateway.Core.Storage;
using Microsoft.Extensions.Logging.Abstractions;
using Gateway.ControlPlane.Jobs;
using Gateway.ControlPlane.Application;
using Gateway.Core.Mail;

namespace ControlPlane.Tests;

/// <summary>Quarantine expiry (requirements §7: 30 days) driven by a test clock against real Redis; the sweep lease across instances.</summary>
[Trait("Kind", "Integration")]
public sealed class QuarantineExpiryTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    /// <summary>A clock the test moves by hand (the sweep reads only the current time).</summary>
    private sealed class TestClock(DateTimeOffset start) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = start;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    /// <summary>The ControlPlane's maintenance round (it also expires quarantine), as a second ControlPlane would run it.</summary>
    private MaintenanceService Sweeper(TimeProvider clock, QuarantineOptions options)
    {
        var gateway = new GatewayOptions();
        var feed = new ConfigChangeFeed(fx.RedisClient, gateway);
        var store = new DomainStore(fx.RedisClient, feed);
        var domains = new DomainManager(store, new DomainValidator(gateway), gateway, clock);
        var queue = new MessageQueue(fx.RedisClient, new QueueOptions(), clock);
        var log = new MessageLogWriter(fx.RedisClient, gateway, clock);
        var admin = new QuarantineAdmin(domains, new QuarantineStore(fx.RedisClient), queue, log, options, clock);
        return new MaintenanceService(fx.RedisClient, store, log, admin, gateway, clock, NullLogger<MaintenanceService>.Instance);
    }

    private static async Task<int?> ExpiredAsync(MaintenanceService sweeper) => (await sweeper.TryRunAsync(CancellationToken.None))?.Expired;

    /// <summary>A new tenant with one domain; its name and the tenant's key.</summary>
    private async Task<(string Domain, string Key)> DomainAsync(string label)
    {
        var (_, key, domainsApi) = await fx.NewTenantAsync(label);
        var d = ControlPlaneFixture.NewDomainName(label);
        await domainsApi.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = d } });
        return (d, key);
    }

    private static QuarantinedMessage Held(string domain, DateTimeOffset at) => new()
    {
        Id = MessageId.New(at), Domain = domain, Direction = Direction.Inbound, Sender = "s@remote.test", Recipients = ["u@" + domain],
        QuarantineTime = at, RuleId = "r000000000001",
    };

    [Fact]
    public async Task RunOnce_DeletesOnlyMessagesOlderThanRetention_LogsExpired_OneInstancePerInterval()
    {
        var (d, _) = await DomainAsync("qx");
        var db = fx.RedisClient.GetDatabase();
        await db.KeyDeleteAsync(RedisKeys.MaintenanceLock); // the hosted sweep of the ControlPlane may have taken it at start

        var start = DateTimeOffset.UtcNow;
        var clock = new TestClock(start);
        var options = new QuarantineOptions { Retention = TimeSpan.FromDays(30) };
        var store = new QuarantineStore(fx.RedisClient);
        var old = Held(d, start.AddDays(-2));
        var recent = Held(d, start);
        await store.AddManyAsync([(old, "Subject: a\r\n\r\nx\r\n"u8.ToArray()), (recent, "Subject: b\r\n\r\ny\r\n"u8.ToArray())]);

        // Day 0: nothing is 30 days old.
        var sweeper = Sweeper(clock, options);
        // (The sweep covers every domain of this Redis; the assertions look at this test's domain.)
        Assert.NotNull(await ExpiredAsync(sweeper));
        Assert.Equal(2, await store.CountAsync(d));

        // Day 29: the older message (held 2 days before) is 31 days old; the recent one stays.
        clock.Now = start.AddDays(29);
        await db.KeyDeleteAsync(RedisKeys.MaintenanceLock);
        var other = Sweeper(clock, options);
        Assert.True(await ExpiredAsync(other) >= 1);
        Assert.Null(await ExpiredAsync(sweeper)); // another instance holds the lease for this interval
        Assert.Null(await store.GetAsync(d, old.Id));
        Assert.False(await db.KeyExistsAsync(RedisKeys.QuarantineMessage(d, old.Id)));
        Assert.NotNull(await store.GetAsync(d, recent.Id));

        var log = await db.StreamRangeAsync(RedisKeys.DomainLog(d));
        var expired = Assert.Single(log, e => e["event"] == MessageLogEvents.Expired);
        Assert.Equal(old.Id, (string?)expired["message_id"]);
        Assert.Equal("u@" + d, (string?)expired["recipient"]);

        // Day 31: the recent one goes too.
        clock.Now = start.AddDays(31);
        await db.KeyDeleteAsync(RedisKeys.MaintenanceLock);
        Assert.True(await ExpiredAsync(sweeper) >= 1);
        Assert.Equal(0, await store.CountAsync(d));
        await db.KeyDeleteAsync(RedisKeys.MaintenanceLock);
    }

    [Fact]
    public async Task Options_Retention_Configurable_ShorterRetentionExpiresSooner()
    {
        var (d, _) = await DomainAsync("qy");
        var db = fx.RedisClient.GetDatabase();
        var start = DateTimeOffset.UtcNow;
        var clock = new TestClock(start);
        var store = new QuarantineStore(fx.RedisClient);
        var m = Held(d, start);
        await store.AddManyAsync([(m, "x"u8.ToArray())]);

        clock.Now = start.AddDays(8);
        await db.KeyDeleteAsync(RedisKeys.MaintenanceLock);
        Assert.NotNull(await ExpiredAsync(Sweeper(clock, new QuarantineOptions())));
        Assert.Equal(1, await store.CountAsync(d));
        await db.KeyDeleteAsync(RedisKeys.MaintenanceLock);
        Assert.True(await ExpiredAsync(Sweeper(clock, new QuarantineOptions { Retention = TimeSpan.FromDays(7) })) >= 1);
        await db.KeyDeleteAsync(RedisKeys.MaintenanceLock);
        Assert.Equal(0, await store.CountAsync(d));
    }

    [Fact]
    public async Task AddMany_DeletedOrUnknownDomain_NothingWritten()
    {
        var gone = ControlPlaneFixture.NewDomainName("gone");
        var store = new QuarantineStore(fx.RedisClient);
        var stored = await store.AddManyAsync([(Held(gone, DateTimeOffset.UtcNow), "x"u8.ToArray())]);
        Assert.Empty(stored);
        Assert.Equal(0, await store.CountAsync(gone));
        var keys = fx.RedisClient.GetServers()[0].Keys(pattern: RedisKeys.DomainKeyPattern(gone)).ToList();
        Assert.Empty(keys);
    }

    [Fact]
    public async Task ListQuarantine_RareFilterMatch_BoundedScan_ShortPagesWithToken_ThenFound()
    {
        var (d, key) = await DomainAsync("qs");
        var store = new QuarantineStore(fx.RedisClient);
        var start = DateTimeOffset.UtcNow.AddHours(-1);
        var needle = Held(d, start) with { Sender = "needle@x.example" }; // the oldest: listed last
        var hay = Enumerable.Range(1, QuarantineStore.MaxScanPerPage + 200).Select(i => Held(d, start.AddMilliseconds(i))).ToList();
        foreach (var chunk in hay.Prepend(needle).Chunk(1000))
        {
            await store.AddManyAsync(chunk.Select(m => (m, (ReadOnlyMemory<byte>)"x"u8.ToArray())).ToList());
        }

        var client = new QuarantineService.QuarantineServiceClient(fx.WithKey(key));
        var first = await client.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, Sender = "needle@x.example", PageSize = 10 });
        Assert.Empty(first.Messages);
        Assert.NotEmpty(first.NextPageToken);
        var second = await client.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, Sender = "needle@x.example", PageSize = 10, PageToken = first.NextPageToken });
        Assert.Equal([needle.Id], second.Messages.Select(m => m.MessageId));
        Assert.Empty(second.NextPageToken);
    }

    [Fact]
    public async Task Claim_SecondReleaseWhileFirstRuns_Busy_StaleClaimTakenOver()
    {
        var (d, _) = await DomainAsync("qc");
        var store = new QuarantineStore(fx.RedisClient);
        var now = DateTimeOffset.UtcNow;
        var m = Held(d, now);
        await store.AddManyAsync([(m, "Subject: c\r\n\r\nz\r\n"u8.ToArray())]);

        var first = await store.ClaimAsync(d, m.Id, now, TimeSpan.FromMinutes(2));
        Assert.False(first.Busy);
        Assert.Equal(m.Id, first.Message!.Id);
        Assert.Equal("Subject: c\r\n\r\nz\r\n", System.Text.Encoding.ASCII.GetString(first.Body));
        Assert.True((await store.ClaimAsync(d, m.Id, now.AddMinutes(1), TimeSpan.FromMinutes(2))).Busy);
        var takeover = await store.ClaimAsync(d, m.Id, now.AddMinutes(3), TimeSpan.FromMinutes(2));
        Assert.False(takeover.Busy);
        Assert.NotNull(takeover.Message);
        Assert.NotNull(await store.RemoveAsync(d, m.Id));
        var gone = await store.ClaimAsync(d, m.Id, now.AddMinutes(4), TimeSpan.FromMinutes(2));
        Assert.False(gone.Busy);
        Assert.Null(gone.Message);
    }
}
