using StackExchange.Redis;

namespace Gateway.Core.Storage;

/// <summary>What happened to a domain's configuration.</summary>
public static class ConfigOps
{
    public const string Create = "create";
    public const string Update = "update";
    public const string Delete = "delete";
    public const string Verify = "verify";
}

/// <summary>One entry of the change feed.</summary>
public readonly record struct ConfigChange(long Version, string Op, string Domain);

/// <summary>
/// Announces saved configuration changes: bumps <see cref="RedisKeys.ConfigVersion"/>, appends to the
/// <see cref="RedisKeys.ConfigChanges"/> stream with the version as entry id, and publishes on
/// <see cref="RedisKeys.ConfigChannel"/>, atomically in one script (all keys in the <c>{cfg}</c> slot); the first change
/// also sets the lineage id <see cref="RedisKeys.ConfigEpoch"/> (data loss detection, docs/reliability.md).
/// Subscribers apply the message within milliseconds; a subscriber that missed one sees the version
/// move on its reconcile timer and reads the stream from its last applied version.
/// </summary>
public sealed class ConfigChangeFeed(IConnectionMultiplexer redis, GatewayOptions options)
{
    private const string PublishScript = """
        local v = redis.call('INCR', KEYS[1])
        redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], v .. '-0', 'd', ARGV[1], 'op', ARGV[2])
        redis.call('SETNX', KEYS[3], ARGV[5])
        redis.call('PUBLISH', ARGV[4], v .. ' ' .. ARGV[2] .. ' ' .. ARGV[1])
        if ARGV[6] ~= '' then redis.call('ZREM', KEYS[4], ARGV[6], '!' .. ARGV[6]) end
        return v
        """;

    // KEYS: pending. ARGV: intent. Scored with Redis's clock, so every process agrees on its age.
    private const string BeginScript = """
        local t = redis.call('TIME')
        redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
        return 1
        """;

    // KEYS: version, changes, epoch, pending. ARGV: stream length, channel, grace (ms), new epoch, batch, final (ms).
    // Announces intents older than the grace exactly as PublishScript would have. An intent announced for the first
    // time stays, marked with '!', scored so that it comes up again when it is `final` old: a save whose write landed
    // after the first announcement (a slow Redis, a stalled connection) and whose writer then died is announced then.
    // The second time it is forgotten.
    private const string AnnounceAbandonedScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local grace = tonumber(ARGV[3])
        local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - grace, 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[5]))
        for i = 1, #stale, 2 do
          local m = stale[i]
          local a = string.find(m, ' ', 1, true)
          local b = a and string.find(m, ' ', a + 1, true)
          if b then
            local op = string.sub(m, a + 1, b - 1)
            local d = string.sub(m, b + 1)
            local v = redis.call('INCR', KEYS[1])
            redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], v .. '-0', 'd', d, 'op', op)
            redis.call('SETNX', KEYS[3], ARGV[4])
            redis.call('PUBLISH', ARGV[2], v .. ' ' .. op .. ' ' .. d)
          end
          redis.call('ZREM', KEYS[4], m)
          if b and string.sub(m, 1, 1) ~= '!' then
            local began = tonumber(stale[i + 1])
            redis.call('ZADD', KEYS[4], began + tonumber(ARGV[6]) - grace, '!' .. m)
          end
        end
        return #stale / 2
        """;

    /// <summary>
    /// Records, before a domain's change is written in its own slot, that it is about to be announced (requirements §3:
    /// a saved change governs every decision within a second). A writer that dies between its write and
    /// <see cref="PublishAsync"/> leaves the intent behind; <see cref="AnnounceAbandonedAsync"/> announces it. Returns
    /// the intent, to pass to <see cref="PublishAsync"/> or <see cref="CancelAsync"/>.
    /// </summary>
    public async Task<string> BeginAsync(string domain, string op)
    {
        var intent = $"{Guid.NewGuid():N} {op} {domain}";
        await redis.GetDatabase().ScriptEvaluateAsync(BeginScript, [RedisKeys.ConfigPending], [intent]).ConfigureAwait(false);
        return intent;
    }

    /// <summary>Drops an intent whose write did not happen (refused); best effort: a left-over intent only costs one extra reload.</summary>
    public Task CancelAsync(string intent) => redis.GetDatabase().SortedSetRemoveAsync(RedisKeys.ConfigPending, intent);

    /// <summary>
    /// Announces the changes whose writer began more than <paramref name="grace"/> ago and never announced them (it
    /// died, or lost Redis, between the write and the announcement), and once more when they are
    /// <paramref name="final"/> old, for a write that landed after the first announcement (docs/reliability.md "Redis
    /// faults"). Any program may call it; the script is atomic, so each intent is announced at most twice. Returns how
    /// many were announced.
    /// </summary>
    public async Task<int> AnnounceAbandonedAsync(TimeSpan grace, TimeSpan final, int batch = 100)
    {
        var result = await redis.GetDatabase().ScriptEvaluateAsync(AnnounceAbandonedScript,
            [RedisKeys.ConfigVersion, RedisKeys.ConfigChanges, RedisKeys.ConfigEpoch, RedisKeys.ConfigPending],
            [options.ConfigChangeStreamLength, RedisKeys.ConfigChannel.ToString(), (long)grace.TotalMilliseconds, Guid.NewGuid().ToString("N"), batch, (long)Math.Max(final.TotalMilliseconds, grace.TotalMilliseconds)]).ConfigureAwait(false);
        return (int)result;
    }

    /// <summary>
    /// Records a change of <paramref name="domain"/> and returns the new config version; with the
    /// <paramref name="intent"/> of <see cref="BeginAsync"/>, forgets it in the same step.
    /// </summary>
    public async Task<long> PublishAsync(string domain, string op, string? intent = null)
    {
        var result = await redis.GetDatabase().ScriptEvaluateAsync(PublishScript,
            [RedisKeys.ConfigVersion, RedisKeys.ConfigChanges, RedisKeys.ConfigEpoch, RedisKeys.ConfigPending],
            [domain, op, options.ConfigChangeStreamLength, RedisKeys.ConfigChannel.ToString(), Guid.NewGuid().ToString("N"), intent ?? string.Empty]).ConfigureAwait(false);
        return (long)result;
    }

    /// <summary>The current config version (0 when nothing was ever saved).</summary>
    public async Task<long> GetVersionAsync()
    {
        var v = await redis.GetDatabase().StringGetAsync(RedisKeys.ConfigVersion).ConfigureAwait(false);
        return v.IsNull ? 0 : (long)v;
    }

    /// <summary>
    /// Changes after <paramref name="afterVersion"/>, oldest first, at most <paramref name="count"/>.
    /// </summary>
    public async Task<IReadOnlyList<ConfigChange>> ReadAfterAsync(long afterVersion, int count = 10_000)
    {
        var entries = await redis.GetDatabase().StreamRangeAsync(RedisKeys.ConfigChanges,
            minId: $"{afterVersion + 1}-0", maxId: "+", count: count).ConfigureAwait(false);
        var list = new List<ConfigChange>(entries.Length);
        foreach (var e in entries)
        {
            var id = e.Id.ToString();
            var version = long.Parse(id.AsSpan(0, id.IndexOf('-', StringComparison.Ordinal)), System.Globalization.CultureInfo.InvariantCulture);
            list.Add(new ConfigChange(version, e["op"].ToString(), e["d"].ToString()));
        }

        return list;
    }

    /// <summary>Parses a pub/sub message <c>"&lt;version&gt; &lt;op&gt; &lt;domain&gt;"</c>.</summary>
    public static bool TryParseMessage(string? message, out ConfigChange change)
    {
        change = default;
        if (message is null)
        {
            return false;
        }

        var parts = message.Split(' ', 3);
        if (parts.Length != 3 || !long.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v))
        {
            return false;
        }

        change = new ConfigChange(v, parts[1], parts[2]);
        return true;
    }
}
