using Gateway.Api.V1;
using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>A Deliverer as in production: loopback destinations off (the other fixtures turn them on for their sinks).</summary>
public sealed class NoLoopbackFixture : GatewayFixture
{
    protected override IEnumerable<string> DelivererSettings => ["--Gateway:AllowLoopbackDestinations=false"];
}

/// <summary>
/// Security review H2 (issue 15): a tenant's inbound row whose host name resolves to the gateway host (127.0.0.61, or
/// ::ffff:127.0.0.61 through AAAA) is never connected to; the attempt is a failed host with the reason in the message
/// log, and the message waits (temporary failure) as for a host that is down.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class DestinationFilterDeliveryTests(NoLoopbackFixture fx) : IClassFixture<NoLoopbackFixture>
{
    [Fact]
    public async Task Deliver_RowResolvingToLoopbackOrMappedLoopback_NeverConnected_DeferredWithReason()
    {
        // 127.0.0.61 rather than .1: the in-process Deliverer's intake is 127.0.0.1:0, which its loop check claims.
        await using var sink = SmtpSink.Start("127.0.0.61");
        var d = GatewayFixture.NewDomainName("ssrf");
        fx.Dns.AddA("v4." + d, "127.0.0.61");
        fx.Dns.AddAaaa("v6." + d, "::ffff:127.0.0.61");
        await fx.CreateInboundDomainAsync(d, ("*@{d}", "v4." + d, sink.Port, 10), ("*@{d}", "v6." + d, sink.Port, 20));

        await fx.SendAsync("s@remote.test", ["victim@" + d], subject: "to the gateway host");
        var deferred = await fx.WaitForLogAsync(d, e => e["event"] == "deferred", "the attempt deferred", TimeSpan.FromSeconds(20));

        var log = await fx.LogAsync(d);
        var attempts = log.Where(e => e["event"] == "attempt").ToList();
        Assert.Contains(attempts, e => e["host"] == $"v4.{d}[127.0.0.61]:{sink.Port}" && e.Values.Any(v => v.Contains("a loopback address", StringComparison.Ordinal)));
        Assert.Contains(attempts, e => e["host"] == $"v6.{d}[::ffff:127.0.0.61]:{sink.Port}" && e.Values.Any(v => v.Contains("a loopback address", StringComparison.Ordinal)));
        Assert.Equal(0, sink.Connections);
        Assert.Empty(sink.Messages);

        // Still queued, with the reason the operator and the tenant see.
        var queued = Assert.Single((await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages);
        var detail = await fx.Queue.GetQueuedMessageAsync(new GetQueuedMessageRequest { Domain = d, MessageId = queued.MessageId });
        Assert.Contains("Not connecting to", detail.ToString(), StringComparison.Ordinal);
        Assert.NotNull(deferred);
    }
}
