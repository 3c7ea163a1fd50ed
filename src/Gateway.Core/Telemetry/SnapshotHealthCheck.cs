using Gateway.Core.Snapshot;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Gateway.Core.Telemetry;

/// <summary>
/// The snapshot as health: unhealthy before the first load (the program answers "try later", requirements §4.5),
/// degraded while it has not agreed with Redis for longer than <see cref="StaleAfter"/> (it keeps deciding from
/// the last configuration it has, but changes are not arriving), unhealthy while it holds its last good snapshot after
/// suspected data loss (<see cref="SnapshotHold"/>), healthy otherwise.
/// </summary>
public sealed class SnapshotHealthCheck(ConfigSnapshot snapshot, GatewayOptions options, TimeProvider clock) : IHealthCheck
{
    /// <summary>Five reconcile intervals, at least 5 seconds: the snapshot re-checks its version every interval.</summary>
    public TimeSpan StaleAfter => TimeSpan.FromTicks(Math.Max(options.SnapshotReconcileInterval.Ticks * 5, TimeSpan.FromSeconds(5).Ticks));

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!snapshot.IsLoaded && snapshot.Hold is { } atStart)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy(
                $"no configuration loaded since {atStart.Since:O}, answering 'try later': {atStart.Reason}; " +
                "check Redis, then accept the stored state with 'gatewayctl config accept'"));
        }

        if (!snapshot.IsLoaded)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("configuration snapshot not loaded yet: answering 'try later'"));
        }

        if (snapshot.Hold is { } hold)
        {
            // requirements §4 rule 5: the program still decides from its last good snapshot, but an operator must look.
            return Task.FromResult(HealthCheckResult.Unhealthy(
                $"holding the last good snapshot ({snapshot.Count} domains at config version {snapshot.Version}) since {hold.Since:O}: {hold.Reason}; " +
                "check Redis, then accept the stored state with 'gatewayctl config accept'"));
        }

        var age = clock.GetUtcNow() - snapshot.SyncedAt;
        var description = $"{snapshot.Count} domains at config version {snapshot.Version}, synced {age.TotalSeconds:F1} s ago";
        return Task.FromResult(age > StaleAfter
            ? HealthCheckResult.Degraded("snapshot stale (Redis unreachable?): " + description)
            : HealthCheckResult.Healthy(description));
    }
}
