using Gateway.Core;
using Gateway.Core.Domains;
using Gateway.Core.Storage;
using Gateway.Testing;
using StackExchange.Redis;
using Gateway.ControlPlane.Application;

namespace PolicyDaemon.Tests;

/// <summary>A real redis-server, the PolicyDaemon on real sockets, and the domain layer to change its configuration.</summary>
public sealed class DaemonFixture : IAsyncLifetime
{
    public const string Company = "acme";

    public RedisServer Redis { get; private set; } = null!;

    public ConnectionMultiplexer RedisClient { get; private set; } = null!;

    public DomainManager Domains { get; private set; } = null!;

    internal PolicyDaemonServer Daemon { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        RedisClient = await Redis.ConnectAsync();
        Domains = NewDomainManager(RedisClient);
        Assert.True(await new TenantStore(RedisClient).CreateAsync(new TenantRecord(Company, Company, DateTimeOffset.UtcNow)));
        Daemon = await PolicyDaemonServer.StartAsync(Redis.ConnectionString, "--PolicyDaemon:LogAccepts", "true");
        await Daemon.WaitLoadedAsync();
    }

    public async Task DisposeAsync()
    {
        if (Daemon is not null)
        {
            await Daemon.DisposeAsync();
        }

        RedisClient?.Dispose();
        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }
    }

    public static DomainManager NewDomainManager(IConnectionMultiplexer mux)
    {
        var options = new GatewayOptions { GatewayDomain = "gw.test.example", AllowLoopbackDestinations = true };
        var store = new DomainStore(mux, new ConfigChangeFeed(mux, options));
        return new DomainManager(store, new DomainValidator(options), options, TimeProvider.System);
    }

    /// <summary>Saves one domain (and the tenant <see cref="Company"/>) into a Redis the test started.</summary>
    public static async Task SeedAsync(RedisServer redis, string name, DomainSettings settings)
    {
        using var mux = await redis.ConnectAsync();
        await new TenantStore(mux).CreateAsync(new TenantRecord(Company, Company, DateTimeOffset.UtcNow));
        await NewDomainManager(mux).CreateAsync(Company, name, settings);
    }

    /// <summary>A unique registrable domain name.</summary>
    public static string NewName(string label = "d") => $"{label}{Guid.NewGuid().ToString("N")[..10]}.example.com";

    public static DomainSettings Inbound(string domain, string host = "192.0.2.1", int port = 25) =>
        new(true, [new InboundServer("*@" + domain, host, port, 10)], OutboundSettings.Disabled);

    /// <summary>Marks a domain verified the way the verification feature saves it.</summary>
    public static Task<DomainConfig> VerifyAsync(DomainManager domains, string name) =>
        domains.ChangeAsync(name, d => d with { Verification = d.Verification with { Verified = true, Method = VerificationMethod.Txt, VerifyTime = DateTimeOffset.UtcNow } }, ConfigOps.Verify);
}
