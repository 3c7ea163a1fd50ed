using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using Gateway.Core.Storage;
using StackExchange.Redis;

namespace Gateway.Deliverer.Delivery;

/// <summary>
/// How many deliveries of this process may run to one destination at once (requirements §11.6; Postfix:
/// <c>default_destination_concurrency_limit</c> = 20). A destination is the managed domain of an inbound route or the
/// recipient domain of outbound mail. A batch whose destination is full is not attempted: its message comes back
/// shortly (<see cref="DelivererOptions.BusyRetryDelay"/>) without an attempt counted, so one slow destination holds at
/// most this many of the process's delivery slots.
/// </summary>
public sealed class DestinationLimiter(DelivererOptions options)
{
    private readonly ConcurrentDictionary<string, int> _running = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Takes a slot of <paramref name="destination"/>; false when it has <see cref="DelivererOptions.MaxConcurrentPerDestination"/> running.</summary>
    public bool TryEnter(string destination)
    {
        while (true)
        {
            var n = _running.GetValueOrDefault(destination);
            if (n >= options.MaxConcurrentPerDestination)
            {
                return false;
            }

            if (n == 0 ? _running.TryAdd(destination, 1) : _running.TryUpdate(destination, n + 1, n))
            {
                return true;
            }
        }
    }

    /// <summary>Gives back a slot taken with <see cref="TryEnter"/>.</summary>
    public void Exit(string destination)
    {
        while (true)
        {
            var n = _running.GetValueOrDefault(destination);
            if (n <= 1 ? _running.TryRemove(new KeyValuePair<string, int>(destination, n)) : _running.TryUpdate(destination, n - 1, n))
            {
                return;
            }
        }
    }

    /// <summary>Deliveries running to <paramref name="destination"/> now.</summary>
    public int Running(string destination) => _running.GetValueOrDefault(destination);
}

/// <summary>
/// Addresses that did not answer in time (connect or greeting timeout), remembered for
/// <see cref="DelivererOptions.DeadHostTime"/> by every Deliverer of the fleet (requirements §11.6): while an address is
/// dead, no delivery connects to it; the next address of the route is tried at once, or the recipients are deferred.
/// A black hole that accepts TCP and never greets then costs one timeout per period, not one per message. Shared through
/// Redis (<see cref="RedisKeys.DeadHosts"/>: a sorted set of <c>ip:port</c> by the time they are dead until, and their
/// reasons), read into memory every second; the delivery path itself never waits for Redis.
/// </summary>
public sealed partial class DeadHosts(IConnectionMultiplexer redis, DelivererOptions options, TimeProvider clock, ILogger<DeadHosts> logger)
{
    // KEYS: hosts (zset), reasons (hash). ARGV: member, until (unix ms), reason. A later "until" wins.
    private const string MarkScript = """
        local known = redis.call('ZSCORE', KEYS[1], ARGV[1])
        if known and tonumber(known) >= tonumber(ARGV[2]) then return 0 end
        redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
        redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
        return 1
        """;

    // KEYS: hosts, reasons. ARGV: now. Drops what expired; returns {member, until, reason, ...} of the rest.
    private const string ReadScript = """
        local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
        for _, m in ipairs(gone) do redis.call('HDEL', KEYS[2], m) end
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
        local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 10000)
        local out = {}
        for i = 1, #live, 2 do
          table.insert(out, live[i]); table.insert(out, live[i + 1]); table.insert(out, redis.call('HGET', KEYS[2], live[i]) or '')
        end
        return out
        """;

    private volatile IReadOnlyDictionary<string, (DateTimeOffset Until, string Reason)> _shared = new Dictionary<string, (DateTimeOffset, string)>();
    private readonly ConcurrentDictionary<string, (DateTimeOffset Until, string Reason)> _local = new(StringComparer.Ordinal);

    /// <summary>Whether <paramref name="endpoint"/> is dead now, and why.</summary>
    public bool IsDead(IPEndPoint endpoint, out string reason)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        var key = Key(endpoint);
        var now = clock.GetUtcNow();
        if ((_local.TryGetValue(key, out var d) && d.Until > now) || (_shared.TryGetValue(key, out d) && d.Until > now))
        {
            reason = d.Reason;
            return true;
        }

        reason = string.Empty;
        return false;
    }

    /// <summary>Remembers <paramref name="endpoint"/> as dead here at once and for the fleet (best effort: Redis away only delays the sharing).</summary>
    public async Task MarkAsync(IPEndPoint endpoint, string reason)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (options.DeadHostTime <= TimeSpan.Zero)
        {
            return;
        }

        var key = Key(endpoint);
        var until = clock.GetUtcNow() + options.DeadHostTime;
        _local[key] = (until, reason);
        LogDead(logger, key, options.DeadHostTime, reason);
        try
        {
            await redis.GetDatabase().ScriptEvaluateAsync(MarkScript, [RedisKeys.DeadHosts, RedisKeys.DeadHostReasons],
                [key, until.ToUnixTimeMilliseconds(), reason]).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
        {
            LogShareFailed(logger, key, e.Message);
        }
    }

    /// <summary>Reads the fleet's dead addresses (the scheduler's housekeeping calls it every second).</summary>
    public async Task RefreshAsync()
    {
        var now = clock.GetUtcNow();
        var r = (RedisResult[]?)await redis.GetDatabase().ScriptEvaluateAsync(ReadScript, [RedisKeys.DeadHosts, RedisKeys.DeadHostReasons],
            [now.ToUnixTimeMilliseconds()]).ConfigureAwait(false) ?? [];
        var map = new Dictionary<string, (DateTimeOffset, string)>(r.Length / 3, StringComparer.Ordinal);
        for (var i = 0; i + 2 < r.Length; i += 3)
        {
            if (double.TryParse(r[i + 1].ToString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var ms))
            {
                map[r[i].ToString()] = (DateTimeOffset.FromUnixTimeMilliseconds((long)ms), r[i + 2].ToString());
            }
        }

        _shared = map;
        foreach (var (key, value) in _local)
        {
            if (value.Until <= now)
            {
                _local.TryRemove(new KeyValuePair<string, (DateTimeOffset, string)>(key, value));
            }
        }
    }

    private static string Key(IPEndPoint endpoint) =>
        (endpoint.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(endpoint.Address.MapToIPv4(), endpoint.Port) : endpoint).ToString();

    [LoggerMessage(EventId = 1210, Level = LogLevel.Warning, Message = "Delivery: {Host} did not answer in time; no delivery connects to it for {Time} ({Reason})")]
    private static partial void LogDead(ILogger logger, string host, TimeSpan time, string reason);

    [LoggerMessage(EventId = 1211, Level = LogLevel.Warning, Message = "Delivery: could not share that {Host} is dead with the other Deliverers: {Reason}")]
    private static partial void LogShareFailed(ILogger logger, string host, string reason);
}
