using Gateway.Core.Mail;
using Gateway.Core.MessageLog;
using Gateway.Core.Storage;
using Gateway.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Gateway.Core.Tests;

[Trait("Kind", "Integration")]
public sealed class MessageLogTests
{
    [Fact]
    public async Task Append_WritesFieldsToDomainStream_OldEntriesTrimmedByTime()
    {
        await using var redis = await RedisServer.StartAsync();
        using var mux = await redis.ConnectAsync();
        var options = new GatewayOptions { MessageLogRetention = TimeSpan.FromDays(90) };
        var writer = new MessageLogWriter(mux, options, TimeProvider.System);
        var db = mux.GetDatabase();
        var key = RedisKeys.DomainLog("example.com");
        await db.HashSetAsync(RedisKeys.Domain("example.com"), "company", "acme"); // a managed domain: events are only kept for those

        // 200 entries from long ago, then a current one: the time trim removes (most of) the old ones.
        var old = DateTimeOffset.UtcNow.AddDays(-100).ToUnixTimeMilliseconds();
        for (var i = 0; i < 200; i++)
        {
            await db.ExecuteAsync("XADD", key, $"{old + i}-0", "event", "intake");
        }

        await writer.AppendAsync(new MessageLogEvent
        {
            Domain = "example.com", Event = MessageLogEvents.PolicyReject, Direction = Direction.Inbound,
            Sender = "a@b.example", Recipient = "x@example.com", ClientAddress = "192.0.2.1", Reply = "REJECT NO-DOMAIN", Program = "test",
        });

        var entries = await db.StreamRangeAsync(key);
        var last = entries[^1];
        Assert.Equal("policy_reject", last["event"].ToString());
        Assert.Equal("x@example.com", last["recipient"].ToString());
        Assert.True(last["message_id"].IsNull);
        Assert.True(entries.Length < 201, $"expected old entries trimmed, {entries.Length} left");
    }

    [Fact]
    public async Task Buffered_PostReturnsAtOnce_EventsArriveWhileRedisIsUpOrAfterItReturns()
    {
        // AOF with fsync always: the domain's settings (and the first event) survive the restart below.
        await using var redis = await RedisServer.StartAsync(appendOnly: true);
        using (var admin = await redis.ConnectAsync())
        {
            await admin.GetServer(admin.GetEndPoints()[0]).ConfigSetAsync("appendfsync", "always");
            await admin.GetDatabase().HashSetAsync(RedisKeys.Domain("example.com"), "company", "acme");
        }

        using var mux = await ConnectionMultiplexer.ConnectAsync(redis.ConnectionString + ",abortConnect=false,connectTimeout=500,asyncTimeout=500,syncTimeout=500");
        var log = new BufferedMessageLog(new MessageLogWriter(mux, new GatewayOptions(), TimeProvider.System), NullLogger<BufferedMessageLog>.Instance);
        await log.StartAsync(CancellationToken.None);
        try
        {
            log.Post(new MessageLogEvent { Domain = "example.com", Event = MessageLogEvents.PolicyReject });
            var db = mux.GetDatabase();
            await Eventually.WaitAsync(async () => await db.StreamLengthAsync(RedisKeys.DomainLog("example.com")) == 1, TimeSpan.FromSeconds(5), "first event");

            await redis.StopAsync();
            for (var i = 0; i < 10; i++)
            {
                log.Post(new MessageLogEvent { Domain = "example.com", Event = MessageLogEvents.PolicyReject });
            }

            await redis.RestartAsync();
            await Eventually.WaitAsync(async () =>
            {
                try
                {
                    return await db.StreamLengthAsync(RedisKeys.DomainLog("example.com")) == 11;
                }
                catch (Exception e) when (e is RedisException or TimeoutException)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(20), "events written after Redis came back");
            Assert.Equal(0, log.Dropped);
        }
        finally
        {
            await log.StopAsync(CancellationToken.None);
        }
    }
}
