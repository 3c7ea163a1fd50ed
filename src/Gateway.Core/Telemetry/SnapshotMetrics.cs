using System.Diagnostics.Metrics;
using Gateway.Core.Snapshot;

namespace Gateway.Core.Telemetry;

/// <summary>
/// Gauges of a program's configuration snapshot (PolicyDaemon, Deliverer), meter <c>Gateway.Snapshot</c>:
/// how old it is (requirements §3: a saved change must govern decisions within a second, so an age that keeps growing
/// means changes are not arriving), how many domains it holds, and whether it was ever loaded.
/// </summary>
public sealed class SnapshotMetrics : IGatewayInstruments
{
    public const string MeterName = "Gateway.Snapshot";

    public SnapshotMetrics(IMeterFactory meterFactory, ConfigSnapshot snapshot, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(clock);
        var started = clock.GetUtcNow();
        var meter = meterFactory.Create(MeterName);
        meter.CreateObservableGauge("gateway.snapshot.age", () => Age(snapshot, clock.GetUtcNow(), started).TotalSeconds, "s",
            "Time since the snapshot last agreed with Redis (since the start while it was never loaded).");
        meter.CreateObservableGauge("gateway.snapshot.domains", () => snapshot.Count, "{domain}", "Managed domains in the snapshot.");
        meter.CreateObservableGauge("gateway.snapshot.loaded", () => snapshot.IsLoaded ? 1 : 0, "{bool}",
            "1 once the first full load succeeded; 0 while the program answers 'try later'.");
        meter.CreateObservableGauge("gateway.snapshot.version", () => snapshot.Version, "{version}", "The config version the snapshot reflects.");
    }

    /// <summary>Time since the snapshot last agreed with Redis, or since <paramref name="started"/> if it never did.</summary>
    public static TimeSpan Age(ConfigSnapshot snapshot, DateTimeOffset now, DateTimeOffset started)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var since = snapshot.IsLoaded ? snapshot.SyncedAt : started;
        return now > since ? now - since : TimeSpan.Zero;
    }
}
