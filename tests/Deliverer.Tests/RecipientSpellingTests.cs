using Gateway.Api.V1;
using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>Found by tests/Fuzz.Tests: recipients the intake accepts that MimeKit spells differently or cannot send at all.</summary>
public sealed class RecipientSpellingTests(GatewayFixture fx) : IClassFixture<GatewayFixture>
{
    [Fact]
    public async Task RecipientWithTrailingDot_DeliveredOnceAndRecorded_NotRetried()
    {
        var sink = SmtpSink.Start("127.0.0.7");
        await using var _s = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("dot"), ("*@{d}", sink.Host, sink.Port, 10));

        // "user@domain." is the same (fully qualified) domain: accepted at intake. MimeKit sends it without the dot,
        // and the reply must still be recorded for the queued recipient, or it is delivered again at every retry.
        // Raw SMTP: MailKit would drop the dot before it reached the intake.
        var queued = await RawSmtp.SendAsync(fx.Intake, "s@remote.test", [$"user@{d}."], "Subject: fqdn\r\n\r\nbody\r\n");
        Assert.StartsWith("250 2.0.0 Ok: queued", queued, StringComparison.Ordinal);
        var m = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(20)));
        Assert.Equal([$"user@{d}"], m.Recipients);
        await Eventually.WaitAsync(async () => (await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages.Count == 0,
            TimeSpan.FromSeconds(10), "the queue to empty (the delivery recorded)");
        var delivered = await fx.WaitForLogAsync(d, e => e["event"] == "delivered", "the delivered event");
        Assert.Equal($"user@{d}.", delivered["recipient"]);
    }

    [Fact]
    public async Task RecipientMimeKitCannotSend_BouncedOnceWithDsn_NotRetriedForever()
    {
        var sink = SmtpSink.Start("127.0.0.8");
        await using var _s = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("at"), ("*@{d}", sink.Host, sink.Port, 10));

        // An unquoted '@' in the local part: the intake takes it (as Postfix would), MimeKit cannot put it in a RCPT.
        // It must fail for good (553, DSN to the sender, here a mailbox of the same domain) rather than throw at
        // every attempt and stay in the queue. The other recipient is delivered.
        var queued = await RawSmtp.SendAsync(fx.Intake, $"postmaster@{d}", [$"user@other.test@{d}", $"ok@{d}"], "Subject: at\r\n\r\nbody\r\n");
        Assert.StartsWith("250 2.0.0 Ok: queued", queued, StringComparison.Ordinal);
        var bounced = await fx.WaitForLogAsync(d, e => e["event"] == "bounced", "the bounce", TimeSpan.FromSeconds(20));
        Assert.Equal($"user@other.test@{d}", bounced["recipient"]);
        Assert.StartsWith("553 5.1.3", bounced["reply"], StringComparison.Ordinal);
        var messages = await sink.WaitForMessagesAsync(2, TimeSpan.FromSeconds(20));
        Assert.Single(messages, m => m.Recipients.SequenceEqual([$"ok@{d}"]));
        Assert.Single(messages, m => m.Recipients.SequenceEqual([$"postmaster@{d}"]) && m.Text.Contains("multipart/report", StringComparison.Ordinal));
        await Eventually.WaitAsync(async () => (await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages.Count == 0,
            TimeSpan.FromSeconds(10), "the queue to empty");
    }

    [Fact]
    public async Task SenderMimeKitCannotParse_BouncedForGood_NotRetriedForever()
    {
        var sink = SmtpSink.Start("127.0.0.9");
        await using var _s = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("snd"), ("*@{d}", sink.Host, sink.Port, 10));

        // No MAIL FROM can be written for this sender: the message fails for good (553 5.1.7), and building the DSN to
        // that sender must not throw (which failed the attempt, again at every lease expiry). The DSN itself then
        // fails for good too (no DSN about a DSN), so nothing stays queued and nothing arrives.
        var queued = await RawSmtp.SendAsync(fx.Intake, $"bad@x@{d}", [$"ok@{d}"], "Subject: sender\r\n\r\nbody\r\n");
        Assert.StartsWith("250 2.0.0 Ok: queued", queued, StringComparison.Ordinal);
        var bounced = await fx.WaitForLogAsync(d, e => e["event"] == "bounced" && e["recipient"] == $"ok@{d}", "the bounce", TimeSpan.FromSeconds(20));
        Assert.StartsWith("553 5.1.7", bounced["reply"], StringComparison.Ordinal);
        Assert.StartsWith("DSN ", bounced["detail"], StringComparison.Ordinal);
        await Eventually.WaitAsync(async () => (await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages.Count == 0,
            TimeSpan.FromSeconds(20), "the queue to empty (the DSN to the unsendable sender fails for good too)");
        Assert.Empty(sink.Messages);
    }
}
