using System.Diagnostics.Metrics;
using Gateway.Core.Telemetry;
using Gateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using Prometheus;

namespace Gateway.Core.Tests;

/// <summary>The bridge from IMeterFactory instruments to Prometheus text: names, types, labels, one host's instruments only.</summary>
[Trait("Kind", "Unit")]
public sealed class PrometheusMeterBridgeTests
{
    private static async Task<Scrape> CollectAsync(CollectorRegistry registry)
    {
        using var stream = new MemoryStream();
        await registry.CollectAndExportAsTextAsync(stream);
        return Scrape.Parse(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }

    private static ServiceProvider Host() => new ServiceCollection().AddMetrics().BuildServiceProvider();

    [Fact]
    public async Task Bridge_CounterHistogramGauges_NamedTypedAndLabelled()
    {
        await using var host = Host();
        var factory = host.GetRequiredService<IMeterFactory>();
        var registry = Metrics.NewCustomRegistry();
        using var bridge = new PrometheusMeterBridge(factory, registry);
        var meter = factory.Create("Gateway.Test");
        var counter = meter.CreateCounter<long>("gateway.test.things", "{thing}", "Things done.");
        var histogram = meter.CreateHistogram("gateway.test.duration", "s", "How long.", advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 1] });
        var upDown = meter.CreateUpDownCounter<int>("gateway.test.running", "{thing}");
        var level = 7.5;
        meter.CreateObservableGauge("gateway.test.level", () => level, "By");
        meter.CreateCounter<long>("other.metric").Add(1);

        // Tag order differs between calls: the series are the same.
        counter.Add(2, new("result", "ok"), new("direction", "inbound"));
        counter.Add(3, new("direction", "inbound"), new("result", "ok"));
        counter.Add(1, new("result", "failed"), new("direction", "outbound"));
        histogram.Record(0.5);
        histogram.Record(2);
        upDown.Add(3);
        upDown.Add(-1);

        var scrape = await CollectAsync(registry);
        Assert.Equal("counter", scrape.TypeOf("gateway_test_things_total"));
        Assert.Equal(5, scrape.Value("gateway_test_things_total", ("result", "ok"), ("direction", "inbound")));
        Assert.Equal(1, scrape.Value("gateway_test_things_total", ("result", "failed")));
        Assert.Equal("histogram", scrape.TypeOf("gateway_test_duration_seconds"));
        Assert.Equal(0, scrape.Value("gateway_test_duration_seconds_bucket", ("le", "0.1")));
        Assert.Equal(1, scrape.Value("gateway_test_duration_seconds_bucket", ("le", "1")));
        Assert.Equal(2, scrape.Value("gateway_test_duration_seconds_count"));
        Assert.Equal(2.5, scrape.Value("gateway_test_duration_seconds_sum"));
        Assert.Equal(2, scrape.Value("gateway_test_running"));
        Assert.Equal("gauge", scrape.TypeOf("gateway_test_level_bytes"));
        Assert.Equal(7.5, scrape.Value("gateway_test_level_bytes"));
        Assert.False(scrape.Has("other_metric_total"), "only gateway.* instruments are exported");

        level = 9;
        Assert.Equal(9, (await CollectAsync(registry)).Value("gateway_test_level_bytes"));
    }

    [Fact]
    public async Task Bridge_TwoHostsInOneProcess_EachExportsOnlyItsOwn()
    {
        await using var a = Host();
        await using var b = Host();
        var registryA = Metrics.NewCustomRegistry();
        using var bridgeA = new PrometheusMeterBridge(a.GetRequiredService<IMeterFactory>(), registryA);
        var counterA = a.GetRequiredService<IMeterFactory>().Create("Gateway.Same").CreateCounter<long>("gateway.same.count");
        var counterB = b.GetRequiredService<IMeterFactory>().Create("Gateway.Same").CreateCounter<long>("gateway.same.count");

        counterA.Add(1);
        counterB.Add(10);

        Assert.Equal(1, (await CollectAsync(registryA)).Value("gateway_same_count_total"));
    }

    [Theory]
    [InlineData("gateway.policy.decisions", "{request}", "counter", "gateway_policy_decisions_total")]
    [InlineData("gateway.deliverer.delivery.latency", "s", "histogram", "gateway_deliverer_delivery_latency_seconds")]
    [InlineData("gateway.snapshot.age", "s", "gauge", "gateway_snapshot_age_seconds")]
    [InlineData("gateway.queue.messages", "{message}", "gauge", "gateway_queue_messages")]
    [InlineData("gateway.x.sent_total", null, "counter", "gateway_x_sent_total")]
    public void PrometheusName_UnitAndTotalSuffixes(string name, string? unit, string kind, string expected)
    {
        using var meter = new Meter("Gateway.Names");
        Instrument instrument = kind switch
        {
            "counter" => meter.CreateCounter<long>(name, unit),
            "histogram" => meter.CreateHistogram<double>(name, unit),
            _ => meter.CreateObservableGauge(name, () => 1.0, unit),
        };
        Assert.Equal(expected, PrometheusMeterBridge.PrometheusName(instrument));
    }
}
