using System.Security.Cryptography;
using Gateway.Core.Storage;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Gateway.ControlPlane.Application;
using Gateway.Core.Quarantine;

namespace Gateway.ControlPlane.Jobs;

/// <summary>
/// Deletes quarantined messages older than <see cref="QuarantineOptions.Retention"/> (SPEC §7: 30 days), every
/// <see cref="QuarantineOptions.SweepInterval"/>. Runs in the ControlPlane; with several ControlPlanes one sweeps
/// per interval: a lease (<see cref="RedisKeys.QuarantineSweepLease"/>, <c>SET NX PX</c>) is taken for the interval
/// and left to expire. Time comes from <see cref="TimeProvider"/>, so tests drive it with a fake clock.
/// </summary>
public sealed partial class QuarantineExpiryService(IConnectionMultiplexer redis, QuarantineAdmin admin, QuarantineOptions options, TimeProvider clock,
    ILogger<QuarantineExpiryService> logger) : BackgroundService
{
    private readonly string _token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));

    /// <summary>One sweep if this instance gets the lease: how many messages expired, or null when another instance holds it.</summary>
    public async Task<int?> RunOnceAsync(CancellationToken cancellationToken = default)
    {
        var db = redis.GetDatabase();
        if (!await db.StringSetAsync(RedisKeys.QuarantineSweepLease, _token, options.SweepInterval, When.NotExists).ConfigureAwait(false))
        {
            return null;
        }

        var total = 0;
        foreach (var domain in await db.HashKeysAsync(RedisKeys.DomainRegistry).ConfigureAwait(false))
        {
            cancellationToken.ThrowIfCancellationRequested();
            total += await admin.ExpireAsync(domain.ToString(), cancellationToken).ConfigureAwait(false);
        }

        if (total > 0)
        {
            LogExpired(logger, total, options.Retention.TotalDays);
        }

        return total;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await RunOnceAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
                {
                    LogFailed(logger, e.Message);
                }

                await Task.Delay(options.SweepInterval, clock, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(EventId = 620, Level = LogLevel.Information, Message = "Quarantine: {Count} messages older than {Days} days deleted")]
    private static partial void LogExpired(ILogger logger, int count, double days);

    [LoggerMessage(EventId = 621, Level = LogLevel.Warning, Message = "Quarantine expiry sweep failed; next at the next interval: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
