using System.Net;
using System.Text;
using Gateway.Core.Delivery;
using Gateway.Core.Mail;
using Gateway.Core.Storage;
using Gateway.Testing;
using StackExchange.Redis;

namespace Deliverer.Tests;

/// <summary>
/// Bounded memory (requirements §11; docs/architecture.md "Bodies in pieces"): a big message goes to Redis in pieces while it
/// is received (a spool that nothing names until the message is complete), becomes the shared body of its copies in one
/// script, and is streamed back block by block to the next hop. The memory itself is measured by bench/deliverer (m);
/// these tests show the layout, the cleanup and that the bytes arrive unchanged. Real Redis, real sockets, a real SMTP sink.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class BoundedMemoryTests(GatewayFixture fx) : IClassFixture<GatewayFixture>
{
    private IDatabase Db => fx.RedisClient.GetDatabase();

    private Task<List<RedisKey>> KeysAsync(string pattern) => RedisScan.KeysAsync(fx.RedisClient, pattern);

    /// <summary>A multipart message of about <paramref name="size"/> bytes: a text part and a base64 attachment (76-character lines), no line starting with a dot.</summary>
    internal static byte[] Message(int size, string marker)
    {
        var sb = new StringBuilder(size + 4096);
        sb.Append("From: someone@remote.test\r\nSubject: big ").Append(marker).Append("\r\nMIME-Version: 1.0\r\n")
            .Append("Content-Type: multipart/mixed; boundary=\"b-").Append(marker).Append("\"\r\n\r\npreamble\r\n--b-").Append(marker).Append("\r\n")
            .Append("Content-Type: text/plain; charset=us-ascii\r\n\r\n");
        for (var i = 0; i < 2000; i++)
        {
            sb.Append("text line ").Append(i).Append("\r\n");
        }

        sb.Append("--b-").Append(marker).Append("\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n")
            .Append("Content-Disposition: attachment; filename=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        var random = new Random(size);
        var chunk = new byte[57];
        while (sb.Length < size)
        {
            random.NextBytes(chunk);
            sb.Append(Convert.ToBase64String(chunk)).Append("\r\n");
        }

        sb.Append("--b-").Append(marker).Append("--\r\nepilogue\r\n");
        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    internal static async Task<RawSmtp> OpenDataAsync(IPEndPoint intake, IEnumerable<string> recipients, string sender = "someone@remote.test")
    {
        var c = await RawSmtp.ConnectAsync(intake);
        await c.ReadReplyAsync();
        await c.WriteAsync("EHLO client.test\r\n");
        await c.ReadReplyAsync();
        await c.WriteAsync($"MAIL FROM:<{sender}>\r\n");
        Assert.StartsWith("250", await c.ReadReplyAsync(), StringComparison.Ordinal);
        foreach (var r in recipients)
        {
            await c.WriteAsync($"RCPT TO:<{r}>\r\n");
            Assert.StartsWith("250", await c.ReadReplyAsync(), StringComparison.Ordinal);
        }

        await c.WriteAsync("DATA\r\n");
        Assert.StartsWith("354", await c.ReadReplyAsync(), StringComparison.Ordinal);
        return c;
    }

    /// <summary>The body id in <c>gw:{b:&lt;id&gt;}:spool</c>.</summary>
    private static string IdOf(RedisKey spool)
    {
        var k = spool.ToString();
        return k["gw:{b:".Length..k.IndexOf('}', StringComparison.Ordinal)];
    }

    private static void AssertDeliveredUnchanged(byte[] sent, SinkMessage delivered)
    {
        // The intake's Received header in front, then the message byte for byte.
        Assert.StartsWith("Received: ", Encoding.ASCII.GetString(delivered.Data, 0, 10), StringComparison.Ordinal);
        Assert.True(delivered.Data.Length > sent.Length, $"delivered {delivered.Data.Length} bytes of {sent.Length}");
        Assert.True(delivered.Data.AsSpan(delivered.Data.Length - sent.Length).SequenceEqual(sent),
            $"the delivered message ({delivered.Data.Length} bytes) does not end with the {sent.Length} bytes sent");
    }

    [Fact]
    public async Task Intake_TwentyMegabytes_InPiecesWhileReceived_InvisibleUntilComplete_DeliveredByteIdentical()
    {
        var sink = SmtpSink.Start("127.0.0.3");
        await using var _s = sink;
        var domain = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("big"), ("*@{d}", sink.Host, sink.Port, 10));
        var message = Message(20 * 1024 * 1024, Guid.NewGuid().ToString("N"));

        await using var c = await OpenDataAsync(fx.Intake, ["user@" + domain]);
        var half = 12 * 1024 * 1024;
        await c.WriteAsync(message[..half]);

        // While the client is still sending, the message is in Redis in pieces, not in the intake's memory, and nothing
        // names it: no queue entry, no shared body. The pieces expire on their own if the process dies now.
        RedisKey spool = default;
        await Eventually.WaitAsync(async () =>
        {
            var keys = await KeysAsync("gw:{b:*}:spool");
            spool = keys.Count == 1 ? keys[0] : default;
            return keys.Count == 1 && await Db.StringLengthAsync(spool) >= half - Gateway.Deliverer.Intake.MessageBuffer.DefaultPieceSize - 64 * 1024;
        }, TimeSpan.FromSeconds(30), "the first 12 MB in the spool while DATA goes on");
        var id = IdOf(spool);
        Assert.Empty(await KeysAsync($"gw:{{d:{domain}}}:msg:*"));
        Assert.False(await Db.KeyExistsAsync(RedisKeys.SharedBody(id)));
        var ttl = await Db.KeyTimeToLiveAsync(spool);
        Assert.True(ttl is { } t && t > TimeSpan.Zero && t <= SharedBodies.SpoolTtl, $"the spool's expiry: {ttl}");

        await c.WriteAsync(message[half..]);
        await c.WriteAsync(".\r\n");
        Assert.StartsWith("250", await c.ReadReplyAsync(TimeSpan.FromSeconds(60)), StringComparison.Ordinal);

        var delivered = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(60)));
        AssertDeliveredUnchanged(message, delivered);
        await Eventually.WaitAsync(async () => (await KeysAsync($"gw:{{b:{id}}}:*")).Count == 0, TimeSpan.FromSeconds(15), "the body removed after the delivery");
    }

    [Fact]
    public async Task Intake_ConnectionDroppedMidData_PiecesRemoved_NothingQueued()
    {
        var closed = FreePort.Get(IPAddress.Parse("127.0.0.4"));
        var domain = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("drop"), ("*@{d}", "127.0.0.4", closed, 10));
        var message = Message(6 * 1024 * 1024, Guid.NewGuid().ToString("N"));

        var c = await OpenDataAsync(fx.Intake, ["user@" + domain]);
        await c.WriteAsync(message[..(5 * 1024 * 1024)]);
        await Eventually.WaitAsync(async () => (await KeysAsync("gw:{b:*}:spool")).Count == 1, TimeSpan.FromSeconds(30), "pieces in Redis while DATA goes on");
        var id = IdOf(Assert.Single(await KeysAsync("gw:{b:*}:spool")));

        await c.DisposeAsync(); // the client goes away before the final dot

        await Eventually.WaitAsync(async () => (await KeysAsync($"gw:{{b:{id}}}:*")).Count == 0, TimeSpan.FromSeconds(15), "the aborted message's pieces removed");
        Assert.Empty(await KeysAsync($"gw:{{d:{domain}}}:msg:*"));
    }

    [Fact]
    public async Task Intake_ThreeMegabytesToThreeDomains_OneBodyInPieces_DeliveredUnchangedToEach_ThenGone()
    {
        var closed = FreePort.Get(IPAddress.Parse("127.0.0.4"));
        var held = await Task.WhenAll(Enumerable.Range(0, 3).Select(i =>
            fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("held" + i), ("*@{d}", "127.0.0.4", closed, 10))));
        var message = Message(3 * 1024 * 1024, Guid.NewGuid().ToString("N"));

        await using (var c = await OpenDataAsync(fx.Intake, held.Select(d => "user@" + d)))
        {
            await c.WriteAsync(message);
            await c.WriteAsync(".\r\n");
            Assert.StartsWith("250", await c.ReadReplyAsync(TimeSpan.FromSeconds(60)), StringComparison.Ordinal);
        }

        // One body for the three copies: each entry names it and holds no body of its own.
        var body = Assert.Single(await KeysAsync("gw:{b:*}:body"));
        Assert.True(await Db.StringLengthAsync(body) > message.Length);
        Assert.Empty(await KeysAsync("gw:{b:*}:spool"));
        foreach (var d in held)
        {
            var entry = Assert.Single(await KeysAsync($"gw:{{d:{d}}}:msg:*"));
            var fields = await Db.HashGetAsync(entry, ["body", SharedBodies.Field]);
            Assert.True(fields[0].IsNull, "a copy of a message in pieces holds no body of its own");
            Assert.Equal(body.ToString(), RedisKeys.SharedBody(fields[1].ToString()).ToString());
        }

        Assert.Equal(3, await Db.SetLengthAsync(body.ToString().Replace(":body", ":refs", StringComparison.Ordinal)));

        // Delivered: the same message to three domains whose server answers.
        var sink = SmtpSink.Start("127.0.0.3");
        await using var _s = sink;
        var live = await Task.WhenAll(Enumerable.Range(0, 3).Select(i =>
            fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("live" + i), ("*@{d}", sink.Host, sink.Port, 10))));
        await using (var c = await OpenDataAsync(fx.Intake, live.Select(d => "user@" + d)))
        {
            await c.WriteAsync(message);
            await c.WriteAsync(".\r\n");
            Assert.StartsWith("250", await c.ReadReplyAsync(TimeSpan.FromSeconds(60)), StringComparison.Ordinal);
        }

        var delivered = await sink.WaitForMessagesAsync(3, TimeSpan.FromSeconds(60));
        Assert.Equal(3, delivered.Count);
        Assert.All(delivered, m => AssertDeliveredUnchanged(message, m));
        Assert.Equal(live.Select(d => "user@" + d).Order(), delivered.SelectMany(m => m.Recipients).Order());
        // Only the held message's body is left.
        await Eventually.WaitAsync(async () => (await KeysAsync("gw:{b:*}:body")).Count == 1, TimeSpan.FromSeconds(15), "the delivered message's body removed");
    }

    [Fact]
    public async Task Delivery_QueueWrittenByThePreviousVersion_OwnBodyAndSingleValueSharedBody_DeliveredUnchanged()
    {
        var sink = SmtpSink.Start("127.0.0.3");
        await using var _s = sink;
        var domains = await Task.WhenAll(Enumerable.Range(0, 3).Select(i =>
            fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("old" + i), ("*@{d}", sink.Host, sink.Port, 10))));
        var own = Message(3 * 1024 * 1024, Guid.NewGuid().ToString("N"));
        var shared = Message(3 * 1024 * 1024, Guid.NewGuid().ToString("N"));

        // The previous version's layouts: a body in the entry's hash, and a shared body written whole with one SET.
        await fx.Store.EnqueueAsync(new QueueEnvelope(domains[0], Direction.Inbound, "someone@remote.test", ["user@" + domains[0]]), own);
        var bodyId = MessageId.New(DateTimeOffset.UtcNow);
        var ids = new[] { bodyId, bodyId + "-0" };
        await fx.Store.StoreSharedBodyAsync(bodyId, shared, [(domains[1], ids[0]), (domains[2], ids[1])]);
        for (var i = 0; i < 2; i++)
        {
            var (item, _) = await fx.Store.EnqueueLeasedWithMessageAsync(
                new QueueEnvelope(domains[i + 1], Direction.Inbound, "someone@remote.test", ["user@" + domains[i + 1]]) { Id = ids[i] }, shared, sharedBody: bodyId);
            await fx.Store.CompleteAsync(item, DateTimeOffset.UtcNow);
            await fx.Store.WakeAsync(item.Shard);
        }

        var delivered = await sink.WaitForMessagesAsync(3, TimeSpan.FromSeconds(60));
        Assert.Equal(3, delivered.Count);
        Assert.True(delivered.Single(m => m.Recipients[0] == "user@" + domains[0]).Data.SequenceEqual(own), "the entry with its own body delivered unchanged");
        Assert.All(delivered.Where(m => m.Recipients[0] != "user@" + domains[0]), m => Assert.True(m.Data.SequenceEqual(shared), "the shared body streamed unchanged"));
        await Eventually.WaitAsync(async () => !await Db.KeyExistsAsync(RedisKeys.SharedBody(bodyId)), TimeSpan.FromSeconds(15), "the shared body removed after both deliveries");
    }
}
