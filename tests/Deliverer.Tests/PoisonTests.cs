using System.Text;
using Gateway.Core.Delivery;
using Gateway.Core.Mail;
using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>
/// Poison messages (requirements §11.7; docs/reliability.md "Hostile sender"): any exception during an attempt is an outcome,
/// logged and retried with the normal backoff until the lifetime (3 s here, retries every 0.5 s); what was delivered is
/// never delivered again.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class PoisonTests(ExpiryFixture fx) : IClassFixture<ExpiryFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task ResolverThrowsOnADomainLabel_DeferredRetriedThenExpired_OtherDomainDeliveredOnce()
    {
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("poison"));
        var healthy = $"ok{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        var sink = SmtpSink.Start("127.0.0.51", fx.OutboundPort);
        await using var _s = sink;
        fx.Dns.AddMx(healthy, 10, "mx." + healthy).AddA("mx." + healthy, sink.Host);
        // A 64-character label: DnsClient refuses to build the query (an exception, not a DNS answer). The intake would not
        // take it; a queue entry can still hold it (another program's enqueue, an older version's data).
        var poisoned = "x@" + new string('a', 64) + ".example";
        var raw = Encoding.ASCII.GetBytes($"From: <user@{from}>\r\nSubject: poison\r\n\r\nbody\r\n");

        var id = await fx.Store.EnqueueAsync(new QueueEnvelope(from, Direction.Outbound, "user@" + from, [poisoned, "y@" + healthy]), raw);

        var deferred = await fx.WaitForLogAsync(from, e => e["event"] == "deferred" && e["recipient"] == poisoned, "the poisoned recipient deferred", Wait);
        Assert.Contains("local error", deferred["reply"], StringComparison.Ordinal);
        await fx.WaitForLogAsync(from, e => e["event"] == "expired" && e["recipient"] == poisoned, "the poisoned recipient expired at the lifetime", Wait);
        var log = (await fx.LogAsync(from)).Where(e => e["message_id"] == id).ToList();
        Assert.True(log.Count(e => e["event"] == "deferred" && e["recipient"] == poisoned) >= 2, "retried with the backoff before it expired");
        Assert.Single(log, e => e["event"] == "delivered" && e["recipient"] == "y@" + healthy);
        Assert.Single(sink.Messages); // delivered once, not at every retry of the other recipient
        Assert.Null(await fx.Store.GetAsync(from, id));
    }

    [Fact]
    public async Task RemoteDropsTheConnectionAfter250ToDataEnd_DeliveredOnce_NextMessageOnAFreshConnection()
    {
        var sink = SmtpSink.Start("127.0.0.3");
        await using var _s = sink;
        sink.Behavior = new SinkBehavior { DropAfterDataEnd = true };
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("drop"), ("*@{d}", sink.Host, sink.Port, 10));

        await fx.SendAsync("someone@remote.test", ["a@" + d, "b@" + d], subject: "first");
        Assert.Single(await sink.WaitForMessagesAsync(1, Wait));
        await fx.SendAsync("someone@remote.test", ["c@" + d], subject: "second");
        Assert.Equal(2, (await sink.WaitForMessagesAsync(2, Wait)).Count);

        // Several retry intervals later: still two messages, every recipient delivered once.
        await Task.Delay(2000);
        Assert.Equal(2, sink.Messages.Count);
        await fx.WaitForLogAsync(d, e => e["event"] == "delivered" && e["recipient"] == "c@" + d, "the second delivery logged", Wait);
        var log = await fx.LogAsync(d);
        Assert.Equal(3, log.Count(e => e["event"] == "delivered"));
        Assert.DoesNotContain(log, e => e["event"] == "deferred");
    }
}
