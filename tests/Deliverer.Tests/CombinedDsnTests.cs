using System.Diagnostics;
using System.Text.RegularExpressions;
using Gateway.Deliverer;
using Gateway.Testing;
using Microsoft.AspNetCore.Builder;

namespace Deliverer.Tests;

/// <summary>A coalescing window far longer than any test waits: a DSN that arrives came because every copy was done.</summary>
public sealed class LongDsnWindowFixture : GatewayFixture
{
    protected override IEnumerable<string> DelivererSettings => ["--Gateway:Deliverer:FailureDsnWindow=00:02:00"];
}

/// <summary>
/// One failure DSN per message, not one per copy (requirements §11; docs/reliability.md "Hostile sender"), over sockets with a
/// real redis-server and real SMTP servers: a message to recipients at several managed domains is one queue copy per domain,
/// and the sender gets one DSN for all the copies' failures.
/// </summary>
[Trait("Kind", "Integration")]
public sealed partial class CombinedDsnTests(LongDsnWindowFixture fx) : IClassFixture<LongDsnWindowFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    internal static string Refuse(string r) => "550 5.1.1 <" + r + ">: Recipient address rejected: User unknown";

    internal static async Task<(string Domain, SmtpSink Mx)> ExternalSenderAsync(GatewayFixture fx, string label, int octet)
    {
        var domain = $"{label}{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        var sink = SmtpSink.Start($"127.0.0.{octet}", fx.OutboundPort);
        fx.Dns.AddMx(domain, 10, "mx." + domain).AddA("mx." + domain, sink.Host);
        await Task.CompletedTask;
        return (domain, sink);
    }

    internal static IReadOnlyList<string> FinalRecipients(SinkMessage dsn) =>
        FinalRecipient().Matches(dsn.Text).Select(m => m.Groups[1].Value.Trim()).ToList();

    [GeneratedRegex(@"Final-Recipient: rfc822;\s*(\S+)", RegexOptions.CultureInvariant)]
    private static partial Regex FinalRecipient();

    [Fact]
    public async Task FailureDsn_ThreeDomainsAllRefuse550_ExactlyOneDsnNamingAllRecipients()
    {
        var servers = new[] { SmtpSink.Start("127.0.0.2"), SmtpSink.Start("127.0.0.3"), SmtpSink.Start("127.0.0.4") };
        var domains = new List<string>();
        foreach (var s in servers)
        {
            s.Behavior = new SinkBehavior { RcptReply = Refuse };
            domains.Add(await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("all550"), ("*@{d}", s.Host, s.Port, 10)));
        }

        var (senderDomain, senderMx) = await ExternalSenderAsync(fx, "forged", 61);
        await using var _m = senderMx;
        var recipients = domains.Select(d => "user@" + d).ToList();
        await fx.SendAsync("victim@" + senderDomain, recipients, subject: "to three domains");

        // One DSN, and well before the two-minute window: the last copy's failure sent it.
        var dsn = Assert.Single(await senderMx.WaitForMessagesAsync(1, Wait));
        Assert.Equal(string.Empty, dsn.MailFrom);
        Assert.Equal(recipients.Order(StringComparer.Ordinal), FinalRecipients(dsn).Order(StringComparer.Ordinal));
        Assert.Equal(3, Regex.Count(dsn.Text, "Action: failed"));
        Assert.Contains("Subject: to three domains", dsn.Text, StringComparison.Ordinal);
        foreach (var d in domains)
        {
            var bounced = await fx.WaitForLogAsync(d, e => e["event"] == "bounced", "the bounce logged");
            Assert.Contains("DSN combined with the other copies", bounced["detail"], StringComparison.Ordinal);
        }

        await Task.Delay(2000);
        Assert.Single(senderMx.Messages);
        foreach (var s in servers)
        {
            await s.DisposeAsync();
        }
    }

    [Fact]
    public async Task FailureDsn_TwoRefuseOneDelivers_OneDsnWithTheTwoFailures()
    {
        await using var refusing = SmtpSink.Start("127.0.0.5");
        refusing.Behavior = new SinkBehavior { RcptReply = Refuse };
        await using var accepting = SmtpSink.Start("127.0.0.6");
        var bad1 = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("bad1"), ("*@{d}", refusing.Host, refusing.Port, 10));
        var bad2 = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("bad2"), ("*@{d}", refusing.Host, refusing.Port, 10));
        var good = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("good"), ("*@{d}", accepting.Host, accepting.Port, 10));
        var (senderDomain, senderMx) = await ExternalSenderAsync(fx, "mixed", 62);
        await using var _m = senderMx;

        await fx.SendAsync("victim@" + senderDomain, ["a@" + bad1, "b@" + good, "c@" + bad2], subject: "two of three fail");

        var dsn = Assert.Single(await senderMx.WaitForMessagesAsync(1, Wait));
        Assert.Equal(new[] { "a@" + bad1, "c@" + bad2 }.Order(StringComparer.Ordinal), FinalRecipients(dsn).Order(StringComparer.Ordinal));
        Assert.Equal(2, Regex.Count(dsn.Text, "Action: failed"));
        Assert.Single(await accepting.WaitForMessagesAsync(1, Wait));
        await Task.Delay(2000);
        Assert.Single(senderMx.Messages);
    }

    [Fact]
    public async Task FailureDsn_OtherCopyDeferred_ThenDeletedByOperator_DsnSentWithoutWaitingForTheWindow()
    {
        await using var refusing = SmtpSink.Start("127.0.0.10");
        refusing.Behavior = new SinkBehavior { RcptReply = Refuse };
        await using var deferring = SmtpSink.Start("127.0.0.11");
        deferring.Behavior = new SinkBehavior { RcptReply = _ => "451 4.3.0 try again later" };
        var bad = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("opbad"), ("*@{d}", refusing.Host, refusing.Port, 10));
        var stuck = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("opstuck"), ("*@{d}", deferring.Host, deferring.Port, 10));
        var (senderDomain, senderMx) = await ExternalSenderAsync(fx, "operator", 65);
        await using var _m = senderMx;

        await fx.SendAsync("victim@" + senderDomain, ["a@" + bad, "b@" + stuck], subject: "one copy stuck");
        await fx.WaitForLogAsync(bad, e => e["event"] == "bounced", "the failure collected");
        var deferred = await fx.WaitForLogAsync(stuck, e => e["event"] == "deferred", "the other copy deferred");
        await Task.Delay(1000);
        Assert.Empty(senderMx.Messages); // waiting for the other copy (the window is two minutes)

        // The operator deletes the stuck copy: it is done, so the collected failure goes now.
        await fx.Queue.DeleteMessageAsync(new Gateway.Api.V1.DeleteMessageRequest { Domain = stuck, MessageId = deferred["message_id"] });
        var dsn = Assert.Single(await senderMx.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30))); // due now: the next poll (10 s at most) sends it
        Assert.Equal(["a@" + bad], FinalRecipients(dsn));
    }

    [Fact]
    public async Task FailureDsn_OneCopy_SentAtOnceWithoutWaiting()
    {
        await using var server = SmtpSink.Start("127.0.0.7");
        server.Behavior = new SinkBehavior { RcptReply = Refuse };
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("single"), ("*@{d}", server.Host, server.Port, 10));
        var (senderDomain, senderMx) = await ExternalSenderAsync(fx, "single", 63);
        await using var _m = senderMx;

        var sent = Stopwatch.StartNew();
        await fx.SendAsync("victim@" + senderDomain, ["x@" + d, "y@" + d], subject: "one copy");

        // A message of one copy (two recipients at one domain) is never grouped: its DSN goes with the failing attempt,
        // well within the two-minute window this fixture sets.
        var dsn = Assert.Single(await senderMx.WaitForMessagesAsync(1, Wait));
        Assert.True(sent.Elapsed < TimeSpan.FromSeconds(20), $"the DSN took {sent.Elapsed}");
        Assert.Equal(2, FinalRecipients(dsn).Count);
        var bounced = await fx.WaitForLogAsync(d, e => e["event"] == "bounced", "the bounce logged");
        Assert.StartsWith("DSN ", bounced["detail"], StringComparison.Ordinal);
    }
}

/// <summary>Two Deliverers on one Redis, the first as its own process (SIGKILL-able); an 8-second coalescing window, fast retries.</summary>
public sealed class DsnFleetFixture : GatewayFixture
{
    private WebApplication? _second;

    protected override bool DelivererAsProcess => true;

    protected override IEnumerable<string> DelivererSettings =>
    [
        "--Gateway:Deliverer:FailureDsnWindow=00:00:08", "--Gateway:Queue:Lease=00:00:02",
        "--Gateway:Queue:FirstRetryDelay=00:00:01", "--Gateway:Queue:MaxRetryDelay=00:00:01",
    ];

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _second = DelivererApp.Build(DelivererArgs(0));
        await _second.StartAsync();
    }

    public override async Task DisposeAsync()
    {
        if (_second is not null)
        {
            await _second.StopAsync();
            await _second.DisposeAsync();
        }

        await base.DisposeAsync();
    }
}

/// <summary>The combined DSN survives the Deliverer that collected the failures (requirements §11, §6: nothing lost).</summary>
[Trait("Kind", "Integration")]
public sealed class CombinedDsnFleetTests(DsnFleetFixture fx) : IClassFixture<DsnFleetFixture>
{
    [Fact]
    public async Task FailureDsn_CollectingDelivererKilled_SecondDelivererSendsItAtTheWindow_ThenTheLastCopysOwn()
    {
        await using var refusing = SmtpSink.Start("127.0.0.8");
        refusing.Behavior = new SinkBehavior { RcptReply = CombinedDsnTests.Refuse };
        await using var deferring = SmtpSink.Start("127.0.0.9");
        deferring.Behavior = new SinkBehavior { RcptReply = _ => "451 4.3.0 try again later" };
        var bad = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("killbad"), ("*@{d}", refusing.Host, refusing.Port, 10));
        var later = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("killlater"), ("*@{d}", deferring.Host, deferring.Port, 10));
        var (senderDomain, senderMx) = await CombinedDsnTests.ExternalSenderAsync(fx, "fleet", 64);
        await using var _m = senderMx;

        // Through the first Deliverer's intake: it holds both copies' leases and attempts them at once.
        await fx.SendAsync("victim@" + senderDomain, ["a@" + bad, "b@" + later], subject: "collected then killed");
        await fx.WaitForLogAsync(bad, e => e["event"] == "bounced", "the first copy's failure collected");
        await fx.StopDelivererAsync(kill: true);
        Assert.Empty(senderMx.Messages); // killed within the window: it sent nothing

        // The second Deliverer sends the collected failure when the window ends (the other copy is still deferred).
        var first = Assert.Single(await senderMx.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal(["a@" + bad], CombinedDsnTests.FinalRecipients(first));

        // The last copy fails later, at the second Deliverer: it is done, so its DSN goes at once, and only once.
        deferring.Behavior = new SinkBehavior { RcptReply = CombinedDsnTests.Refuse };
        var both = await senderMx.WaitForMessagesAsync(2, TimeSpan.FromSeconds(30));
        Assert.Equal(2, both.Count);
        Assert.Equal(["b@" + later], CombinedDsnTests.FinalRecipients(both[1]));
        await Task.Delay(2000);
        Assert.Equal(2, senderMx.Messages.Count);
    }
}
