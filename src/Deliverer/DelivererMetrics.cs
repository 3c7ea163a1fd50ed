using Gateway.Core.Mail;
using System.Diagnostics.Metrics;
using Gateway.Core.Delivery;
using Gateway.Core.MessageLog;
using Gateway.Core.Telemetry;
using StackExchange.Redis;

namespace Gateway.Deliverer;

/// <summary>
/// The Deliverer's instruments (meter <c>Gateway.Deliverer</c>, docs/telemetry.md): intake connections, messages
/// and recipients; delivery outcomes per recipient; delivery latency (intake to delivered) and attempt duration;
/// deliveries running; the fleet-wide queue depth. Tag values are fixed strings, so recording allocates nothing.
/// </summary>
public sealed class DelivererMetrics : IGatewayInstruments
{
    public const string MeterName = "Gateway.Deliverer";

    private static readonly InstrumentAdvice<double> LatencyBuckets = new()
    {
        // From a fast local hand-off to the retry schedule's hours (requirements §6: 5 minutes, then backoff).
        HistogramBucketBoundaries = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400],
    };

    private readonly Counter<long> _connections;
    private readonly Counter<long> _messages;
    private readonly Counter<long> _recipients;
    private readonly Counter<long> _deliveries;
    private readonly Histogram<double> _latency;
    private readonly Histogram<double> _attempt;
    private readonly Counter<long> _attemptErrors;
    private QueueDepthSample? _depth;

    private readonly UpDownCounter<int> _inFlight;

    public DelivererMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        _connections = meter.CreateCounter<long>("gateway.deliverer.intake.connections", "{connection}",
            "SMTP intake connections, by result (accepted; untrusted: refused with 554 at connect).");
        _messages = meter.CreateCounter<long>("gateway.deliverer.intake.messages", "{message}",
            "Messages offered at the intake's end of DATA, by result (queued: 250 after Redis stored them; rejected: 5xx such as size or hop count; failed: 451, Redis unavailable).");
        _recipients = meter.CreateCounter<long>("gateway.deliverer.intake.recipients", "{recipient}",
            "RCPT commands at the intake, by result (accepted, no_domain: 554 NO-DOMAIN, try_later: 451 without a snapshot).");
        _deliveries = meter.CreateCounter<long>("gateway.deliverer.deliveries", "{recipient}",
            "Recipients after a delivery attempt, by outcome (delivered, deferred, bounced, expired) and direction (inbound, outbound).");
        _latency = meter.CreateHistogram("gateway.deliverer.delivery.latency", "s",
            "Time from intake to delivery of a recipient (queue time and retries included), by direction.", advice: LatencyBuckets);
        _attempt = meter.CreateHistogram("gateway.deliverer.attempt.duration", "s",
            "Time one delivery attempt of one message took (routing, DNS, SMTP to every host tried), by direction.", advice: LatencyBuckets);
        _attemptErrors = meter.CreateCounter<long>("gateway.deliverer.attempt.errors", "{error}",
            "Exceptions during delivery attempts turned into outcomes (the recipients without an answer deferred, then retried with backoff), by stage (attempt, dsn) and direction.");
        _inFlight = meter.CreateUpDownCounter<int>("gateway.deliverer.in_flight", "{message}", "Messages this Deliverer is attempting now.");
        meter.CreateObservableGauge("gateway.queue.messages", () => Depth(d => d.Scheduled), "{message}",
            "Messages in the delivery queue, whole fleet (every Deliverer reports the same number: aggregate with max, not sum).");
        meter.CreateObservableGauge("gateway.queue.due", () => Depth(d => d.Due), "{message}",
            "Queued messages due now that no Deliverer holds yet (backlog), whole fleet.");
    }

    public void Connection(bool trusted) => Connection(trusted ? "accepted" : "untrusted");

    /// <summary><paramref name="result"/>: <c>accepted</c>, <c>untrusted</c> or <c>busy</c> (refused with 421 at the session cap).</summary>
    public void Connection(string result) => _connections.Add(1, Tag("result", result));

    /// <summary><paramref name="result"/>: <c>queued</c>, <c>rejected</c> or <c>failed</c>.</summary>
    public void Message(string result) => _messages.Add(1, Tag("result", result));

    /// <summary><paramref name="result"/>: <c>accepted</c>, <c>no_domain</c> or <c>try_later</c>.</summary>
    public void Recipient(string result) => _recipients.Add(1, Tag("result", result));

    /// <summary><paramref name="outcome"/>: <c>delivered</c>, <c>deferred</c>, <c>bounced</c> or <c>expired</c>.</summary>
    public void Delivery(string outcome, Direction direction) => _deliveries.Add(1, Tag("outcome", outcome), Tag("direction", DirectionText.Of(direction)));

    public void Delivered(Direction direction, TimeSpan sinceIntake) => _latency.Record(Math.Max(0, sinceIntake.TotalSeconds), Tag("direction", DirectionText.Of(direction)));

    public void Attempt(Direction direction, TimeSpan elapsed) => _attempt.Record(elapsed.TotalSeconds, Tag("direction", DirectionText.Of(direction)));

    /// <summary><paramref name="stage"/>: <c>attempt</c> (routing, DNS, SMTP) or <c>dsn</c> (building or queueing a DSN).</summary>
    public void AttemptError(Direction direction, string stage) => _attemptErrors.Add(1, Tag("stage", stage), Tag("direction", DirectionText.Of(direction)));

    /// <summary>A delivery started (+1) or ended (-1).</summary>
    public void InFlight(int delta) => _inFlight.Add(delta);

    internal void SetDepth(QueueDepthSample? sample) => _depth = sample;

    // Nothing is reported until the first sample (and after Redis failed): a stale number would look healthy.
    private IEnumerable<Measurement<long>> Depth(Func<QueueDepthSample, long> pick) =>
        _depth is { } d ? [new Measurement<long>(pick(d))] : [];


    private static KeyValuePair<string, object?> Tag(string key, string value) => new(key, value);
}

/// <summary>Samples the queue depth for <see cref="DelivererMetrics"/> every <see cref="DelivererOptions.QueueSampleInterval"/>.</summary>
public sealed partial class QueueDepthSampler(QueueDepth depth, DelivererMetrics metrics, DelivererOptions options, TimeProvider clock,
    ILogger<QueueDepthSampler> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var failed = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                metrics.SetDepth(await depth.ReadAsync().ConfigureAwait(false));
                failed = false;
            }
            catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
            {
                metrics.SetDepth(null);
                if (!failed)
                {
                    LogSampleFailed(logger, e.Message);
                }

                failed = true;
            }

            await Task.Delay(options.QueueSampleInterval, clock, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    [LoggerMessage(EventId = 1400, Level = LogLevel.Warning, Message = "Queue depth not sampled (gateway.queue.* not reported until Redis answers): {Reason}")]
    private static partial void LogSampleFailed(ILogger logger, string reason);
}
