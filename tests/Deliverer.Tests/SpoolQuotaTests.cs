using System.Buffers;
using System.Text;
using Gateway.Deliverer.Intake;
using Gateway.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Deliverer.Tests;

/// <summary>A 4 MB cap on the bytes one client may hold in unfinished spools (messages over 1 MB go to Redis in pieces).</summary>
public sealed class SpoolQuotaFixture : GatewayFixture
{
    public const long Cap = 4 * 1024 * 1024;

    protected override IEnumerable<string> DelivererSettings => [$"--Gateway:Deliverer:MaxSpoolBytesPerClient={Cap}"];
}

/// <summary>
/// The per-client cap on spooled bytes (requirements §11; docs/reliability.md "Hostile sender"), over sockets with a real
/// redis-server: several sessions of one client (by XFORWARD ADDR, as Postfix passes it) that hold big messages open, and
/// another client beside them.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class SpoolQuotaTests(SpoolQuotaFixture fx) : IClassFixture<SpoolQuotaFixture>
{
    private const string Hostile = "203.0.113.7";
    private const string Other = "198.51.100.9";

    /// <summary>A session from <paramref name="client"/> (XFORWARD ADDR) at DATA, after <paramref name="bytes"/> of message content.</summary>
    private async Task<RawSmtp> OpenAsync(string client, string recipient, int bytes, string tag)
    {
        var c = await RawSmtp.ConnectAsync(fx.Intake);
        await c.ReadReplyAsync();
        await c.WriteAsync("EHLO postfix.test\r\n");
        await c.ReadReplyAsync();
        await c.WriteAsync($"XFORWARD NAME=client.remote.test ADDR={client}\r\n");
        Assert.StartsWith("250 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync("MAIL FROM:<sender@remote.test>\r\n");
        Assert.StartsWith("250 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync($"RCPT TO:<{recipient}>\r\n");
        Assert.StartsWith("250 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync("DATA\r\n");
        Assert.StartsWith("354 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync(Content(bytes, tag));
        return c;
    }

    private static byte[] Content(int bytes, string tag)
    {
        var sb = new StringBuilder(bytes + 200).Append("Subject: ").Append(tag).Append("\r\n\r\n");
        while (sb.Length < bytes)
        {
            sb.Append(tag).Append(' ').Append('x', 90).Append("\r\n");
        }

        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    private static async Task<string> EndAsync(RawSmtp c)
    {
        await c.WriteAsync(".\r\n");
        return await c.ReadReplyAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Data_ClientOverItsSpoolCap_452AndPiecesRemoved_OtherClientAndLaterMessagesServed()
    {
        var sink = SmtpSink.Start("127.0.0.2");
        await using var _s = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("spoolcap"), ("*@{d}", sink.Host, sink.Port, 10));
        var quota = fx.DelivererServices!.GetRequiredService<SpoolQuota>();
        Assert.Equal(SpoolQuotaFixture.Cap, quota.Cap);

        // Two sessions of one client, each 1.1 MB into a message it does not finish: 2 to 2.2 MB spooled in Redis.
        await using var a = await OpenAsync(Hostile, "a@" + d, 1_100_000, "first");
        await using var b = await OpenAsync(Hostile, "b@" + d, 1_100_000, "second");
        await Eventually.WaitAsync(async () => quota.Held(Hostile) >= 2 * 1024 * 1024 && (await RedisScan.KeysAsync(fx.RedisClient, "gw:{b:*}:spool")).Count == 2,
            TimeSpan.FromSeconds(10), "both sessions spooling");

        // A third session of the same client: its first megabyte still fits, a later piece of its 2.5 MB would pass 4 MB: 452 at
        // its end, the pieces it had written removed, nothing queued.
        const int spoolsBefore = 2;
        await using (var c = await OpenAsync(Hostile, "c@" + d, 2_500_000, "third"))
        {
            Assert.StartsWith("452 4.3.1 ", await EndAsync(c), StringComparison.Ordinal);
        }

        await Eventually.WaitAsync(async () => (await RedisScan.KeysAsync(fx.RedisClient, "gw:{b:*}:spool")).Count == spoolsBefore, TimeSpan.FromSeconds(5),
            "the refused message's pieces removed");
        Assert.InRange(quota.Held(Hostile), 2 * 1024 * 1024, SpoolQuotaFixture.Cap - (1024 * 1024)); // the refused one holds nothing

        // Another client meanwhile: served.
        await using (var other = await OpenAsync(Other, "o@" + d, 2_000_000, "other"))
        {
            Assert.StartsWith("250 ", await EndAsync(other), StringComparison.Ordinal);
        }

        // The first two finish: stored (what they had spooled was within the cap), and the client's share is free again.
        Assert.StartsWith("250 ", await EndAsync(a), StringComparison.Ordinal);
        Assert.StartsWith("250 ", await EndAsync(b), StringComparison.Ordinal);
        await Eventually.WaitAsync(() => quota.Held(Hostile) == 0, TimeSpan.FromSeconds(10), "the client's spooled bytes given back");
        await using (var again = await OpenAsync(Hostile, "c@" + d, 2_000_000, "again"))
        {
            Assert.StartsWith("250 ", await EndAsync(again), StringComparison.Ordinal);
        }

        var delivered = await sink.WaitForMessagesAsync(4, TimeSpan.FromSeconds(30));
        Assert.Equal(["again", "first", "other", "second"], delivered.Select(m => m.Text.Split("Subject: ")[1].Split("\r\n")[0]).Order(StringComparer.Ordinal));
        Assert.Empty(await RedisScan.KeysAsync(fx.RedisClient, "gw:{b:*}:spool"));
    }

    [Fact]
    public async Task MessageBuffer_PieceBeyondTheCap_OverBudget_WrittenPiecesRemoved_BytesGivenBack()
    {
        var quota = new SpoolQuota(new Gateway.Deliverer.DelivererOptions { MaxSpoolBytesPerClient = 3000 });
        var db = fx.RedisClient.GetDatabase();
        var id = "quota" + Guid.NewGuid().ToString("N")[..8];
        var buffer = new MessageBuffer(db, id, spillAt: 1024, pieceSize: 1024) { Quota = quota, Client = Hostile };
        using (buffer)
        {
            // The head (1 kB) and one piece (1 kB) fit in 3,000 bytes: both in the spool.
            for (var i = 0; i < 2; i++)
            {
                buffer.Write<byte>(new byte[1024]);
                Assert.True(buffer.FlushDue);
                await buffer.FlushAsync();
            }

            Assert.Equal(2048, await db.StringLengthAsync(Gateway.Core.Storage.RedisKeys.SharedBodySpool(id)));
            Assert.Equal(2048, quota.Held(Hostile));

            // The next piece would pass it: refused, the spool removed at once, the rest of the message read and dropped.
            buffer.Write<byte>(new byte[1024]);
            await buffer.FlushAsync();
            Assert.True(buffer.OverBudget);
            Assert.False(await buffer.CompleteAsync());
            await Eventually.WaitAsync(async () => !await db.KeyExistsAsync(Gateway.Core.Storage.RedisKeys.SharedBodySpool(id)), TimeSpan.FromSeconds(5), "the spool removed");
            buffer.Write<byte>(new byte[100_000]);
        }

        Assert.Equal(0, quota.Held(Hostile));
    }
}
