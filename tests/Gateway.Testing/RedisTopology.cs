namespace Gateway.Testing;

/// <summary>The two Redis deployments the gateway runs on (requirements §1), for tests that run their contract on both.</summary>
public static class RedisTopology
{
    /// <summary>One redis-server.</summary>
    public static async Task<(IAsyncDisposable Server, string ConnectionString)> StartSingleAsync()
    {
        var redis = await RedisServer.StartAsync().ConfigureAwait(false);
        return (redis, redis.ConnectionString);
    }

    /// <summary>A Redis Cluster of three masters.</summary>
    public static async Task<(IAsyncDisposable Server, string ConnectionString)> StartClusterAsync()
    {
        var cluster = await RedisCluster.StartAsync().ConfigureAwait(false);
        return (cluster, cluster.ConnectionString);
    }
}
