using Gateway.ControlPlane.Application;
using System.Diagnostics;
using Gateway.Core;
using Gateway.Core.Domains;
using Gateway.Core.Storage;
using StackExchange.Redis;

namespace PolicyBench;

/// <summary>
/// Creates managed domains <c>b&lt;i&gt;.example.net</c> through the domain layer (validation, the Redis
/// store, the change feed), as the ControlPlane would; idempotent, so 10 then 100,000 adds the rest.
/// </summary>
internal static class Seeder
{
    public static async Task<int> RunAsync(Options o)
    {
        var to = o.Int("to");
        using var mux = await ConnectionMultiplexer.ConnectAsync(o["redis"]);
        var options = new GatewayOptions { Redis = o["redis"], GatewayDomain = "gw.bench.example" };
        var store = new DomainStore(mux, new ConfigChangeFeed(mux, options));
        var domains = new DomainManager(store, new DomainValidator(options), options, TimeProvider.System);
        await new TenantStore(mux).CreateAsync(new TenantRecord("bench", "bench", DateTimeOffset.UtcNow));
        var existing = (await store.NamesAsync("bench")).ToHashSet(StringComparer.Ordinal);

        var started = Stopwatch.StartNew();
        using var gate = new SemaphoreSlim(128);
        var created = 0;
        var tasks = Enumerable.Range(0, to).Select(Name).Where(n => !existing.Contains(n)).Select(async name =>
        {
            await gate.WaitAsync();
            try
            {
                await domains.CreateAsync("bench", name, new DomainSettings(true, [new InboundServer("*@" + name, "192.0.2.1", 25, 10)], OutboundSettings.Disabled));
                Interlocked.Increment(ref created);
            }
            finally
            {
                gate.Release();
            }
        }).ToList();
        await Task.WhenAll(tasks);
        Console.Error.WriteLine($"seed: {created} domains created ({existing.Count} existed) in {started.Elapsed.TotalSeconds:F1} s");

        if (o.Optional("names") is { } file)
        {
            await File.WriteAllLinesAsync(file, Enumerable.Range(0, to).Select(Name));
        }

        return 0;
    }

    public static string Name(int i) => $"b{i}.example.net";
}
