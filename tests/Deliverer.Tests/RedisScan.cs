using StackExchange.Redis;

namespace Deliverer.Tests;

/// <summary>The keys of the test's Redis that match a pattern (SCAN), for tests that look at the storage layout.</summary>
internal static class RedisScan
{
    public static async Task<List<RedisKey>> KeysAsync(IConnectionMultiplexer redis, string pattern)
    {
        var keys = new List<RedisKey>();
        await foreach (var k in redis.GetServer(redis.GetEndPoints()[0]).KeysAsync(pattern: pattern))
        {
            keys.Add(k);
        }

        return keys;
    }
}
