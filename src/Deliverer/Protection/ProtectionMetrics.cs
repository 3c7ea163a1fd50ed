using System.Diagnostics.Metrics;
using Gateway.Core.Mail;
using Gateway.Core.Telemetry;

namespace Gateway.Deliverer.Protection;

/// <summary>
/// Protection instruments of the Deliverer (meter <c>Gateway.Protection</c>, docs/telemetry.md): verdicts per owning
/// domain copy, calls to each engine by result, scan latency per engine and for the whole scan.
/// </summary>
public sealed class ProtectionMetrics : IGatewayInstruments
{
    public const string MeterName = "Gateway.Protection";

    private static readonly InstrumentAdvice<double> Buckets = new()
    {
        HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    };

    private readonly Counter<long> _verdicts;
    private readonly Counter<long> _calls;
    private readonly Histogram<double> _duration;

    public ProtectionMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        _verdicts = meter.CreateCounter<long>("gateway.protection.verdicts", "{copy}",
            "Scanned messages per owning domain copy, by action (deliver, tag, quarantine, reject, tempfail), reason (clean, spam, malware, dmarc, spoofing, scanner_failure) and direction.");
        _calls = meter.CreateCounter<long>("gateway.protection.scanner.calls", "{call}",
            "Calls to a scanning engine, by engine (rspamd, clamd) and result (ok, timeout, unavailable, error).");
        _duration = meter.CreateHistogram("gateway.protection.scan.duration", "s",
            "Scan latency by engine (rspamd, clamd; both run at once) and for the whole scan (engine=all).", advice: Buckets);
    }

    public void Verdict(ScanAction action, string reason, Direction direction) =>
        _verdicts.Add(1, Tag("action", Action(action)), Tag("reason", reason), Tag("direction", DirectionText.Of(direction)));

    /// <param name="failure">Null when the engine answered; else one of <see cref="ScannerFailureReasons"/>.</param>
    public void EngineCall(string engine, TimeSpan elapsed, string? failure)
    {
        _calls.Add(1, Tag("engine", engine), Tag("result", failure ?? "ok"));
        _duration.Record(elapsed.TotalSeconds, Tag("engine", engine));
    }

    public void Scanned(TimeSpan elapsed) => _duration.Record(elapsed.TotalSeconds, Tag("engine", "all"));

    private static string Action(ScanAction a) => a switch
    {
        ScanAction.Deliver => "deliver",
        ScanAction.Tag => "tag",
        ScanAction.Quarantine => "quarantine",
        ScanAction.Reject => "reject",
        _ => "tempfail",
    };

    private static KeyValuePair<string, object?> Tag(string key, string value) => new(key, value);
}
