using Gateway.Core;
using Gateway.ControlPlane.Application;
using StackExchange.Redis;

namespace Gateway.ControlPlane;

/// <summary>
/// requirements §2: without a configured operator key, generate one at first start, keep only its hash
/// in Redis and write the key to an owner-only file whose path is logged. Retries while Redis is
/// unreachable instead of failing the start.
/// </summary>
public sealed partial class OperatorKeyBootstrap(TenantManager tenants, GatewayOptions options, ILogger<OperatorKeyBootstrap> logger)
    : BackgroundService
{
    /// <summary>Completes once an operator key is usable (tests and the run script wait on the file instead).</summary>
    public Task Ready => _ready.Task;

    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!string.IsNullOrEmpty(options.OperatorKey))
        {
            LogConfigured(logger);
            _ready.TrySetResult();
            return;
        }

        var path = Path.GetFullPath(options.OperatorKeyFile);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var key = await tenants.EnsureOperatorKeyAsync().ConfigureAwait(false);
                if (key is null)
                {
                    if (File.Exists(path))
                    {
                        LogExisting(logger, path);
                    }
                    else
                    {
                        LogExistingElsewhere(logger, path);
                    }
                }
                else
                {
                    try
                    {
                        WriteOwnerOnly(path, key);
                    }
                    catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                    {
                        // Nobody could ever learn this key: forget it so the next start generates another.
                        await tenants.ForgetGeneratedOperatorKeyAsync(key).ConfigureAwait(false);
                        LogWriteFailed(logger, path, e);
                        throw;
                    }

                    LogGenerated(logger, path);
                }

                _ready.TrySetResult();
                return;
            }
            catch (Exception e) when (e is RedisException or RedisTimeoutException or RedisConnectionException)
            {
                LogRedisDown(logger, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken).ConfigureAwait(false);
            }
        }
    }

    internal static void WriteOwnerOnly(string path, string content) => Gateway.Core.Secrets.OwnerOnlyFile.Write(path, content, overwrite: true);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Operator key: taken from configuration (Gateway:OperatorKey)")]
    private static partial void LogConfigured(ILogger logger);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Operator key generated and written to {Path} (readable by its owner only); only its hash is stored")]
    private static partial void LogGenerated(ILogger logger, string path);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Operator key: generated earlier, in {Path}")]
    private static partial void LogExisting(ILogger logger, string path);

    [LoggerMessage(EventId = 4, Level = LogLevel.Warning, Message = "Operator key: generated earlier by another ControlPlane instance; it is not at {Path} on this host. Set Gateway:OperatorKey, or delete the Redis key gw:{{cfg}}:operator to generate a new one")]
    private static partial void LogExistingElsewhere(ILogger logger, string path);

    [LoggerMessage(EventId = 5, Level = LogLevel.Error, Message = "Could not write the operator key to {Path}")]
    private static partial void LogWriteFailed(ILogger logger, string path, Exception exception);

    [LoggerMessage(EventId = 6, Level = LogLevel.Warning, Message = "Operator key bootstrap waits for Redis: {Reason}")]
    private static partial void LogRedisDown(ILogger logger, string reason);
}
