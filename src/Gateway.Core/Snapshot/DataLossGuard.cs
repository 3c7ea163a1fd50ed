using System.Globalization;
using Gateway.Core.Storage;

namespace Gateway.Core.Snapshot;

/// <summary>Why and since when a program keeps its last good snapshot instead of the state Redis shows.</summary>
/// <param name="HeldEpoch">The epoch of the snapshot that is kept: an acceptance must name another.</param>
public sealed record SnapshotHold(string Reason, DateTimeOffset Since, string? HeldEpoch);

/// <summary>
/// requirements §4 rule 5 and §8: data loss is not a decision. A config version that goes backwards, a lineage id
/// (<see cref="RedisKeys.ConfigEpoch"/>) that changes or vanishes, or a full load that would drop a large share of
/// the domains at once is what Redis losing data looks like (FLUSHALL, a restart without persistence, a restore from
/// an old file); the program keeps deciding from its last good snapshot until an operator accepts the new state.
/// </summary>
public static class DataLossGuard
{
    /// <summary>The reason the stored lineage looks like data loss relative to what the snapshot applied, or null.</summary>
    public static string? CheckLineage(long appliedVersion, string? appliedEpoch, ConfigLineage current)
    {
        if (appliedEpoch is not null && current.Epoch != appliedEpoch)
        {
            return current.Epoch is null
                ? string.Create(CultureInfo.InvariantCulture, $"the config lineage id vanished (config version {current.Version}, snapshot at {appliedVersion})")
                : string.Create(CultureInfo.InvariantCulture, $"the config lineage id changed (config version {current.Version}, snapshot at {appliedVersion})");
        }

        return current.Version < appliedVersion
            ? string.Create(CultureInfo.InvariantCulture, $"the config version went back from {appliedVersion} to {current.Version}")
            : null;
    }

    /// <summary>
    /// The reason a full load of <paramref name="incoming"/> domains replacing <paramref name="loaded"/> is a sharp
    /// drop (more than <paramref name="percent"/> % and at least <paramref name="minimum"/> domains gone), or null.
    /// </summary>
    public static string? CheckDrop(int loaded, int incoming, int percent, int minimum)
    {
        var gone = loaded - incoming;
        return gone >= Math.Max(minimum, 1) && gone * 100L > (long)loaded * percent
            ? string.Create(CultureInfo.InvariantCulture, $"a full load would drop {gone} of {loaded} domains at once")
            : null;
    }

    /// <summary>
    /// True when the operator accepted the stored lineage after the snapshot's: the acceptance names the current
    /// epoch, and that epoch is not the one the program holds on to.
    /// </summary>
    public static bool IsAccepted(ConfigAcceptance? accepted, ConfigLineage current, string? heldEpoch) =>
        accepted is not null && current.Epoch is not null && accepted.Epoch == current.Epoch && accepted.Epoch != heldEpoch;
}
