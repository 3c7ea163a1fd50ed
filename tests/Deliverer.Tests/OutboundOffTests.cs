using Gateway.Api.V1;
using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>
/// requirements §3.10 (issue 15), outbound off means off: outbound mail already queued when the domain's outbound relay
/// is turned off is held (not sent, not bounced) with the reason in the message log, and leaves once outbound is on again.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class OutboundOffTests(FastRetryFixture fx) : IClassFixture<FastRetryFixture>
{
    [Fact]
    public async Task QueuedOutbound_OutboundTurnedOff_HeldWithReason_SentOnceTurnedOnAgain()
    {
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("off"));
        var to = $"offmx{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        fx.Dns.AddMx(to, 10, "mx." + to).AddA("mx." + to, "127.0.0.62");
        await using var mx = SmtpSink.Start("127.0.0.62", fx.OutboundPort);
        mx.Behavior = SinkBehavior.FailAt(SinkStage.Rcpt, "451 4.3.0 try again later");

        // Queued while outbound is on: the recipient's MX defers it.
        await fx.SendAsync("user@" + from, ["someone@" + to], subject: "queued before outbound went off");
        await fx.WaitForLogAsync(from, e => e["event"] == "deferred" && e["direction"] == "outbound", "the first attempt deferred by the MX");

        // Outbound off; the MX now accepts. Several retry intervals (1 s) pass: nothing leaves.
        var off = await fx.Domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = from, Outbound = new OutboundSettings { Enabled = false } },
            UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "outbound.enabled" } },
        });
        await fx.WaitForSnapshotAsync(from, off.Etag);
        var attemptsBefore = mx.Connections;
        mx.Behavior = SinkBehavior.Accept;
        await fx.WaitForLogAsync(from, e => e["event"] == "deferred" && e.Values.Any(v => v.Contains("Outbound is disabled for", StringComparison.Ordinal)),
            "a deferral naming the disabled outbound", TimeSpan.FromSeconds(20));
        await Task.Delay(TimeSpan.FromSeconds(4));
        Assert.Empty(mx.Messages);
        Assert.Equal(attemptsBefore, mx.Connections);
        Assert.Single((await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = from })).Messages);
        Assert.DoesNotContain(await fx.LogAsync(from), e => e["event"] is "bounced" or "delivered");

        // Outbound on again: the held message leaves.
        var on = await fx.Domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = from, Outbound = new OutboundSettings { Enabled = true } },
            UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "outbound.enabled" } },
        });
        await fx.WaitForSnapshotAsync(from, on.Etag);
        var delivered = Assert.Single(await mx.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal("user@" + from, delivered.MailFrom);
    }
}
