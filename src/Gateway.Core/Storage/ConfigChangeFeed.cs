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
        return v
        """;

    /// <summary>Records a change of <paramref name="domain"/> and returns the new config version.</summary>
    public async Task<long> PublishAsync(string domain, string op)
    {
        var result = await redis.GetDatabase().ScriptEvaluateAsync(PublishScript,
            [RedisKeys.ConfigVersion, RedisKeys.ConfigChanges, RedisKeys.ConfigEpoch],
            [domain, op, options.ConfigChangeStreamLength, RedisKeys.ConfigChannel.ToString(), Guid.NewGuid().ToString("N")]).ConfigureAwait(false);
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
