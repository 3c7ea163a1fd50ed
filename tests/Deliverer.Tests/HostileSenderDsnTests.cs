using System.Text;
using Gateway.Testing;
using MimeKit;

namespace Deliverer.Tests;

/// <summary>
/// A hostile sender and DSNs, over sockets (requirements §11; docs/reliability.md "Hostile sender"): a DSN returns at most a
/// capped header section, and NOTIFY=SUCCESS on inbound mail to several managed domains brings one notice, not one per copy.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class HostileSenderDsnTests(GatewayFixture fx) : IClassFixture<GatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    private SmtpSink ExternalDomain(string domain, int octet)
    {
        var sink = SmtpSink.Start($"127.0.0.{octet}", fx.OutboundPort);
        fx.Dns.AddMx(domain, 10, "mx." + domain).AddA("mx." + domain, sink.Host);
        return sink;
    }

    private static string NewExternal(string label) => $"{label}{Guid.NewGuid().ToString("N")[..8]}.remote.test";

    private static async Task<string> Command(RawSmtp c, string line)
    {
        await c.WriteAsync(line + "\r\n");
        return await c.ReadReplyAsync();
    }

    /// <summary>One transaction straight to the intake: MAIL and RCPT lines as given, then <paramref name="data"/> (ending in CRLF).</summary>
    private async Task SendRawAsync(string mail, IEnumerable<string> rcpts, string data)
    {
        await using var c = await RawSmtp.ConnectAsync(fx.Intake);
        await c.ReadReplyAsync();
        await c.WriteAsync("EHLO client.test\r\n");
        await c.ReadReplyAsync();
        Assert.StartsWith("250", await Command(c, mail), StringComparison.Ordinal);
        foreach (var r in rcpts)
        {
            Assert.StartsWith("250", await Command(c, r), StringComparison.Ordinal);
        }

        Assert.StartsWith("354", await Command(c, "DATA"), StringComparison.Ordinal);
        await c.WriteAsync(data + ".\r\n");
        Assert.StartsWith("250", await c.ReadReplyAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dsn_FiveMegabyteMessageWithoutEmptyLine_Under20kB()
    {
        var server = SmtpSink.Start("127.0.0.3");
        await using var _s = server;
        server.Behavior = new SinkBehavior { RcptReply = r => "550 5.1.1 <" + r + ">: Recipient address rejected: User unknown" };
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("dsn5m"), ("*@{d}", server.Host, server.Port, 10));
        var senderDomain = NewExternal("big");
        await using var senderMx = ExternalDomain(senderDomain, 41);

        var text = new StringBuilder(5 * 1024 * 1024 + 200);
        for (var i = 0; text.Length < 5 * 1024 * 1024; i++)
        {
            text.Append("X-Filler-").Append(i).Append(": ").Append('a', 80).Append("\r\n");
        }

        await SendRawAsync($"MAIL FROM:<victim@{senderDomain}> RET=HDRS", [$"RCPT TO:<gone@{d}>"], text.ToString());

        var dsn = Assert.Single(await senderMx.WaitForMessagesAsync(1, Wait));
        Assert.Equal(string.Empty, dsn.MailFrom);
        Assert.True(dsn.Data.Length < 20_000, $"the DSN has {dsn.Data.Length} bytes");
        var report = Assert.IsType<MultipartReport>((await MimeMessage.LoadAsync(new MemoryStream(dsn.Data))).Body);
        Assert.Equal(2, report.Count); // no header section to return
        Assert.DoesNotContain("X-Filler-", dsn.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Dsn_RetHdrsWithHugeHeaderSection_HeadersCutTo16kB()
    {
        var server = SmtpSink.Start("127.0.0.3");
        await using var _s = server;
        server.Behavior = new SinkBehavior { RcptReply = r => "550 5.1.1 <" + r + ">: Recipient address rejected: User unknown" };
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("dsnhdr"), ("*@{d}", server.Host, server.Port, 10));
        var senderDomain = NewExternal("hdr");
        await using var senderMx = ExternalDomain(senderDomain, 42);

        var text = new StringBuilder("Subject: many headers\r\n");
        for (var i = 0; text.Length < 300_000; i++)
        {
            text.Append("X-Filler-").Append(i).Append(": ").Append('a', 80).Append("\r\n");
        }

        text.Append("\r\nthe body is never returned\r\n");
        await SendRawAsync($"MAIL FROM:<victim@{senderDomain}> RET=FULL", [$"RCPT TO:<gone@{d}>"], text.ToString());

        var dsn = Assert.Single(await senderMx.WaitForMessagesAsync(1, Wait));
        Assert.True(dsn.Data.Length < 20_000, $"the DSN has {dsn.Data.Length} bytes");
        var report = Assert.IsType<MultipartReport>((await MimeMessage.LoadAsync(new MemoryStream(dsn.Data))).Body);
        var headers = Assert.IsType<TextRfc822Headers>(report[2]); // RET=FULL of a 300 kB message: headers only
        Assert.Contains("Subject: many headers", dsn.Text, StringComparison.Ordinal);
        Assert.DoesNotContain("the body is never returned", dsn.Text, StringComparison.Ordinal);
        using var returned = new MemoryStream();
        headers.Message!.Headers.WriteTo(returned);
        Assert.InRange(returned.Length, 8 * 1024, 16 * 1024);
    }

    [Fact]
    public async Task NotifySuccess_InboundToThreeDomains_OneRelayedNotice()
    {
        var server = SmtpSink.Start("127.0.0.3");
        await using var _s = server;
        var domains = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            domains.Add(await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("notify" + i), ("*@{d}", server.Host, server.Port, 10)));
        }

        var senderDomain = NewExternal("forged");
        await using var senderMx = ExternalDomain(senderDomain, 43);

        await SendRawAsync($"MAIL FROM:<victim@{senderDomain}>", domains.Select(d => $"RCPT TO:<user@{d}> NOTIFY=SUCCESS"), "Subject: notify me thrice\r\n\r\nbody\r\n");

        // Three copies delivered, one per domain; one "relayed" notice for the message, not three.
        Assert.Equal(3, (await server.WaitForMessagesAsync(3, Wait)).Count);
        var notice = Assert.Single(await senderMx.WaitForMessagesAsync(1, Wait));
        Assert.Contains("Action: relayed", notice.Text, StringComparison.Ordinal);
        foreach (var d in domains)
        {
            await fx.WaitForLogAsync(d, e => e["event"] == "delivered", "the delivery logged");
        }

        await Task.Delay(2000);
        Assert.Single(senderMx.Messages);
    }
    [Fact]
    public async Task RemoteReplyOfFourKilobytes_KeptTo1kB()
    {
        var server = SmtpSink.Start("127.0.0.3");
        await using var _s = server;
        server.Behavior = new SinkBehavior { RcptReply = _ => "451 4.2.0 " + new string('x', 4000) };
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("longreply"), ("*@{d}", server.Host, server.Port, 10));

        await fx.SendAsync("someone@remote.test", ["user@" + d], subject: "long reply");

        var deferred = await fx.WaitForLogAsync(d, e => e["event"] == "deferred", "the deferral logged", Wait);
        var queued = await fx.Store.GetAsync(d, deferred["message_id"]);
        var reply = Assert.Single(queued!.Recipients).LastReply!;
        Assert.StartsWith("451 4.2.0 xxx", reply, StringComparison.Ordinal);
        Assert.InRange(reply.Length, 512, Gateway.Core.Delivery.DeliveryOutcome.MaxReplyLength);
        Assert.True(queued.LastError!.Length < 1200, $"last error of {queued.LastError.Length} characters");
    }
}
