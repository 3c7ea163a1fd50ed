using System.Net;
using System.Text;
using Gateway.Api.V1;
using Gateway.Testing;
using StackExchange.Redis;

namespace Deliverer.Tests;

/// <summary>
/// The body stored once (requirements §11): a message to recipients at many managed domains is one body in Redis, referenced
/// by each domain's queue entry, and removed when the last entry is done. Measured with Redis's own MEMORY USAGE.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class SharedBodyTests(GatewayFixture fx) : IClassFixture<GatewayFixture>
{
    private static async Task<string> Command(RawSmtp c, string line)
    {
        await c.WriteAsync(line + "\r\n");
        return await c.ReadReplyAsync();
    }

    private static string Body(int size)
    {
        var sb = new StringBuilder("Subject: one body for fifty domains\r\n\r\n", size + 100);
        for (var i = 0; sb.Length < size; i++)
        {
            sb.Append("line ").Append(i).Append(' ').Append(Convert.ToHexString(BitConverter.GetBytes(i * 2654435761L))).Append(' ', 40).Append("\r\n");
        }

        return sb.ToString();
    }

    private async Task<IReadOnlyList<string>> SendAsync(IEnumerable<string> recipients, string body)
    {
        await using var c = await RawSmtp.ConnectAsync(fx.Intake);
        await c.ReadReplyAsync();
        await c.WriteAsync("EHLO client.test\r\n");
        await c.ReadReplyAsync();
        Assert.StartsWith("250", await Command(c, "MAIL FROM:<someone@remote.test>"), StringComparison.Ordinal);
        foreach (var r in recipients)
        {
            Assert.StartsWith("250", await Command(c, $"RCPT TO:<{r}>"), StringComparison.Ordinal);
        }

        Assert.StartsWith("354", await Command(c, "DATA"), StringComparison.Ordinal);
        await c.WriteAsync(body + ".\r\n");
        var reply = await c.ReadReplyAsync();
        Assert.StartsWith("250", reply, StringComparison.Ordinal);
        return [reply];
    }

    private Task<List<RedisKey>> KeysAsync(string pattern) => RedisScan.KeysAsync(fx.RedisClient, pattern);

    private async Task<long> MemoryUsageAsync(IEnumerable<RedisKey> keys)
    {
        long total = 0;
        foreach (var k in keys)
        {
            total += (long)await fx.RedisClient.GetDatabase().ExecuteAsync("MEMORY", "USAGE", k, "SAMPLES", "0");
        }

        return total;
    }

    [Fact]
    public async Task Intake_OneMegabyteToFiftyDomains_StoredOnce_MemoryUsageAboutOneCopy_RemovedWithTheLastEntry()
    {
        // Every domain's server refuses connections: the copies stay queued (deferred) while Redis is measured.
        var closed = FreePort.Get(IPAddress.Parse("127.0.0.4"));
        var domains = await Task.WhenAll(Enumerable.Range(0, 50).Select(i =>
            fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("once" + i), ("*@{d}", "127.0.0.4", closed, 10))));
        var body = Body(1024 * 1024);

        await SendAsync(domains.Select(d => "user@" + d), body);

        var entries = new List<RedisKey>();
        var missing = new List<string>();
        foreach (var d in domains)
        {
            var keys = await KeysAsync($"gw:{{d:{d}}}:msg:*");
            entries.AddRange(keys);
            if (keys.Count == 0)
            {
                missing.Add(d);
            }
        }

        Assert.True(missing.Count == 0, $"no queue entry for {missing.Count} domains; the first one's log: " +
            (missing.Count == 0 ? string.Empty : string.Join(" / ", (await fx.LogAsync(missing[0])).Select(e => string.Join(",", e.Select(kv => kv.Key + "=" + kv.Value))))));
        var bodies = await KeysAsync("gw:{b:*}:body");
        var shared = Assert.Single(bodies);
        var entriesBytes = await MemoryUsageAsync(entries);
        var bodyBytes = await MemoryUsageAsync([shared]);
        var total = entriesBytes + bodyBytes;
        // The same message to one domain alone: one copy as Redis stores it (allocator rounding included).
        var alone = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("alone"), ("*@{d}", "127.0.0.4", closed, 10));
        await SendAsync(["user@" + alone], body);
        // A message this big is received in pieces (MessageBuffer), so even a copy alone has its body in a key of its own.
        var aloneEntry = Assert.Single(await KeysAsync($"gw:{{d:{alone}}}:msg:*"));
        var aloneBody = await fx.RedisClient.GetDatabase().HashGetAsync(aloneEntry, "bodyref");
        var oneCopy = await MemoryUsageAsync(aloneBody.IsNull ? [aloneEntry] : [aloneEntry, Gateway.Core.Storage.RedisKeys.SharedBody(aloneBody.ToString())]);
        Assert.True(oneCopy >= body.Length, $"one copy takes {oneCopy} bytes");

        // One copy of the body plus 50 small envelopes; 50 copies would be 50 times one copy.
        Assert.True(total < oneCopy * 1.2,
            $"MEMORY USAGE: {total} bytes for a {body.Length}-byte message to 50 domains (body {bodyBytes}, entries {entriesBytes}); one copy alone {oneCopy}");
        Assert.Equal(50, await fx.RedisClient.GetDatabase().SetLengthAsync(shared.ToString().Replace(":body", ":refs", StringComparison.Ordinal)));

        // The entries go one by one (operator deletes); the body stays while one is left, and goes with the last.
        var ids = new List<(string Domain, string Id)>();
        foreach (var d in domains)
        {
            var list = await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d });
            ids.Add((d, Assert.Single(list.Messages).MessageId));
        }

        foreach (var (d, id) in ids.Take(49))
        {
            await fx.Queue.DeleteMessageAsync(new DeleteMessageRequest { Domain = d, MessageId = id });
        }

        Assert.True(await fx.RedisClient.GetDatabase().KeyExistsAsync(shared), "the body is still referenced by one entry");
        var last = await fx.Queue.GetQueuedMessageAsync(new GetQueuedMessageRequest { Domain = ids[^1].Domain, MessageId = ids[^1].Id });
        Assert.Equal(ids[^1].Id, last.MessageId);
        await fx.Queue.DeleteMessageAsync(new DeleteMessageRequest { Domain = ids[^1].Domain, MessageId = ids[^1].Id });
        Assert.False(await fx.RedisClient.GetDatabase().KeyExistsAsync(shared), "the body went with its last reference");
    }

    [Fact]
    public async Task Delivered_ThreeDomains_OneBodyDeliveredThrice_ThenGone()
    {
        var sink = SmtpSink.Start("127.0.0.3");
        await using var _s = sink;
        var domains = await Task.WhenAll(Enumerable.Range(0, 3).Select(i =>
            fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("deliv" + i), ("*@{d}", sink.Host, sink.Port, 10))));
        var body = "Subject: shared\r\n\r\nthe same bytes for everyone " + Guid.NewGuid() + "\r\n";

        await SendAsync(domains.Select(d => "user@" + d), body);

        var received = await sink.WaitForMessagesAsync(3, TimeSpan.FromSeconds(15));
        Assert.Equal(3, received.Count);
        Assert.All(received, m => Assert.Contains(body.Split("\r\n\r\n")[1], m.Text, StringComparison.Ordinal));
        await Eventually.WaitAsync(async () => (await KeysAsync("gw:{b:*}")).Count == 0, TimeSpan.FromSeconds(15), "the shared body removed after the last delivery");
    }
    [Fact]
    public async Task PurgedWithItsDomain_AndOperatorBounce_ReleaseTheirReferences()
    {
        var closed = FreePort.Get(IPAddress.Parse("127.0.0.4"));
        var kept = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("kept"), ("*@{d}", "127.0.0.4", closed, 10));
        var purged = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("purged"), ("*@{d}", "127.0.0.4", closed, 10));
        var marker = "purge " + Guid.NewGuid();
        await SendAsync(["user@" + kept, "user@" + purged], "Subject: " + marker + "\r\n\r\nbody\r\n");
        var entry = Assert.Single(await KeysAsync($"gw:{{d:{kept}}}:msg:*"));
        var bodyId = (string)(await fx.RedisClient.GetDatabase().HashGetAsync(entry, "bodyref"))!;
        var refs = (RedisKey)$"gw:{{b:{bodyId}}}:refs";
        Assert.Equal(2, await fx.RedisClient.GetDatabase().SetLengthAsync(refs));

        // The forced delete discards the domain's queue; its purge releases the reference.
        await fx.Domains.DeleteDomainAsync(new DeleteDomainRequest { Name = purged, Force = true });
        await Eventually.WaitAsync(async () => await fx.RedisClient.GetDatabase().SetLengthAsync(refs) == 1, TimeSpan.FromSeconds(15), "the purged copy's reference released");
        Assert.True(await fx.RedisClient.GetDatabase().KeyExistsAsync($"gw:{{b:{bodyId}}}:body"));

        // An operator bounce takes the last copy (and reads the shared body for the DSN): the body goes.
        var id = Assert.Single((await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = kept })).Messages).MessageId;
        await fx.Queue.BounceMessageAsync(new BounceMessageRequest { Domain = kept, MessageId = id });
        Assert.False(await fx.RedisClient.GetDatabase().KeyExistsAsync($"gw:{{b:{bodyId}}}:body"), "the body went with its last reference");
        Assert.False(await fx.RedisClient.GetDatabase().KeyExistsAsync(refs));
    }
}
