using Gateway.Core.Storage;
using Gateway.ControlPlane.Application;
using StackExchange.Redis;

namespace Gateway.ControlPlane.Services;

/// <summary>
/// A tenant's live FollowLog streams counted fleet-wide (docs/requirements.md §11, security review M1): one sorted set
/// per tenant in Redis (<see cref="RedisKeys.TenantFollows"/>), each stream a member whose score is the end of its lease
/// on Redis's clock. Taking a place drops the expired ones first, so the streams of a ControlPlane that died come free
/// after <see cref="TenantLimits.FollowSlotLease"/>.
/// </summary>
public sealed class FollowSlots(IConnectionMultiplexer redis, TenantLimits limits)
{
    // KEYS: follows. ARGV: stream id, lease (ms), limit. 1 taken, 0 full.
    private const string TakeScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
        redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
        redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
        return 1
        """;

    // KEYS: follows. ARGV: stream id, lease (ms). Renews a place that is still held.
    private const string RenewScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local n = redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
        redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
        return n
        """;

    private long LeaseMs => (long)limits.FollowSlotLease.TotalMilliseconds;

    /// <summary>Takes a place for stream <paramref name="id"/> of <paramref name="company"/>; false when all are taken.</summary>
    public async Task<bool> TakeAsync(string company, string id) =>
        (long)await redis.GetDatabase().ScriptEvaluateAsync(TakeScript, [RedisKeys.TenantFollows(company)], [id, LeaseMs, limits.FollowStreamsPerTenant])
            .ConfigureAwait(false) == 1;

    /// <summary>Extends the lease of a place this stream holds.</summary>
    public Task RenewAsync(string company, string id) =>
        redis.GetDatabase().ScriptEvaluateAsync(RenewScript, [RedisKeys.TenantFollows(company)], [id, LeaseMs]);

    /// <summary>Gives the place back (best effort: an expired lease frees it anyway).</summary>
    public Task ReleaseAsync(string company, string id) => redis.GetDatabase().SortedSetRemoveAsync(RedisKeys.TenantFollows(company), id);
}
