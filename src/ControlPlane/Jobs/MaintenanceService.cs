using System.Security.Cryptography;
using Gateway.ControlPlane.Application;
using Gateway.Core;
using Gateway.Core.MessageLog;
using Gateway.Core.Storage;
using StackExchange.Redis;

namespace Gateway.ControlPlane.Jobs;

/// <summary>What one maintenance round did.</summary>
/// <param name="Domains">Managed domains walked.</param>
/// <param name="Trimmed">Message log entries older than the retention removed.</param>
/// <param name="Expired">Quarantined messages older than their retention deleted.</param>
public sealed record MaintenanceRound(int Domains, long Trimmed, int Expired);

/// <summary>
/// Fleet-wide housekeeping, one round per <see cref="GatewayOptions.MaintenanceInterval"/> by one ControlPlane at a time
/// (a lease in Redis, <see cref="RedisKeys.MaintenanceLock"/>, that expires by itself): finishes domain deletions a
/// crashed ControlPlane left behind (also at every start), then walks the managed domains once and for each trims its
/// message log to the retention exactly (so a domain that gets no new events loses its old ones too, requirements §7.6)
/// and deletes its quarantined messages older than <c>Gateway:Quarantine:Retention</c> (requirements §7.3: 30 days).
/// Time comes from <see cref="TimeProvider"/>, so tests drive it with a fake clock.
/// </summary>
public sealed partial class MaintenanceService(
    IConnectionMultiplexer redis, DomainStore store, MessageLogWriter log, QuarantineAdmin quarantine, GatewayOptions options, TimeProvider clock,
    ILogger<MaintenanceService> logger)
    : BackgroundService
{
    /// <summary>A deletion younger than this is left to the ControlPlane running it.</summary>
    public static readonly TimeSpan PurgeGrace = TimeSpan.FromMinutes(5);

    private readonly string _token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var first = true;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (first)
                {
                    await ResumePurgesAsync(stoppingToken).ConfigureAwait(false);
                    first = false;
                }

                await TryRunAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
            {
                LogFailed(logger, e.Message);
            }

            try
            {
                await Task.Delay(options.MaintenanceInterval, clock, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One round if this instance gets the interval's lease; null when another ControlPlane holds it.</summary>
    public async Task<MaintenanceRound?> TryRunAsync(CancellationToken cancellationToken)
    {
        if (!await redis.GetDatabase().StringSetAsync(RedisKeys.MaintenanceLock, _token, options.MaintenanceInterval, When.NotExists).ConfigureAwait(false))
        {
            return null;
        }

        return await RunOnceAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One round without the lease: resume stale deletions, then trim each domain's log and expire its quarantine.</summary>
    public async Task<MaintenanceRound> RunOnceAsync(CancellationToken cancellationToken)
    {
        await ResumePurgesAsync(cancellationToken).ConfigureAwait(false);
        var names = await redis.GetDatabase().HashKeysAsync(RedisKeys.DomainRegistry).ConfigureAwait(false);
        long trimmed = 0;
        var expired = 0;
        foreach (var chunk in names.Chunk(200))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var counts = await Task.WhenAll(chunk.Select(n => log.TrimAsync(n.ToString()))).ConfigureAwait(false);
            trimmed += counts.Sum();
            foreach (var name in chunk)
            {
                expired += await quarantine.ExpireAsync(name.ToString(), cancellationToken).ConfigureAwait(false);
            }
        }

        LogRound(logger, names.Length, trimmed, expired);
        return new MaintenanceRound(names.Length, trimmed, expired);
    }

    private async Task ResumePurgesAsync(CancellationToken cancellationToken)
    {
        foreach (var name in await store.ResumePurgesAsync(PurgeGrace, cancellationToken).ConfigureAwait(false))
        {
            LogResumed(logger, name);
        }
    }

    [LoggerMessage(EventId = 600, Level = LogLevel.Information, Message = "Maintenance: finished the interrupted deletion of domain {Domain}")]
    private static partial void LogResumed(ILogger logger, string domain);

    [LoggerMessage(EventId = 601, Level = LogLevel.Information,
        Message = "Maintenance: {Domains} domains; {Entries} message log events older than the retention removed, {Expired} quarantined messages expired")]
    private static partial void LogRound(ILogger logger, int domains, long entries, int expired);

    [LoggerMessage(EventId = 602, Level = LogLevel.Warning, Message = "Maintenance round failed, trying again next interval: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
