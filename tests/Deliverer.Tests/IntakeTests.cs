using System.Net;
using System.Text;
using Gateway.Core.Storage;
using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>The SMTP intake over real sockets: extensions, pipelining, trusted networks, limits, bad input, durability before 250.</summary>
[Trait("Kind", "Integration")]
public sealed class IntakeTests(IntakeFixture fx) : IClassFixture<IntakeFixture>
{
    private async Task<(string Domain, SmtpSink Sink)> DomainAsync()
    {
        var sink = SmtpSink.Start("127.0.0.2");
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("in"), ("*@{d}", sink.Host, sink.Port, 10));
        return (d, sink);
    }

    private async Task<RawSmtp> OpenAsync(IPAddress? from = null)
    {
        var c = await RawSmtp.ConnectAsync(fx.Intake, from);
        Assert.StartsWith("220 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        return c;
    }

    [Fact]
    public async Task Ehlo_AdvertisesPipeliningSize8BitMimeSmtpUtf8()
    {
        await using var c = await OpenAsync();
        await c.WriteAsync("EHLO client.test\r\n");
        var lines = (await c.ReadReplyAsync()).Split("\r\n").Select(l => l[4..]).ToList();
        Assert.Contains("PIPELINING", lines);
        Assert.Contains($"SIZE {IntakeFixture.MaxSize}", lines);
        Assert.Contains("8BITMIME", lines);
        Assert.Contains("SMTPUTF8", lines);
        Assert.Contains("ENHANCEDSTATUSCODES", lines);
        Assert.Contains("DSN", lines);
    }

    [Fact]
    public async Task UntrustedClient_Refused554AndClosed()
    {
        await using var c = await RawSmtp.ConnectAsync(fx.Intake, IPAddress.Parse("127.0.0.9"));
        var greeting = await c.ReadReplyAsync();
        Assert.StartsWith("554 5.7.1", greeting, StringComparison.Ordinal);
        Assert.Contains("127.0.0.9", greeting, StringComparison.Ordinal);
        Assert.Equal(string.Empty, await c.ReadReplyAsync());
    }

    [Fact]
    public async Task Pipelining_WholeTransactionInOneWrite_RepliesInOrder()
    {
        var (d, sink) = await DomainAsync();
        await using var _s = sink;
        await using var c = await OpenAsync();
        // RFC 2920: the client sends everything up to DATA at once, and after the data the next commands too.
        await c.WriteAsync($"EHLO client.test\r\nMAIL FROM:<p@remote.test>\r\nRCPT TO:<a@{d}>\r\nRCPT TO:<nobody@unmanaged.test>\r\nRCPT TO:<b@{d}>\r\nDATA\r\n");
        Assert.StartsWith("250-", await c.ReadReplyAsync(), StringComparison.Ordinal);
        Assert.Equal("250 2.1.0 Ok", await c.ReadReplyAsync());
        Assert.Equal("250 2.1.5 Ok", await c.ReadReplyAsync());
        Assert.Equal("554 5.7.1 <nobody@unmanaged.test>: Recipient address rejected: NO-DOMAIN", await c.ReadReplyAsync());
        Assert.Equal("250 2.1.5 Ok", await c.ReadReplyAsync());
        Assert.StartsWith("354 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync("Subject: piped\r\n\r\nbody\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n");
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        Assert.Equal("250 2.0.0 Ok", await c.ReadReplyAsync());
        Assert.Equal("250 2.0.0 Ok", await c.ReadReplyAsync());
        Assert.Equal("221 2.0.0 Bye", await c.ReadReplyAsync());
        var m = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10)));
        Assert.Equal([$"a@{d}", $"b@{d}"], m.Recipients);
    }

    [Fact]
    public async Task MessageInRedisBefore250_EvenWhileDeliveryHangs()
    {
        var (d, sink) = await DomainAsync();
        await using var _s = sink;
        sink.Behavior = new SinkBehavior { StallAt = SinkStage.Greeting };
        var reply = await RawSmtp.SendAsync(fx.Intake, "p@remote.test", [$"a@{d}"], "Subject: durable\r\n\r\nx\r\n");
        var id = reply.Split(' ').Last();
        Assert.True(await fx.RedisClient.GetDatabase().KeyExistsAsync(RedisKeys.QueueMessage(d, id)), "stored before 250");
        Assert.True(await fx.RedisClient.GetDatabase().SortedSetScoreAsync(RedisKeys.DomainQueue(d), id) is not null, "indexed before 250");
        sink.Behavior = SinkBehavior.Accept;
        sink.ReleaseStall();
        await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task SizeParameterOverLimit_Refused552()
    {
        var (d, sink) = await DomainAsync();
        await using var _s = sink;
        await using var c = await OpenAsync();
        await c.WriteAsync($"EHLO c\r\nMAIL FROM:<p@remote.test> SIZE={IntakeFixture.MaxSize + 1}\r\n");
        await c.ReadReplyAsync();
        Assert.Equal("552 5.3.4 Message size exceeds fixed limit", await c.ReadReplyAsync());
    }

    [Fact]
    public async Task DataOverLimit_Refused552_SessionGoesOn()
    {
        var (d, sink) = await DomainAsync();
        await using var _s = sink;
        await using var c = await OpenAsync();
        await c.WriteAsync($"EHLO c\r\nMAIL FROM:<p@remote.test>\r\nRCPT TO:<a@{d}>\r\nDATA\r\n");
        for (var i = 0; i < 4; i++)
        {
            await c.ReadReplyAsync();
        }

        var big = string.Concat(Enumerable.Repeat(new string('x', 100) + "\r\n", IntakeFixture.MaxSize / 50));
        await c.WriteAsync("Subject: big\r\n\r\n" + big + ".\r\n");
        Assert.Equal("552 5.3.4 Error: message file too big", await c.ReadReplyAsync());
        await c.WriteAsync($"MAIL FROM:<p@remote.test>\r\nRCPT TO:<a@{d}>\r\nDATA\r\n");
        Assert.Equal("250 2.1.0 Ok", await c.ReadReplyAsync());
        Assert.Equal("250 2.1.5 Ok", await c.ReadReplyAsync());
        Assert.StartsWith("354", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync("Subject: small\r\n\r\nok\r\n.\r\n");
        Assert.StartsWith("250 2.0.0", await c.ReadReplyAsync(), StringComparison.Ordinal);
        var m = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10)));
        Assert.Contains("Subject: small", m.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TooManyRecipients_452ForTheExtraOnes()
    {
        var (d, sink) = await DomainAsync();
        await using var _s = sink;
        await using var c = await OpenAsync();
        var cmds = new StringBuilder("EHLO c\r\nMAIL FROM:<p@remote.test>\r\n");
        for (var i = 0; i <= IntakeFixture.MaxRecipients; i++)
        {
            cmds.Append(System.Globalization.CultureInfo.InvariantCulture, $"RCPT TO:<r{i}@{d}>\r\n");
        }

        await c.WriteAsync(cmds.ToString());
        await c.ReadReplyAsync();
        await c.ReadReplyAsync();
        for (var i = 0; i < IntakeFixture.MaxRecipients; i++)
        {
            Assert.Equal("250 2.1.5 Ok", await c.ReadReplyAsync());
        }

        Assert.Equal("452 4.5.3 Error: too many recipients", await c.ReadReplyAsync());
    }

    [Fact]
    public async Task LoopingMessage_TooManyReceivedHeaders_Refused554()
    {
        var (d, sink) = await DomainAsync();
        await using var _s = sink;
        var hops = string.Concat(Enumerable.Range(0, 5).Select(i => $"Received: from hop{i}.test by hop{i + 1}.test; Mon, 1 Jan 2024 00:00:00 +0000\r\n"));
        var reply = await RawSmtp.SendAsync(fx.Intake, "p@remote.test", [$"a@{d}"], hops + "Subject: loop\r\n\r\nx\r\n");
        Assert.StartsWith("554 5.4.6 Too many hops", reply, StringComparison.Ordinal);
        Assert.Empty((await fx.Queue.ListQueueAsync(new Gateway.Api.V1.ListQueueRequest { Domain = d })).Messages);
    }

    [Fact]
    public async Task UnicodeAddress_NeedsSmtpUtf8_ThenDeliveredAsUtf8()
    {
        var (d, sink) = await DomainAsync();
        await using var _s = sink;
        await using var c = await OpenAsync();
        await c.WriteAsync($"EHLO c\r\nMAIL FROM:<jörg@remote.test>\r\n");
        await c.ReadReplyAsync();
        Assert.Equal("553 5.6.7 Must declare SMTPUTF8 to send unicode address", await c.ReadReplyAsync());
        await c.WriteAsync($"MAIL FROM:<jörg@exämple.test> SMTPUTF8\r\nRCPT TO:<müller@{d}>\r\nDATA\r\n");
        Assert.Equal("250 2.1.0 Ok", await c.ReadReplyAsync());
        Assert.Equal("250 2.1.5 Ok", await c.ReadReplyAsync());
        Assert.StartsWith("354", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync("Subject: utf8\r\n\r\nGrüße\r\n.\r\n");
        Assert.StartsWith("250 2.0.0", await c.ReadReplyAsync(), StringComparison.Ordinal);
        var m = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10)));
        Assert.Equal("jörg@exämple.test", m.MailFrom);
        Assert.Equal([$"müller@{d}"], m.Recipients);
    }

    [Fact]
    public async Task BadInput_AnsweredAndClosedAfterErrorLimit_ServerLivesOn()
    {
        await using (var c = await OpenAsync())
        {
            await c.WriteAsync(new byte[] { 0xff, 0xfe, 0x00, 0x01, (byte)'\r', (byte)'\n' });
            Assert.StartsWith("500 5.5.2", await c.ReadReplyAsync(), StringComparison.Ordinal);
            await c.WriteAsync("MAIL FROM:<\xff>\r\n"u8.ToArray().Concat(Encoding.Latin1.GetBytes("RCPT TO:<a@b>\r\n")).ToArray());
            Assert.StartsWith("5", await c.ReadReplyAsync(), StringComparison.Ordinal);
            Assert.StartsWith("503 5.5.1", await c.ReadReplyAsync(), StringComparison.Ordinal);
            await c.WriteAsync(new string('A', 5000) + "\r\n");
            Assert.Equal("500 5.5.2 Error: line too long", await c.ReadReplyAsync());
            await c.WriteAsync("DATA\r\nNOOP\r\n");
            // The fifth error (MaxErrors = 5) closes the connection; the pipelined NOOP is not answered.
            Assert.Equal("503 5.5.1 Error: need MAIL command", await c.ReadReplyAsync());
            Assert.StartsWith("421 4.7.0", await c.ReadReplyAsync(), StringComparison.Ordinal);
            Assert.Equal(string.Empty, await c.ReadReplyAsync());
        }

        var (d, sink) = await DomainAsync();
        await using var _s = sink;
        Assert.StartsWith("250 ", await RawSmtp.SendAsync(fx.Intake, "p@remote.test", [$"a@{d}"], "Subject: after\r\n\r\nx\r\n"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientDisconnectsMidData_NothingQueued()
    {
        var (d, sink) = await DomainAsync();
        await using var _s = sink;
        await using (var c = await OpenAsync())
        {
            await c.WriteAsync($"EHLO c\r\nMAIL FROM:<p@remote.test>\r\nRCPT TO:<a@{d}>\r\nDATA\r\nSubject: cut\r\n\r\nhalf a mess");
            for (var i = 0; i < 4; i++)
            {
                await c.ReadReplyAsync();
            }
        }

        await Task.Delay(300);
        Assert.Empty((await fx.Queue.ListQueueAsync(new Gateway.Api.V1.ListQueueRequest { Domain = d })).Messages);
        Assert.Equal(0, sink.Connections);
    }
}
