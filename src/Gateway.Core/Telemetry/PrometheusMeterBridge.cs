using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Prometheus;

namespace Gateway.Core.Telemetry;

/// <summary>
/// Publishes this host's <c>gateway.*</c> instruments (created through its <see cref="IMeterFactory"/>) in a
/// prometheus-net <see cref="CollectorRegistry"/>, which <c>/metrics</c> serves as Prometheus text.
/// <para>
/// Why not prometheus-net's own <c>MeterAdapter</c>: it names every series <c>&lt;meter&gt;_&lt;instrument&gt;</c>
/// (<c>gateway_policydaemon_gateway_policy_decisions</c>), exports counters as gauges (so <c>rate()</c> and
/// promtool complain), and drops a series that did not change for five minutes (a quiet counter vanishes and comes
/// back from zero). This bridge keeps the instrument's own name and type instead:
/// </para>
/// <list type="bullet">
/// <item>name: the instrument name with dots as underscores, plus the unit (<c>s</c> → <c>_seconds</c>,
/// <c>By</c> → <c>_bytes</c>; units in braces such as <c>{message}</c> are annotations and add nothing), plus
/// <c>_total</c> for counters (Prometheus naming conventions);</item>
/// <item>Counter / ObservableCounter → counter; Histogram → histogram (buckets from the instrument's advice);
/// ObservableGauge, UpDownCounter, ObservableUpDownCounter → gauge;</item>
/// <item>labels: the tag keys of the instrument's first measurement (an instrument always records the same keys);
/// a missing key is exported as an empty value, an unknown one is ignored.</item>
/// </list>
/// Only instruments of this host's meter factory are taken (<see cref="Meter.Scope"/>), so several programs hosted
/// in one process (the tests) each export their own numbers.
/// </summary>
public sealed class PrometheusMeterBridge : IDisposable
{
    /// <summary>Seconds, for latencies from a millisecond to an hour (delivery latency includes queue time).</summary>
    public static readonly double[] DefaultSecondsBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

    private readonly MeterListener _listener = new();
    private readonly IMetricFactory _metrics;
    private volatile bool _disposed;

    public PrometheusMeterBridge(IMeterFactory meterFactory, CollectorRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        ArgumentNullException.ThrowIfNull(registry);
        _metrics = Metrics.WithCustomRegistry(registry);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, meterFactory) && instrument.Name.StartsWith("gateway.", StringComparison.Ordinal))
            {
                listener.EnableMeasurementEvents(instrument, new Exported(instrument, _metrics));
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, state) => ((Exported)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<int>((_, value, tags, state) => ((Exported)state!).Record(value, tags));
        _listener.SetMeasurementEventCallback<double>((_, value, tags, state) => ((Exported)state!).Record(value, tags));
        _listener.Start();
        // Observable instruments (gauges) are read right before each scrape.
        registry.AddBeforeCollectCallback(() =>
        {
            if (!_disposed)
            {
                _listener.RecordObservableInstruments();
            }
        });
    }

    /// <summary>The Prometheus name of an instrument (see the class summary).</summary>
    public static string PrometheusName(Instrument instrument)
    {
        ArgumentNullException.ThrowIfNull(instrument);
        var name = instrument.Name.Replace('.', '_').Replace('-', '_');
        var unit = instrument.Unit switch
        {
            "s" => "_seconds",
            "ms" => "_milliseconds",
            "By" => "_bytes",
            _ => string.Empty,
        };
        if (unit.Length > 0 && !name.EndsWith(unit, StringComparison.Ordinal))
        {
            name += unit;
        }

        return IsCounter(instrument) && !name.EndsWith("_total", StringComparison.Ordinal) ? name + "_total" : name;
    }

    public void Dispose()
    {
        _disposed = true;
        _listener.Dispose();
    }

    private static bool IsCounter(Instrument i)
    {
        var t = i.GetType().GetGenericTypeDefinition();
        return t == typeof(Counter<>) || t == typeof(ObservableCounter<>);
    }

    private enum Kind
    {
        Counter,
        CumulativeCounter,
        Histogram,
        Gauge,
        GaugeDelta,
    }

    /// <summary>Up to four label values, compared by value; our instruments have at most three tags.</summary>
    private readonly record struct LabelKey(string? A, string? B, string? C, string? D);

    /// <summary>One instrument and its Prometheus collector, created at the first measurement (when the tag keys are known).</summary>
    private sealed class Exported(Instrument instrument, IMetricFactory metrics)
    {
        private readonly Kind _kind = KindOf(instrument);
        private readonly ConcurrentDictionary<LabelKey, object> _children = new();
        private readonly Lock _lock = new();
        private string[]? _labels;
        private Collector? _collector;

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            try
            {
                var labels = _labels ?? Create(tags);
                if (labels.Length > 4)
                {
                    return; // not ours: every gateway instrument has at most four tags
                }

                var key = new LabelKey(Value(labels, 0, tags), Value(labels, 1, tags), Value(labels, 2, tags), Value(labels, 3, tags));
                if (!_children.TryGetValue(key, out var child))
                {
                    child = _children.GetOrAdd(key, k => Child(k, labels.Length));
                }

                switch (_kind)
                {
                    case Kind.Counter:
                        if (value > 0)
                        {
                            ((Counter.Child)child).Inc(value);
                        }

                        break;
                    case Kind.CumulativeCounter:
                        ((Counter.Child)child).IncTo(value);
                        break;
                    case Kind.Histogram:
                        ((Histogram.Child)child).Observe(value);
                        break;
                    case Kind.Gauge:
                        ((Gauge.Child)child).Set(value);
                        break;
                    case Kind.GaugeDelta:
                        ((Gauge.Child)child).Inc(value);
                        break;
                }
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException)
            {
                // A measurement that does not fit its series (e.g. a tag value Prometheus cannot take) is dropped:
                // telemetry must never break the operation that records it.
            }
        }

        private static string? Value(string[] labels, int i, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            if (i >= labels.Length)
            {
                return null;
            }

            foreach (var t in tags)
            {
                if (string.Equals(t.Key, labels[i], StringComparison.Ordinal))
                {
                    return t.Value as string ?? t.Value?.ToString() ?? string.Empty;
                }
            }

            return string.Empty;
        }

        private string[] Create(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var keys = new string[tags.Length];
            for (var i = 0; i < tags.Length; i++)
            {
                keys[i] = tags[i].Key;
            }

            Array.Sort(keys, StringComparer.Ordinal);
            lock (_lock)
            {
                if (_labels is not null)
                {
                    return _labels;
                }

                var name = PrometheusName(instrument);
                var help = string.IsNullOrEmpty(instrument.Description) ? instrument.Name : instrument.Description;
                var labelNames = keys.Select(k => k.Replace('.', '_')).ToArray();
                _collector = _kind switch
                {
                    Kind.Counter or Kind.CumulativeCounter => metrics.CreateCounter(name, help, labelNames),
                    Kind.Histogram => metrics.CreateHistogram(name, help, labelNames, new HistogramConfiguration { Buckets = Buckets(instrument) }),
                    _ => metrics.CreateGauge(name, help, labelNames),
                };
                _labels = keys;
                return keys;
            }
        }

        private object Child(LabelKey key, int count)
        {
            var values = new[] { key.A, key.B, key.C, key.D }.Take(count).Select(v => v ?? string.Empty).ToArray();
            return _collector switch
            {
                Counter c => c.WithLabels(values),
                Histogram h => h.WithLabels(values),
                Gauge g => g.WithLabels(values),
                _ => throw new InvalidOperationException("no collector"),
            };
        }

        private static Kind KindOf(Instrument i)
        {
            var t = i.GetType().GetGenericTypeDefinition();
            return t == typeof(Counter<>) ? Kind.Counter
                : t == typeof(ObservableCounter<>) ? Kind.CumulativeCounter
                : t == typeof(Histogram<>) ? Kind.Histogram
                : t == typeof(UpDownCounter<>) ? Kind.GaugeDelta
                : Kind.Gauge;
        }

        private static double[] Buckets(Instrument i) =>
            (i as Histogram<double>)?.Advice?.HistogramBucketBoundaries?.ToArray()
            ?? (i as Histogram<long>)?.Advice?.HistogramBucketBoundaries?.Select(b => (double)b).ToArray()
            ?? (i.Unit == "s" ? DefaultSecondsBuckets : Histogram.ExponentialBuckets(1, 2, 16));
    }
}
