using System.Diagnostics;
using Gateway.Core;
using Gateway.Core.Snapshot;
using Gateway.Core.Storage;
using StackExchange.Redis;

namespace PolicyBench;

/// <summary>How long a full snapshot load takes: reading every domain from Redis, then building the lookup.</summary>
internal static class LoadTime
{
    public static async Task<int> RunAsync(Options o)
    {
        using var mux = await ConnectionMultiplexer.ConnectAsync(o["redis"]);
        var options = new GatewayOptions { Redis = o["redis"] };
        var store = new DomainStore(mux, new ConfigChangeFeed(mux, options));
        for (var round = 0; round < o.Int("rounds", 3); round++)
        {
            var started = Stopwatch.GetTimestamp();
            var domains = await store.LoadAllAsync();
            var read = Stopwatch.GetElapsedTime(started);
            started = Stopwatch.GetTimestamp();
            var snapshot = new ConfigSnapshot();
            snapshot.Replace(domains, 1, DateTimeOffset.UtcNow);
            var build = Stopwatch.GetElapsedTime(started);
            Console.WriteLine($"snapshot full load of {domains.Count:N0} domains: read from Redis {read.TotalSeconds:F2} s, build lookup {build.TotalSeconds:F2} s");
        }

        return 0;
    }
}
