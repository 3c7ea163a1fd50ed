using System.Text;
using Gateway.Api.V1;
using Gateway.Testing;
using MimeKit;
using Gateway.Core.Mail;

namespace Deliverer.Tests;

/// <summary>Per-recipient outcomes, DSNs, outbound MX routing, loops, byte fidelity and the message log.</summary>
[Trait("Kind", "Integration")]
public sealed class DeliveryTests(GatewayFixture fx) : IClassFixture<GatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    /// <summary>An external domain whose MX is a sink on 127.0.0.<paramref name="octet"/> at the outbound port.</summary>
    private SmtpSink ExternalDomain(string domain, int octet, int preference = 10, string? mxName = null)
    {
        var sink = SmtpSink.Start($"127.0.0.{octet}", fx.OutboundPort);
        mxName ??= "mx" + octet + "." + domain;
        fx.Dns.AddMx(domain, (ushort)preference, mxName).AddA(mxName, sink.Host);
        return sink;
    }

    private static string NewExternal(string label) => $"{label}{Guid.NewGuid().ToString("N")[..8]}.remote.test";

    [Fact]
    public async Task Rcpt550_BouncesOnlyThatRecipient_DsnToSender_NoOtherHost()
    {
        var primary = SmtpSink.Start("127.0.0.3");
        var secondary = SmtpSink.Start("127.0.0.2");
        await using var _p = primary;
        await using var _s = secondary;
        primary.Behavior = new SinkBehavior
        {
            RcptReply = r => r.StartsWith("bad@", StringComparison.Ordinal) ? "550 5.1.1 <" + r + ">: Recipient address rejected: User unknown" : "250 2.1.5 Ok",
        };
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("b550"), ("*@{d}", primary.Host, primary.Port, 10), ("*@{d}", secondary.Host, secondary.Port, 20));
        var senderDomain = NewExternal("alice");
        await using var senderMx = ExternalDomain(senderDomain, 11);

        await fx.SendAsync("alice@" + senderDomain, ["good@" + d, "bad@" + d], subject: "two recipients");

        var delivered = Assert.Single(await primary.WaitForMessagesAsync(1, Wait));
        Assert.Equal(["good@" + d], delivered.Recipients);
        var dsn = Assert.Single(await senderMx.WaitForMessagesAsync(1, Wait));
        Assert.Equal(string.Empty, dsn.MailFrom);
        Assert.Equal(["alice@" + senderDomain], dsn.Recipients);
        var report = await MimeMessage.LoadAsync(new MemoryStream(dsn.Data));
        var multipart = Assert.IsType<MultipartReport>(report.Body);
        Assert.Equal("delivery-status", multipart.ReportType);
        var status = Assert.IsType<MessageDeliveryStatus>(multipart[1]);
        // Per-message fields, then one group per failed recipient (MimeKit may add an empty trailing group).
        var groups = status.StatusGroups.Where(g => g.Count > 0).ToList();
        var recipient = Assert.Single(groups.Skip(1));
        Assert.Equal("rfc822; bad@" + d, recipient["Final-Recipient"]);
        Assert.Equal("failed", recipient["Action"]);
        Assert.Equal("5.1.1", recipient["Status"]);
        Assert.StartsWith("smtp; 550 5.1.1", recipient["Diagnostic-Code"], StringComparison.Ordinal);
        Assert.Equal("dns; 127.0.0.3", recipient["Remote-MTA"]);
        Assert.Equal("dns; gateway.test", status.StatusGroups[0]["Reporting-MTA"]);
        var headers = Assert.IsType<TextRfc822Headers>(multipart[2]);
        Assert.Contains("Subject: two recipients", headers.Message!.ToString(), StringComparison.Ordinal);

        Assert.Equal(0, secondary.Connections);
        // The log is written after the sinks have the mail (buffered, off the delivery path): wait for both outcomes.
        await fx.WaitForLogAsync(d, e => e["event"] == "bounced", "the bounce logged");
        await fx.WaitForLogAsync(d, e => e["event"] == "delivered", "the delivery logged");
        var log = await fx.LogAsync(d);
        Assert.Single(log, e => e["event"] == "bounced" && e["recipient"] == "bad@" + d);
        Assert.Single(log, e => e["event"] == "delivered" && e["recipient"] == "good@" + d);
        Assert.DoesNotContain(log, e => e["event"] == "deferred");
    }

    [Fact]
    public async Task Dsn_Rfc3461_NotifyNeverSilences_SuccessRelayed_EnvidOrcptAndFullReturnReported()
    {
        var server = SmtpSink.Start("127.0.0.3");
        await using var _s = server;
        server.Behavior = new SinkBehavior
        {
            RcptReply = r => r.StartsWith("bad@", StringComparison.Ordinal) || r.StartsWith("quiet@", StringComparison.Ordinal)
                ? "550 5.1.1 <" + r + ">: Recipient address rejected: User unknown" : "250 2.1.5 Ok",
        };
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("dsn"), ("*@{d}", server.Host, server.Port, 10));
        var senderDomain = NewExternal("dsn");
        await using var senderMx = ExternalDomain(senderDomain, 12);

        await using var c = await RawSmtp.ConnectAsync(fx.Intake);
        await c.ReadReplyAsync();
        await c.WriteAsync("EHLO client.test\r\n");
        Assert.Contains("250-DSN", await c.ReadReplyAsync(), StringComparison.Ordinal);
        Assert.StartsWith("501 5.5.4 Bad RET", await Command(c, $"MAIL FROM:<alice@{senderDomain}> RET=ALL"), StringComparison.Ordinal);
        Assert.StartsWith("250", await Command(c, $"MAIL FROM:<alice@{senderDomain}> RET=FULL ENVID=QQ+2B314"), StringComparison.Ordinal);
        Assert.StartsWith("501 5.5.4 Bad NOTIFY", await Command(c, $"RCPT TO:<good@{d}> NOTIFY=NEVER,SUCCESS"), StringComparison.Ordinal);
        Assert.StartsWith("250", await Command(c, $"RCPT TO:<good@{d}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Good+2Bx@orig.example"), StringComparison.Ordinal);
        Assert.StartsWith("250", await Command(c, $"RCPT TO:<bad@{d}> NOTIFY=FAILURE ORCPT=rfc822;bad@{d}"), StringComparison.Ordinal);
        Assert.StartsWith("250", await Command(c, $"RCPT TO:<quiet@{d}> NOTIFY=NEVER"), StringComparison.Ordinal);
        Assert.StartsWith("354", await Command(c, "DATA"), StringComparison.Ordinal);
        await c.WriteAsync("From: <alice@" + senderDomain + ">\r\nSubject: notify me\r\n\r\nThe whole body comes back.\r\n.\r\n");
        Assert.StartsWith("250 2.0.0 Ok: queued as", await c.ReadReplyAsync(), StringComparison.Ordinal);

        // One DSN: good relayed (NOTIFY=SUCCESS), bad failed; quiet (NOTIFY=NEVER) not reported.
        var dsn = Assert.Single(await senderMx.WaitForMessagesAsync(1, Wait));
        Assert.Equal(string.Empty, dsn.MailFrom);
        var report = await MimeMessage.LoadAsync(new MemoryStream(dsn.Data));
        var multipart = Assert.IsType<MultipartReport>(report.Body);
        var status = Assert.IsType<MessageDeliveryStatus>(multipart[1]);
        Assert.Equal("QQ+314", status.StatusGroups[0]["Original-Envelope-Id"]);
        var groups = status.StatusGroups.Skip(1).Where(g => g.Count > 0).ToList();
        Assert.Equal(2, groups.Count);
        var good = Assert.Single(groups, g => g["Final-Recipient"] == "rfc822; good@" + d);
        Assert.Equal("relayed", good["Action"]);
        Assert.Equal("2.0.0", good["Status"]); // from the server's 250 to the DATA
        Assert.StartsWith("smtp; 250", good["Diagnostic-Code"], StringComparison.Ordinal);
        Assert.Equal("rfc822; Good+x@orig.example", good["Original-Recipient"]);
        var bad = Assert.Single(groups, g => g["Final-Recipient"] == "rfc822; bad@" + d);
        Assert.Equal("failed", bad["Action"]);
        Assert.Equal("5.1.1", bad["Status"]);
        Assert.DoesNotContain(groups, g => g["Final-Recipient"]!.Contains("quiet@", StringComparison.Ordinal));
        // RET=FULL: the whole original, body included.
        var returned = Assert.IsType<MessagePart>(multipart[2]);
        Assert.Contains("The whole body comes back.", returned.Message!.TextBody!, StringComparison.Ordinal);

        await fx.WaitForLogAsync(d, e => e["event"] == "bounced" && e["recipient"] == "quiet@" + d, "the silenced bounce logged");
        var log = await fx.LogAsync(d);
        Assert.Contains("no DSN", Assert.Single(log, e => e["event"] == "bounced" && e["recipient"] == "quiet@" + d)["detail"], StringComparison.Ordinal);
        Assert.StartsWith("DSN ", Assert.Single(log, e => e["event"] == "bounced" && e["recipient"] == "bad@" + d)["detail"], StringComparison.Ordinal);
    }

    private static async Task<string> Command(RawSmtp c, string line)
    {
        await c.WriteAsync(line + "\r\n");
        return await c.ReadReplyAsync();
    }

    [Fact]
    public async Task Outbound_MxByPreference_LowestFirstThenNext()
    {
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("out"));
        var to = NewExternal("mx");
        await using var best = ExternalDomain(to, 12, preference: 10);
        await using var backup = ExternalDomain(to, 13, preference: 20);

        await fx.SendAsync("user@" + from, ["someone@" + to]);
        var m = Assert.Single(await best.WaitForMessagesAsync(1, Wait));
        Assert.Equal("user@" + from, m.MailFrom);
        Assert.Equal(0, backup.Connections);

        best.Refuse();
        await fx.SendAsync("user@" + from, ["someone@" + to]);
        await backup.WaitForMessagesAsync(1, Wait);
        await fx.WaitForLogAsync(from, e => e["event"] == "delivered" && e["direction"] == "outbound" && e["host"].Contains("127.0.0.13", StringComparison.Ordinal),
            "the delivery to the backup MX logged");
    }

    [Fact]
    public async Task Outbound_NoMxRecord_DeliversToAddressRecord()
    {
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("out"));
        var to = NewExternal("amx");
        await using var sink = SmtpSink.Start("127.0.0.14", fx.OutboundPort);
        fx.Dns.AddA(to, sink.Host);
        await fx.SendAsync("user@" + from, ["someone@" + to]);
        await sink.WaitForMessagesAsync(1, Wait);
    }

    [Fact]
    public async Task Outbound_NullMx_BouncedAtOnce_DsnGoesInboundToManagedSender()
    {
        var home = SmtpSink.Start("127.0.0.15");
        await using var _h = home;
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("out"), ("*@{d}", home.Host, home.Port, 10));
        var to = NewExternal("null");
        fx.Dns.AddMx(to, 0, ".");
        await fx.SendAsync("user@" + from, ["someone@" + to]);

        // The sender's own domain is managed with inbound on: its DSN takes the inbound route.
        var dsn = Assert.Single(await home.WaitForMessagesAsync(1, Wait));
        Assert.Equal(string.Empty, dsn.MailFrom);
        Assert.Equal(["user@" + from], dsn.Recipients);
        Assert.Contains("Status: 5.1.10", dsn.Text, StringComparison.Ordinal);
        Assert.Contains("null MX", dsn.Text, StringComparison.Ordinal);
        var bounced = await fx.WaitForLogAsync(from, e => e["event"] == "bounced", "bounce logged");
        Assert.StartsWith("556 5.1.10", bounced["reply"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Outbound_NonexistentDomain_Bounced()
    {
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("out"));
        await fx.SendAsync("user@" + from, ["someone@" + NewExternal("nx")]);
        var bounced = await fx.WaitForLogAsync(from, e => e["event"] == "bounced", "bounce logged");
        Assert.Contains("NXDOMAIN", bounced["reply"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Outbound_MxPointsBackAtGateway_BouncedAsLoop()
    {
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("out"));
        var to = NewExternal("loop");
        fx.Dns.AddMx(to, 10, "acme.in." + GatewayFixture.GatewayDomain).AddA("acme.in." + GatewayFixture.GatewayDomain, "127.0.0.16");
        await fx.SendAsync("user@" + from, ["someone@" + to]);
        var bounced = await fx.WaitForLogAsync(from, e => e["event"] == "bounced", "bounce logged");
        Assert.Contains("loops back to myself", bounced["reply"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Outbound_DnsServerFailure_DeferredNotBounced()
    {
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("out"));
        var to = NewExternal("servfail");
        fx.Dns.Fail(to);
        await fx.SendAsync("user@" + from, ["someone@" + to]);
        var deferred = await fx.WaitForLogAsync(from, e => e["event"] == "deferred", "deferral logged");
        Assert.Contains("DNS lookup of MX", deferred["reply"], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Delivery_RawMessage_ArrivesByteForByteAfterTheTraceHeader()
    {
        var sink = SmtpSink.Start("127.0.0.2");
        await using var _s = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("raw"), ("*@{d}", sink.Host, sink.Port, 10));
        var body = "From: a@remote.test\r\nTo: u@" + d + "\r\nSubject: =?UTF-8?B?w6TDtsO8?=\r\nMessage-ID: <raw-1@remote.test>\r\n" +
                   "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
                   ".leading dot\r\n..two dots\r\nGrüße aus Köln – 8bit\r\n\r\nlast line\r\n";
        var reply = await RawSmtp.SendAsync(fx.Intake, "a@remote.test", ["u@" + d], body, eightBit: true);
        Assert.StartsWith("250 2.0.0 Ok: queued as ", reply, StringComparison.Ordinal);

        var m = Assert.Single(await sink.WaitForMessagesAsync(1, Wait));
        var text = m.Text;
        Assert.StartsWith("Received: from client.test ([127.0.0.1])", text, StringComparison.Ordinal);
        Assert.EndsWith(body, text, StringComparison.Ordinal);
        Assert.Equal(1, text.Split("\r\nReceived: ").Length + (text.StartsWith("Received: ", StringComparison.Ordinal) ? 0 : -1));
    }

    [Fact]
    public async Task MessageLog_IntakeAttemptDelivered_WithHostAndReply()
    {
        var sink = SmtpSink.Start("127.0.0.2");
        await using var _s = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("log"), ("*@{d}", sink.Host, sink.Port, 10));
        var reply = await fx.SendAsync("s@remote.test", ["u@" + d]);
        var id = reply.Split(' ').Last();
        await sink.WaitForMessagesAsync(1, Wait);
        var delivered = await fx.WaitForLogAsync(d, e => e["event"] == "delivered", "delivered");
        var log = (await fx.LogAsync(d)).Where(e => e["message_id"] == id).ToList();
        Assert.Equal(["intake", "attempt", "delivered"], log.Select(e => e["event"]));
        Assert.All(log, e => Assert.Equal("inbound", e["direction"]));
        Assert.All(log, e => Assert.Equal("u@" + d, e["recipient"]));
        Assert.Equal("127.0.0.1", log[0]["client_address"]);
        Assert.Equal($"127.0.0.2:{sink.Port}", delivered["host"]);
        Assert.StartsWith("250 ", delivered["reply"], StringComparison.Ordinal);
        Assert.Equal("deliverer", delivered["program"]);
    }

    [Fact]
    public async Task EnqueueAsync_FromAnotherProgram_DeliveredByTheDeliverer()
    {
        var sink = SmtpSink.Start("127.0.0.2");
        await using var _s = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("api"), ("*@{d}", sink.Host, sink.Port, 10));
        // The ControlPlane's queue (issue 5's SendTestMessage puts its generated message in this way).
        var id = await fx.Store.EnqueueAsync(new Gateway.Core.Delivery.QueueEnvelope(d, Direction.Inbound, "postmaster@gateway.test", ["u@" + d]),
            "Subject: test message\r\n\r\nGenerated.\r\n"u8.ToArray());
        var m = Assert.Single(await sink.WaitForMessagesAsync(1, Wait));
        Assert.Equal("Subject: test message\r\n\r\nGenerated.\r\n", m.Text);
        await fx.WaitForLogAsync(d, e => e["event"] == "delivered" && e["message_id"] == id, "delivered under the returned id");
    }

    [Fact]
    public async Task InboundHostName_ResolvedToAddressRecord_NotMx()
    {
        var sink = SmtpSink.Start("127.0.0.17");
        await using var _s = sink;
        var host = "mail" + Guid.NewGuid().ToString("N")[..6] + ".customer.test";
        fx.Dns.AddA(host, sink.Host).AddMx(host, 10, "wrong.customer.test").AddA("wrong.customer.test", "127.0.0.18");
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("fqdn"), ("*@{d}", host, sink.Port, 10));
        await fx.SendAsync("s@remote.test", ["u@" + d]);
        await sink.WaitForMessagesAsync(1, Wait);
        var delivered = await fx.WaitForLogAsync(d, e => e["event"] == "delivered", "delivered");
        Assert.Equal($"{host}[127.0.0.17]:{sink.Port}", delivered["host"]);
    }
}

internal static class StreamExtensions
{
    public static byte[] ReadAllBytes(this Stream stream)
    {
        using var ms = new MemoryStream();
        stream.CopyTo(ms);
        return ms.ToArray();
    }
}
