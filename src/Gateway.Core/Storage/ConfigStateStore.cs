using System.Globalization;
using StackExchange.Redis;

namespace Gateway.Core.Storage;

/// <summary>The stored config version and lineage id (<see cref="RedisKeys.ConfigEpoch"/>; null before the first change).</summary>
public readonly record struct ConfigLineage(long Version, string? Epoch);

/// <summary>An operator's acceptance of the stored configuration after suspected data loss.</summary>
public sealed record ConfigAcceptance(string Epoch, long Version, long Domains, DateTimeOffset At, string By, string Reason);

/// <summary>A program instance holding its last good snapshot, as it last reported itself.</summary>
public sealed record HeldSnapshotReport(string Instance, DateTimeOffset Seen, DateTimeOffset Since, string Reason);

/// <summary>
/// requirements §4 rule 5 and §8, data loss is not a decision: what the PolicyDaemons and Deliverers need to tell a
/// loss of Redis data from a change, and what an operator uses to accept the new state. All keys are in the
/// <c>{cfg}</c> slot with the config version (docs/reliability.md, "Redis faults").
/// </summary>
public sealed class ConfigStateStore(IConnectionMultiplexer redis)
{
    // KEYS: epoch, version, registry, accepted, held. ARGV: new epoch, at (unix ms), by, reason, channel.
    // A new lineage id: every snapshot (held or not) sees its epoch change and reloads, and held ones find it accepted.
    private const string AcceptScript = """
        redis.call('SET', KEYS[1], ARGV[1])
        local v = tonumber(redis.call('GET', KEYS[2]) or '0')
        local n = redis.call('HLEN', KEYS[3])
        redis.call('HSET', KEYS[4], 'epoch', ARGV[1], 'version', v, 'domains', n, 'at', ARGV[2], 'by', ARGV[3], 'reason', ARGV[4])
        redis.call('DEL', KEYS[5])
        redis.call('PUBLISH', ARGV[5], v .. ' accept *')
        return {v, n}
        """;

    private IDatabase Db => redis.GetDatabase();

    /// <summary>The stored version and epoch, read together.</summary>
    public async Task<ConfigLineage> GetLineageAsync()
    {
        var values = await Db.StringGetAsync([RedisKeys.ConfigVersion, RedisKeys.ConfigEpoch]).ConfigureAwait(false);
        return new ConfigLineage(values[0].IsNull ? 0 : (long)values[0], values[1].IsNull ? null : values[1].ToString());
    }

    /// <summary>How many domains the registry holds.</summary>
    public Task<long> CountDomainsAsync() => Db.HashLengthAsync(RedisKeys.DomainRegistry);

    /// <summary>The last acceptance, or null.</summary>
    public async Task<ConfigAcceptance?> GetAcceptanceAsync()
    {
        var f = await Db.HashGetAsync(RedisKeys.ConfigAccepted, ["epoch", "version", "domains", "at", "by", "reason"]).ConfigureAwait(false);
        if (f[0].IsNull)
        {
            return null;
        }

        return new ConfigAcceptance(f[0].ToString(), (long)f[1], (long)f[2],
            DateTimeOffset.FromUnixTimeMilliseconds((long)f[3]), f[4].ToString(), f[5].ToString());
    }

    /// <summary>
    /// Accepts the configuration as it is stored now: gives it a new epoch (every program reloads it, a held one
    /// lets go of its last good snapshot), records who and why, and wakes the programs.
    /// </summary>
    public async Task<ConfigAcceptance> AcceptAsync(string by, string reason, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(by);
        ArgumentNullException.ThrowIfNull(reason);
        var epoch = Guid.NewGuid().ToString("N");
        var r = (RedisResult[])(await Db.ScriptEvaluateAsync(AcceptScript,
            [RedisKeys.ConfigEpoch, RedisKeys.ConfigVersion, RedisKeys.DomainRegistry, RedisKeys.ConfigAccepted, RedisKeys.ConfigHeld],
            [epoch, now.ToUnixTimeMilliseconds(), by, reason, RedisKeys.ConfigChannel.ToString()]).ConfigureAwait(false))!;
        return new ConfigAcceptance(epoch, (long)r[0], (long)r[1], DateTimeOffset.FromUnixTimeMilliseconds(now.ToUnixTimeMilliseconds()), by, reason);
    }

    /// <summary>Reports (again) that <paramref name="instance"/> holds its snapshot.</summary>
    public Task ReportHeldAsync(string instance, DateTimeOffset since, string reason, DateTimeOffset now) =>
        Db.HashSetAsync(RedisKeys.ConfigHeld, instance,
            string.Create(CultureInfo.InvariantCulture, $"{now.ToUnixTimeMilliseconds()}|{since.ToUnixTimeMilliseconds()}|{reason}"));

    /// <summary>Removes <paramref name="instance"/>'s report.</summary>
    public Task ClearHeldAsync(string instance) => Db.HashDeleteAsync(RedisKeys.ConfigHeld, instance);

    /// <summary>Instances that reported a hold within <paramref name="fresh"/> (older reports are of programs that stopped).</summary>
    public async Task<IReadOnlyList<HeldSnapshotReport>> ListHeldAsync(DateTimeOffset now, TimeSpan fresh)
    {
        var list = new List<HeldSnapshotReport>();
        foreach (var e in await Db.HashGetAllAsync(RedisKeys.ConfigHeld).ConfigureAwait(false))
        {
            var parts = e.Value.ToString().Split('|', 3);
            if (parts.Length == 3 &&
                long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var seen) &&
                long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var since) &&
                now - DateTimeOffset.FromUnixTimeMilliseconds(seen) <= fresh)
            {
                list.Add(new HeldSnapshotReport(e.Name.ToString(), DateTimeOffset.FromUnixTimeMilliseconds(seen), DateTimeOffset.FromUnixTimeMilliseconds(since), parts[2]));
            }
        }

        return list.OrderBy(h => h.Instance, StringComparer.Ordinal).ToList();
    }
}
