using System.Diagnostics.Metrics;
using System.Globalization;
using Gateway.Core.Telemetry;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Gateway.Core.Storage;

namespace Gateway.Core.Telemetry;

/// <summary>What one check of Redis's durability settings found: <see cref="Problems"/> is empty when every master keeps the promise.</summary>
public sealed record DurabilityReport(DateTimeOffset Time, bool Known, IReadOnlyList<string> Problems, IReadOnlyList<string> Notes)
{
    public static readonly DurabilityReport NotYet = new(DateTimeOffset.MinValue, false, [], ["not checked yet"]);

    public bool Durable => Known && Problems.Count == 0;
}

/// <summary>
/// Checks what the gateway's promise rests on (docs/requirements.md §6, §11; security review M9): every Redis master
/// must run <c>appendonly yes</c> with <c>appendfsync always</c> (a 250 means "on disk") and
/// <c>maxmemory-policy noeviction</c> (eviction silently drops queued mail; noeviction answers writes with an error,
/// which the intake turns into 451). Read with <c>CONFIG GET</c> at start and every
/// <see cref="GatewayOptions.RedisDurabilityCheckInterval"/>; where CONFIG is not allowed (a managed Redis, an ACL
/// without <c>config|get</c>), from <c>INFO persistence</c> / <c>INFO memory</c>, which cannot show <c>appendfsync</c>.
/// Replicas are reported too: the gateway does not wait for them (no <c>WAIT</c>/<c>WAITAOF</c>; docs/reliability.md
/// "Redis faults"), so a failover can lose acknowledged writes. What does not meet the promise is logged (warning,
/// event 110), shown on <c>/healthz</c> as Degraded and exported as <c>gateway.redis.durable</c> = 0. The programs keep
/// running: refusing to start would turn a configuration gap into an outage.
/// </summary>
public sealed partial class RedisDurability(GatewayOptions options, TimeProvider clock, ILogger<RedisDurability> logger) : BackgroundService, IHealthCheck
{
    private volatile DurabilityReport _last = DurabilityReport.NotYet;

    public DurabilityReport Last => _last;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        string? reported = null;
        while (!stoppingToken.IsCancellationRequested)
        {
            var report = await CheckAsync(stoppingToken).ConfigureAwait(false);
            _last = report;
            var summary = string.Join("; ", report.Problems.Concat(report.Notes));
            if (summary != reported)
            {
                reported = summary;
                if (report.Durable)
                {
                    LogDurable(logger, summary);
                }
                else if (report.Known)
                {
                    LogNotDurable(logger, string.Join("; ", report.Problems));
                }
                else
                {
                    LogUnknown(logger, summary);
                }
            }

            try
            {
                // Unknown (Redis away at start): ask again soon rather than at the long interval.
                await Task.Delay(report.Known ? options.RedisDurabilityCheckInterval : TimeSpan.FromSeconds(5), clock, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Reads the settings of every master now.</summary>
    public async Task<DurabilityReport> CheckAsync(CancellationToken cancellationToken)
    {
        // Own short-lived connection: CONFIG is an admin command, which the shared multiplexer does not allow.
        var config = RedisConnection.Configure(options);
        config.AllowAdmin = true;
        config.AbortOnConnectFail = true;
        config.ConnectTimeout = 5000;
        config.ClientName = (config.ClientName ?? AppDomain.CurrentDomain.FriendlyName) + "-durability";
        var problems = new List<string>();
        var notes = new List<string>();
        try
        {
            using var mux = await ConnectionMultiplexer.ConnectAsync(config).WaitAsync(TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);
            foreach (var endpoint in mux.GetEndPoints())
            {
                var server = mux.GetServer(endpoint);
                if (!server.IsConnected || server.IsReplica)
                {
                    continue;
                }

                await CheckServerAsync(server, problems, notes).ConfigureAwait(false);
            }

            return new DurabilityReport(clock.GetUtcNow(), true, problems, notes);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return new DurabilityReport(clock.GetUtcNow(), false, [], [$"cannot read Redis's settings: {e.Message}"]);
        }
    }

    private static async Task CheckServerAsync(IServer server, List<string> problems, List<string> notes)
    {
        var where = server.EndPoint.ToString();
        string? aof, fsync, policy;
        try
        {
            aof = await ConfigAsync(server, "appendonly").ConfigureAwait(false);
            fsync = await ConfigAsync(server, "appendfsync").ConfigureAwait(false);
            policy = await ConfigAsync(server, "maxmemory-policy").ConfigureAwait(false);
        }
        catch (RedisServerException)
        {
            // CONFIG refused (NOPERM, renamed, a managed service): INFO says less but still the essentials.
            var persistence = Info(await server.ExecuteAsync("INFO", "persistence").ConfigureAwait(false));
            var memory = Info(await server.ExecuteAsync("INFO", "memory").ConfigureAwait(false));
            aof = persistence.GetValueOrDefault("aof_enabled") == "1" ? "yes" : "no";
            fsync = null;
            policy = memory.GetValueOrDefault("maxmemory_policy");
            notes.Add($"{where}: CONFIG GET not allowed, read INFO instead (appendfsync cannot be seen)");
        }

        if (aof != "yes")
        {
            problems.Add($"{where}: appendonly is {aof ?? "unknown"} (needs yes: without the AOF a restart loses accepted mail)");
        }

        if (fsync is not null && fsync != "always")
        {
            problems.Add($"{where}: appendfsync is {fsync} (needs always: otherwise a crash loses up to a second of mail already answered 250)");
        }

        if (policy != "noeviction")
        {
            problems.Add($"{where}: maxmemory-policy is {policy ?? "unknown"} (needs noeviction: eviction silently drops queued mail)");
        }

        var replication = Info(await server.ExecuteAsync("INFO", "replication").ConfigureAwait(false));
        if (int.TryParse(replication.GetValueOrDefault("connected_slaves"), NumberStyles.None, CultureInfo.InvariantCulture, out var replicas) && replicas > 0)
        {
            notes.Add($"{where}: {replicas} replica(s); the gateway does not wait for them (no WAITAOF, Redis {server.Version}), so a failover can lose the last acknowledged writes");
        }
    }

    private static async Task<string?> ConfigAsync(IServer server, string name)
    {
        var result = await server.ExecuteAsync("CONFIG", "GET", name).ConfigureAwait(false);
        var items = (RedisResult[]?)result;
        return items is { Length: >= 2 } ? (string?)items[1] : null;
    }

    private static Dictionary<string, string> Info(RedisResult result)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in ((string?)result ?? string.Empty).Split('\n'))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0)
            {
                map[line[..colon]] = line[(colon + 1)..].Trim();
            }
        }

        return map;
    }

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var r = _last;
        return Task.FromResult(r.Durable
            ? HealthCheckResult.Healthy("appendonly yes, appendfsync always, noeviction" + (r.Notes.Count > 0 ? "; " + string.Join("; ", r.Notes) : string.Empty))
            : r.Known
                ? HealthCheckResult.Degraded("Redis does not keep the durability promise: " + string.Join("; ", r.Problems))
                : HealthCheckResult.Degraded("Redis durability unknown: " + string.Join("; ", r.Notes)));
    }

    [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "Redis does not keep the gateway's durability promise: {Problems}")]
    private static partial void LogNotDurable(ILogger logger, string problems);

    [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "Redis durability checked: appendonly yes, appendfsync always, maxmemory-policy noeviction. {Notes}")]
    private static partial void LogDurable(ILogger logger, string notes);

    [LoggerMessage(EventId = 112, Level = LogLevel.Warning, Message = "Redis durability unknown: {Reason}")]
    private static partial void LogUnknown(ILogger logger, string reason);
}

/// <summary><c>gateway.redis.durable</c>: 1 when every Redis master keeps the durability promise, 0 when one does not, -1 before it is known.</summary>
public sealed class RedisDurabilityMetrics : IGatewayInstruments
{
    public RedisDurabilityMetrics(IMeterFactory meterFactory, RedisDurability durability)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        ArgumentNullException.ThrowIfNull(durability);
        meterFactory.Create("Gateway.Redis").CreateObservableGauge("gateway.redis.durable",
            () => durability.Last is { Known: true } r ? (r.Durable ? 1 : 0) : -1, "{bool}",
            "1: every Redis master runs appendonly yes, appendfsync always, maxmemory-policy noeviction; 0: one does not; -1: not known yet.");
    }
}
