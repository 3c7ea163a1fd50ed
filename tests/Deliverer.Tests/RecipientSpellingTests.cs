using Gateway.Api.V1;
using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>Found by tests/Fuzz.Tests: recipients the intake accepts that MimeKit spells differently or cannot send at all.</summary>
[Trait("Kind", "Integration")]
public sealed class RecipientSpellingTests(GatewayFixture fx) : IClassFixture<GatewayFixture>
{
    [Fact]
    public async Task RecipientWithTrailingDot_CanonicalFormQueuedDeliveredAndRecorded_NotRetried()
    {
        var sink = SmtpSink.Start("127.0.0.7");
        await using var _s = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("dot"), ("*@{d}", sink.Host, sink.Port, 10));

        // "user@domain." is the same (fully qualified) domain: the intake stores the canonical form (requirements §11.3),
        // so the queue, the delivery and the log all name the same recipient. Raw SMTP: MailKit would drop the dot itself.
        var queued = await RawSmtp.SendAsync(fx.Intake, "s@remote.test", [$"user@{d}."], "Subject: fqdn\r\n\r\nbody\r\n");
        Assert.StartsWith("250 2.0.0 Ok: queued", queued, StringComparison.Ordinal);
        var m = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(20)));
        Assert.Equal([$"user@{d}"], m.Recipients);
        await Eventually.WaitAsync(async () => (await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages.Count == 0,
            TimeSpan.FromSeconds(10), "the queue to empty (the delivery recorded)");
        var delivered = await fx.WaitForLogAsync(d, e => e["event"] == "delivered", "the delivered event");
        Assert.Equal($"user@{d}", delivered["recipient"]);
    }

    [Fact]
    public async Task RecipientWithUnquotedAtInLocalPart_RefusedAtRcpt_OtherRecipientDelivered()
    {
        var sink = SmtpSink.Start("127.0.0.8");
        await using var _s = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("at"), ("*@{d}", sink.Host, sink.Port, 10));

        // An unquoted '@' in the local part is not an address (RFC 5321 §4.1.2): Postfix and the intake could read it as
        // different recipients, so the intake refuses it at RCPT (the policy service refuses its unquoted form as routing).
        await using var c = await RawSmtp.ConnectAsync(fx.Intake);
        await c.ReadReplyAsync();
        await c.WriteAsync("EHLO client.test\r\n");
        await c.ReadReplyAsync();
        await c.WriteAsync($"MAIL FROM:<s@remote.test>\r\nRCPT TO:<user@other.test@{d}>\r\nRCPT TO:<ok@{d}>\r\nDATA\r\n");
        Assert.StartsWith("250 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        Assert.StartsWith("501 5.1.3", await c.ReadReplyAsync(), StringComparison.Ordinal);
        Assert.StartsWith("250 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        Assert.StartsWith("354 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync("Subject: at\r\n\r\nbody\r\n.\r\n");
        Assert.StartsWith("250 2.0.0 Ok: queued", await c.ReadReplyAsync(), StringComparison.Ordinal);
        var m = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(20)));
        Assert.Equal([$"ok@{d}"], m.Recipients);
    }

    [Fact]
    public async Task SenderNotAnAddress_RefusedAtMail_NothingQueued()
    {
        var sink = SmtpSink.Start("127.0.0.9");
        await using var _s = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("snd"), ("*@{d}", sink.Host, sink.Port, 10));

        // No MAIL FROM could be written for this sender, and no DSN could reach it: refused before anything is stored.
        var reply = await RawSmtp.SendAsync(fx.Intake, $"bad@x@{d}", [$"ok@{d}"], "Subject: sender\r\n\r\nbody\r\n");
        Assert.StartsWith("501 5.1.7", reply, StringComparison.Ordinal);
        Assert.Empty((await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages);
        Assert.Empty(sink.Messages);
    }
}
