using Gateway.Core.Hosting;
using Gateway.Core.Domains;
using Gateway.Core.Storage;
using Gateway.Core.Telemetry;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Gateway.Core.Hosting;

public static class ServiceCollectionExtensions
{
    /// <summary>
    /// Options (validated at start), the shared Redis connection and the stores, for any of the programs.
    /// </summary>
    public static IServiceCollection AddGatewayCore(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<GatewayOptions>()
            .Bind(configuration.GetSection(GatewayOptions.Section))
            .ValidateDataAnnotations()
            .Validate(o => Domains.DomainName.TryNormalize(o.GatewayDomain, out _, out _),
                "Gateway:GatewayDomain must be a DNS name such as gateway.example.net.")
            .Validate(o => o.SnapshotReconcileInterval > TimeSpan.Zero, "Gateway:SnapshotReconcileInterval must be positive.")
            .Validate(o => o.ConfigPendingGrace > TimeSpan.Zero && o.ConfigPendingFinal >= o.ConfigPendingGrace,
                "Gateway:ConfigPendingGrace must be positive and Gateway:ConfigPendingFinal at least as long.")
            .Validate(o => o.MessageLogRetention > TimeSpan.Zero && o.MaintenanceInterval > TimeSpan.Zero && o.MessageLogFollowPollInterval > TimeSpan.Zero,
                "Gateway:MessageLogRetention, Gateway:MaintenanceInterval and Gateway:MessageLogFollowPollInterval must be positive.")
            .Validate(o => TryParseRedis(o.Redis), "Gateway:Redis is not a valid StackExchange.Redis configuration string (e.g. 127.0.0.1:6379).")
            .Validate(o => string.IsNullOrEmpty(o.RedisPasswordFile) || File.Exists(o.RedisPasswordFile),
                "Gateway:RedisPasswordFile names a file that does not exist.")
            .Validate(o => o.RedisDurabilityCheckInterval > TimeSpan.Zero, "Gateway:RedisDurabilityCheckInterval must be positive.")
            .Validate(o => o.UnverifiedInboundGracePeriod >= TimeSpan.Zero, "Gateway:UnverifiedInboundGracePeriod must not be negative (0: off).")
            .Validate(o => o.Dns.Servers.All(s => Dns.DnsSetup.TryParseServer(s, out _)), "Gateway:Dns:Servers entries must be ip or ip:port.")
            .ValidateOnStart();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<GatewayOptions>>().Value);
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<IConnectionMultiplexer>(sp =>
        {
            var options = sp.GetRequiredService<GatewayOptions>();
            var config = RedisConnection.Configure(options);
            // Start and keep retrying while Redis is away; callers see errors, the process lives on.
            config.AbortOnConnectFail = false;
            config.ClientName ??= AppDomain.CurrentDomain.FriendlyName;
            var log = sp.GetRequiredService<ILoggerFactory>().CreateLogger("Gateway.Redis");
            var mux = ConnectionMultiplexer.Connect(config);
            mux.ConnectionFailed += (_, e) => RedisLog.ConnectionFailed(log, e.EndPoint, e.FailureType);
            mux.ConnectionRestored += (_, e) => RedisLog.ConnectionRestored(log, e.EndPoint);
            return mux;
        });
        services.AddSingleton<RedisDurability>();
        services.AddHostedService(sp => sp.GetRequiredService<RedisDurability>());
        services.AddGatewayInstruments<RedisDurabilityMetrics>();
        services.AddSingleton<ConfigChangeFeed>();
        services.AddSingleton<ConfigStateStore>();
        // Every program that purges a domain's schedule entries must agree on the shard count (Gateway:Queue).
        services.AddSingleton(sp => new DomainStore(sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<ConfigChangeFeed>(),
            sp.GetService<Delivery.QueueOptions>()?.ScheduleShards ?? RedisKeys.DefaultScheduleShards, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<Rules.RuleStore>();
        services.AddSingleton<MessageLog.MessageLogWriter>();
        services.AddSingleton(sp => Dns.DnsSetup.CreateClient(sp.GetRequiredService<GatewayOptions>().Dns));
        return services;
    }

    private static bool TryParseRedis(string value)
    {
        try
        {
            return ConfigurationOptions.Parse(value).EndPoints.Count > 0;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}

internal static partial class RedisLog
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "Redis connection to {EndPoint} failed: {FailureType}")]
    public static partial void ConnectionFailed(ILogger logger, System.Net.EndPoint? endPoint, ConnectionFailureType failureType);

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Redis connection to {EndPoint} restored")]
    public static partial void ConnectionRestored(ILogger logger, System.Net.EndPoint? endPoint);
}

public static class SnapshotServiceCollectionExtensions
{
    /// <summary>The non-blocking message log for hot paths (started as a hosted service).</summary>
    public static IServiceCollection AddBufferedMessageLog(this IServiceCollection services)
    {
        services.AddSingleton<MessageLog.BufferedMessageLog>();
        services.AddHostedService(sp => sp.GetRequiredService<MessageLog.BufferedMessageLog>());
        return services;
    }

    /// <summary>The in-memory domain snapshot and the service that keeps it current (PolicyDaemon, Deliverer).</summary>
    public static IServiceCollection AddConfigSnapshot(this IServiceCollection services)
    {
        services.AddSingleton(sp => new Snapshot.ConfigSnapshot { UnverifiedInboundGrace = sp.GetRequiredService<GatewayOptions>().UnverifiedInboundGracePeriod });
        services.AddSingleton(sp => new Snapshot.ConfigSnapshotService(sp.GetRequiredService<Snapshot.ConfigSnapshot>(), sp.GetRequiredService<DomainStore>(),
            sp.GetRequiredService<ConfigChangeFeed>(), sp.GetRequiredService<IConnectionMultiplexer>(), sp.GetRequiredService<GatewayOptions>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<Snapshot.ConfigSnapshotService>>(),
            sp.GetRequiredService<Rules.RuleStore>(), sp.GetRequiredService<ConfigStateStore>()));
        services.AddHostedService(sp => sp.GetRequiredService<Snapshot.ConfigSnapshotService>());
        services.AddGatewayInstruments<Telemetry.SnapshotMetrics>(); // gateway.snapshot.* (docs/telemetry.md)
        return services;
    }
}
