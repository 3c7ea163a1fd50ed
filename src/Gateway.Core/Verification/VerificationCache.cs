using System.Globalization;
using Gateway.Core.Storage;
using StackExchange.Redis;

namespace Gateway.Core.Verification;

/// <summary>
/// The fleet's shared memory of recipient verification, in the domain's own slot (<c>{d:&lt;domain&gt;}</c>, so a domain's
/// purge removes it and it runs on Redis Cluster): a hash recipient → answer (<see cref="VerificationRules.Format"/>), a
/// sorted set recipient → expiry that bounds it (at most <see cref="VerificationOptions.MaxEntriesPerDomain"/> entries; the
/// one that expires soonest makes room, so a dictionary attack's short-lived negative answers push out each other, not
/// the week-long positive ones), and a per-minute probe counter. Redis 7.0 (Debian 12) has no per-field expiry
/// (<c>HEXPIRE</c> is 7.4): expiry is in the value, expired entries are swept by every write, and both keys expire with
/// their longest-lived entry.
/// </summary>
public sealed class VerificationCache(IConnectionMultiplexer redis)
{
    // KEYS: hash, expiries. ARGV: field, value, expires ms, now ms, cap, key ttl ms.
    private const string StoreScript = """
        local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[4], 'LIMIT', 0, 100)
        if #old > 0 then
          redis.call('HDEL', KEYS[1], unpack(old))
          redis.call('ZREM', KEYS[2], unpack(old))
        end
        if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
          local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5]) + 1
          if over > 0 then
            local first = redis.call('ZRANGE', KEYS[2], 0, over - 1)
            redis.call('HDEL', KEYS[1], unpack(first))
            redis.call('ZREM', KEYS[2], unpack(first))
          end
        end
        redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
        redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
        local ttl = tonumber(ARGV[6])
        if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
        if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
        return 1
        """;

    // KEYS: counter. ARGV: limit. 1 when a probe may start.
    private const string TakeScript = """
        local n = redis.call('INCR', KEYS[1])
        if n == 1 then redis.call('PEXPIRE', KEYS[1], 120000) end
        if n > tonumber(ARGV[1]) then return 0 end
        return 1
        """;

    /// <summary>The key form of a recipient: lower case, as routes compare them.</summary>
    public static string Field(string recipient) => recipient.ToLowerInvariant();

    public async Task<VerifyResult?> GetAsync(string domain, string recipient, DateTimeOffset now)
    {
        var value = await redis.GetDatabase().HashGetAsync(RedisKeys.DomainVerifyCache(domain), Field(recipient)).ConfigureAwait(false);
        return VerificationRules.Parse(value.IsNull ? null : value.ToString(), now);
    }

    public async Task StoreAsync(string domain, string recipient, VerifyResult result, TimeSpan lifetime, int cap, DateTimeOffset now)
    {
        var expires = now + lifetime;
        await redis.GetDatabase().ScriptEvaluateAsync(StoreScript, [RedisKeys.DomainVerifyCache(domain), RedisKeys.DomainVerifyExpiries(domain)],
        [
            Field(recipient), VerificationRules.Format(result, expires), expires.ToUnixTimeMilliseconds(), now.ToUnixTimeMilliseconds(), cap,
            (long)lifetime.TotalMilliseconds,
        ]).ConfigureAwait(false);
    }

    /// <summary>Counts one probe of the domain in this minute, fleet-wide; false when the minute's limit is reached.</summary>
    public async Task<bool> TryTakeProbeAsync(string domain, int limit, DateTimeOffset now)
    {
        var minute = now.ToUnixTimeSeconds() / 60;
        var r = await redis.GetDatabase().ScriptEvaluateAsync(TakeScript, [RedisKeys.DomainVerifyRate(domain, minute)],
            [limit.ToString(CultureInfo.InvariantCulture)]).ConfigureAwait(false);
        return (long)r == 1;
    }

    /// <summary>How many answers the domain has cached (tests, <c>gatewayctl</c>).</summary>
    public Task<long> CountAsync(string domain) => redis.GetDatabase().HashLengthAsync(RedisKeys.DomainVerifyCache(domain));
}
