using Gateway.Core.Storage;
using StackExchange.Redis;

namespace Gateway.ControlPlane.Services;

/// <summary>
/// The open FollowLog streams of a tenant across every ControlPlane of the fleet (docs/reliability.md "Hostile tenant":
/// <see cref="Application.TenantLimits.FollowStreamsPerTenant"/> counted fleet-wide, not per process). One sorted set per
/// tenant: member = a stream, score = when its slot lapses. A live stream renews its slot every
/// <see cref="Heartbeat"/>; the slot of a ControlPlane that died without releasing it lapses after <see cref="Ttl"/>.
/// </summary>
public sealed class FollowSlots(IConnectionMultiplexer redis, TimeProvider clock)
{
    /// <summary>A slot not renewed for this long is free again.</summary>
    public static readonly TimeSpan Ttl = TimeSpan.FromSeconds(30);

    /// <summary>How often a live stream renews its slot.</summary>
    public static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(10);

    // KEYS: the tenant's set. ARGV: now (ms), lapse (ms), stream, limit, key TTL (ms).
    private const string AcquireScript = """
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
        redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
        redis.call('PEXPIRE', KEYS[1], ARGV[5])
        return 1
        """;

    // KEYS: the tenant's set. ARGV: lapse (ms), stream, key TTL (ms). Only a slot still held is renewed.
    private const string RenewScript = """
        local n = redis.call('ZADD', KEYS[1], 'XX', 'CH', ARGV[1], ARGV[2])
        redis.call('PEXPIRE', KEYS[1], ARGV[3])
        return n
        """;

    private static RedisKey Key(string company) => RedisKeys.TenantFollows(company);

    private long Now => clock.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Takes a slot for <paramref name="stream"/> unless the tenant already holds <paramref name="limit"/>.</summary>
    public async Task<bool> TryAcquireAsync(string company, string stream, int limit) =>
        (long)await redis.GetDatabase().ScriptEvaluateAsync(AcquireScript, [Key(company)],
            [Now, Now + (long)Ttl.TotalMilliseconds, stream, limit, (long)(Ttl * 2).TotalMilliseconds]).ConfigureAwait(false) == 1;

    public Task RenewAsync(string company, string stream) =>
        redis.GetDatabase().ScriptEvaluateAsync(RenewScript, [Key(company)], [Now + (long)Ttl.TotalMilliseconds, stream, (long)(Ttl * 2).TotalMilliseconds]);

    public Task ReleaseAsync(string company, string stream) => redis.GetDatabase().SortedSetRemoveAsync(Key(company), stream);
}
