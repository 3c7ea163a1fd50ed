using System.Net;
using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>The Deliverer's /metrics and /healthz on its HTTP listener, scraped over HTTP as Prometheus would.</summary>
[Trait("Kind", "Integration")]
public sealed class TelemetryTests(GatewayFixture fx) : IClassFixture<GatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Metrics_IntakeDeliveriesLatencyAndQueue_MoveWithMail()
    {
        var sink = SmtpSink.Start("127.0.0.6");
        await using var _ = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("tel"), ("*@{d}", sink.Host, sink.Port, 10));
        var before = await Scrape.GetAsync(fx.DelivererHttp!);

        await fx.SendAsync("s@remote.test", ["a@" + d, "b@" + d], "metrics");
        await Assert.ThrowsAnyAsync<MailKit.Net.Smtp.SmtpCommandException>(() => fx.SendAsync("s@remote.test", ["x@unmanaged-tel.example"]));
        await sink.WaitForMessagesAsync(1, Wait);

        Scrape after = before;
        await Eventually.WaitAsync(async () =>
        {
            after = await Scrape.GetAsync(fx.DelivererHttp!);
            return after.Value("gateway_deliverer_deliveries_total", ("outcome", "delivered"), ("direction", "inbound")) >=
                   before.Value("gateway_deliverer_deliveries_total", ("outcome", "delivered"), ("direction", "inbound")) + 2;
        }, Wait, "two delivered recipients counted");

        Assert.Equal("counter", after.TypeOf("gateway_deliverer_deliveries_total"));
        Assert.True(after.Value("gateway_deliverer_intake_messages_total", ("result", "queued")) >= before.Value("gateway_deliverer_intake_messages_total", ("result", "queued")) + 1);
        Assert.True(after.Value("gateway_deliverer_intake_recipients_total", ("result", "accepted")) >= before.Value("gateway_deliverer_intake_recipients_total", ("result", "accepted")) + 2);
        Assert.True(after.Value("gateway_deliverer_intake_recipients_total", ("result", "no_domain")) >= before.Value("gateway_deliverer_intake_recipients_total", ("result", "no_domain")) + 1);
        Assert.True(after.Value("gateway_deliverer_intake_connections_total", ("result", "accepted")) >= before.Value("gateway_deliverer_intake_connections_total", ("result", "accepted")) + 2);

        Assert.Equal("histogram", after.TypeOf("gateway_deliverer_delivery_latency_seconds"));
        Assert.True(after.Value("gateway_deliverer_delivery_latency_seconds_count", ("direction", "inbound")) >=
                    before.Value("gateway_deliverer_delivery_latency_seconds_count", ("direction", "inbound")) + 2);
        Assert.True(after.Value("gateway_deliverer_attempt_duration_seconds_count", ("direction", "inbound")) >=
                    before.Value("gateway_deliverer_attempt_duration_seconds_count", ("direction", "inbound")) + 1);

        Assert.True(after.Has("gateway_deliverer_in_flight"));
        Assert.Equal("counter", after.TypeOf("gateway_messagelog_dropped_total"));
        Assert.Equal(0, after.Value("gateway_messagelog_dropped_total"));
        Assert.Equal(1, after.Value("gateway_snapshot_loaded"));
        Assert.InRange(after.Value("gateway_snapshot_age_seconds"), 0, 10);
    }

    [Fact]
    public async Task Metrics_QueueDepth_RisesWhileServerIsDown_FallsAfterDelivery()
    {
        var sink = SmtpSink.Start("127.0.0.7");
        await using var _ = sink;
        sink.Refuse();
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("telq"), ("*@{d}", sink.Host, sink.Port, 10));
        await fx.SendAsync("s@remote.test", ["q@" + d], "queued");

        // Deferred (server refuses): the message waits in the queue, counted fleet-wide.
        await fx.WaitForLogAsync(d, e => e["event"] == "deferred", "deferred");
        Scrape waiting = null!;
        await Eventually.WaitAsync(async () => (waiting = await Scrape.GetAsync(fx.DelivererHttp!)).Value("gateway_queue_messages") >= 1, Wait, "queue depth >= 1");
        Assert.True(waiting.Value("gateway_deliverer_deliveries_total", ("outcome", "deferred")) >= 1);
        Assert.Equal("gauge", waiting.TypeOf("gateway_queue_messages"));
        Assert.True(waiting.Has("gateway_queue_due"));

        // The server comes back; the operator retries now; the queue empties.
        sink.Listen();
        var queued = await fx.Queue.ListQueueAsync(new Gateway.Api.V1.ListQueueRequest { Domain = d });
        await fx.Queue.RetryNowAsync(new Gateway.Api.V1.RetryNowRequest { Domain = d, MessageId = queued.Messages[0].MessageId });
        await sink.WaitForMessagesAsync(1, Wait);
        await Eventually.WaitAsync(async () =>
            (await Scrape.GetAsync(fx.DelivererHttp!)).Value("gateway_queue_messages") < waiting.Value("gateway_queue_messages"), Wait, "queue depth falls");
    }

    [Fact]
    public async Task Healthz_RedisAndSnapshot_200Healthy()
    {
        using var http = new HttpClient { BaseAddress = new Uri(fx.DelivererHttp!) };
        using var r = await http.GetAsync(new Uri("/healthz", UriKind.Relative));
        var body = await r.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Contains("redis: Healthy", body, StringComparison.Ordinal);
        Assert.Contains("snapshot: Healthy", body, StringComparison.Ordinal);
    }
}
