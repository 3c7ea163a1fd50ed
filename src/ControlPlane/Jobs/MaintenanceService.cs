using System.Security.Cryptography;
using Gateway.Core;
using Gateway.Core.MessageLog;
using Gateway.Core.Storage;
using StackExchange.Redis;

namespace Gateway.ControlPlane.Jobs;

/// <summary>
/// Fleet-wide housekeeping, run by one ControlPlane at a time (a lease in Redis that expires by itself):
/// finishes domain deletions a crashed ControlPlane left behind (also at every start), and trims every
/// domain's message log to the retention exactly, so the events of a domain that gets no new ones (the
/// append path trims only when it appends) are gone after the retention too (SPEC §7: kept 90 days).
/// </summary>
public sealed partial class MaintenanceService(
    IConnectionMultiplexer redis, DomainStore store, MessageLogWriter log, GatewayOptions options, TimeProvider clock, ILogger<MaintenanceService> logger)
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

                if (await redis.GetDatabase().StringSetAsync(RedisKeys.MaintenanceLock, _token, options.MaintenanceInterval, When.NotExists).ConfigureAwait(false))
                {
                    await RunOnceAsync(stoppingToken).ConfigureAwait(false);
                }
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

    /// <summary>One round: resume stale deletions, then trim every domain's log. Returns how many entries were trimmed.</summary>
    public async Task<long> RunOnceAsync(CancellationToken cancellationToken)
    {
        await ResumePurgesAsync(cancellationToken).ConfigureAwait(false);
        var names = await redis.GetDatabase().HashKeysAsync(RedisKeys.DomainRegistry).ConfigureAwait(false);
        long trimmed = 0;
        foreach (var chunk in names.Chunk(200))
        {
            cancellationToken.ThrowIfCancellationRequested();
            var counts = await Task.WhenAll(chunk.Select(n => log.TrimAsync(n.ToString()))).ConfigureAwait(false);
            trimmed += counts.Sum();
        }

        LogTrimmed(logger, names.Length, trimmed);
        return trimmed;
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

    [LoggerMessage(EventId = 601, Level = LogLevel.Information, Message = "Maintenance: trimmed the message logs of {Domains} domains to the retention ({Entries} old events removed)")]
    private static partial void LogTrimmed(ILogger logger, int domains, long entries);

    [LoggerMessage(EventId = 602, Level = LogLevel.Warning, Message = "Maintenance round failed, trying again next interval: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
