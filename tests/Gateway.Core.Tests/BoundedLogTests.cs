using Gateway.Core.MessageLog;
using Gateway.Core.Storage;
using Gateway.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Gateway.Core.Tests;

/// <summary>The message log stays bounded against a hostile sender (requirements §11.9): field size, entries per domain, a counted buffer.</summary>
[Trait("Kind", "Integration")]
public sealed class BoundedLogTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(512)]
    public void Bounded_ShortFields_Unchanged(int length)
    {
        var value = new string('a', length);
        Assert.Same(value, MessageLogFields.Bounded(value));
    }

    [Theory]
    [InlineData("a", 513)]
    [InlineData("a", 2000)]
    [InlineData("é", 300)] // 600 bytes: cut on a character boundary
    [InlineData("😀", 200)]
    public void Bounded_LongFields_CutTo512BytesAndMarked(string unit, int repeat)
    {
        var value = string.Concat(Enumerable.Repeat(unit, repeat));
        var bounded = MessageLogFields.Bounded(value);
        Assert.EndsWith(MessageLogFields.TruncatedMark, bounded, StringComparison.Ordinal);
        Assert.InRange(System.Text.Encoding.UTF8.GetByteCount(bounded), MessageLogFields.MaxFieldBytes - 4, MessageLogFields.MaxFieldBytes);
        Assert.StartsWith(bounded[..^MessageLogFields.TruncatedMark.Length], value, StringComparison.Ordinal);
        Assert.DoesNotContain('\uFFFD', bounded);
    }

    [Fact]
    public async Task Append_RejectWithHugeSender_StoresAboutOneKilobyte_LogCappedInEntries()
    {
        await using var redis = await RedisServer.StartAsync();
        using var mux = await redis.ConnectAsync();
        var writer = new MessageLogWriter(mux, new GatewayOptions { MessageLogMaxEntries = 1000 }, TimeProvider.System);
        var db = mux.GetDatabase();
        await db.HashSetAsync(RedisKeys.Domain("example.com"), "company", "acme");
        var huge = new string('a', 1900);

        // The review's H5: a refused RCPT whose sender and recipient are ~2,000 characters each.
        for (var i = 0; i < 3000; i++)
        {
            await writer.AppendAsync(new MessageLogEvent
            {
                Domain = "example.com", Event = MessageLogEvents.PolicyReject, Sender = huge + "@example.com", Recipient = huge + i + "@unmanaged.example",
                ClientAddress = "192.0.2.1", Reply = "554 5.7.1 NO-DOMAIN", Program = "test",
            });
        }

        var last = (await db.StreamRangeAsync(RedisKeys.DomainLog("example.com"), count: 1, messageOrder: Order.Descending))[0];
        Assert.EndsWith(MessageLogFields.TruncatedMark, last["sender"].ToString(), StringComparison.Ordinal);
        Assert.True(last.Values.Sum(v => ((byte[])v.Name!).Length + ((byte[])v.Value!).Length) < 1300, "one entry stays about a kilobyte");
        // MAXLEN ~ trims whole stream nodes (100 entries by default): the cap holds within one node.
        var length = await db.StreamLengthAsync(RedisKeys.DomainLog("example.com"));
        Assert.InRange(length, 1000, 1100);
    }

    [Fact]
    public async Task Buffered_QueueOverflows_DroppedCountsEveryLostEvent()
    {
        // Nothing drains the buffer (the service is not started): a capacity of 10 and 25 posts drop exactly 15.
        await using var redis = await RedisServer.StartAsync();
        using var mux = await redis.ConnectAsync();
        var log = new BufferedMessageLog(new MessageLogWriter(mux, new GatewayOptions(), TimeProvider.System), NullLogger<BufferedMessageLog>.Instance, capacity: 10);
        for (var i = 0; i < 25; i++)
        {
            log.Post(new MessageLogEvent { Domain = "example.com", Event = MessageLogEvents.PolicyReject });
        }

        Assert.Equal(15, log.Dropped);
    }
}
