using System.Diagnostics.Metrics;
using Gateway.Core.MessageLog;

namespace Gateway.Core.Telemetry;

/// <summary>
/// The message log buffer of a program that posts events from its hot path (PolicyDaemon, Deliverer), meter
/// <c>Gateway.MessageLog</c>: how many events it had to drop because Redis did not take them fast enough (requirements
/// §7.4, §11.9: the log is bounded, and what it loses is counted).
/// </summary>
public sealed class MessageLogMetrics : IGatewayInstruments
{
    public const string MeterName = "Gateway.MessageLog";

    public MessageLogMetrics(IMeterFactory meterFactory, BufferedMessageLog log)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        ArgumentNullException.ThrowIfNull(log);
        var meter = meterFactory.Create(MeterName);
        meter.CreateObservableCounter("gateway.messagelog.dropped", () => log.Dropped, "{event}",
            "Message log events dropped because the in-memory buffer was full (Redis away or too slow): the oldest go first.");
    }
}
