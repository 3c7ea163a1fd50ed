using System.Threading.Channels;
using Gateway.Core.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Gateway.Core.Snapshot;

/// <summary>
/// Keeps a <see cref="ConfigSnapshot"/> current:
/// <list type="number">
/// <item>subscribes to the change channel first, then loads every domain (nothing is missed in between);</item>
/// <item>on each change message reads the change stream after its applied version and reloads just those domains;</item>
/// <item>every <see cref="GatewayOptions.SnapshotReconcileInterval"/> and after a Redis reconnect compares the
/// stored version with its own and catches up the same way, so a lost pub/sub message costs at most one interval;</item>
/// <item>reloads everything when the stream no longer reaches back to its version (trimmed) or the version went
/// backwards (Redis lost data).</item>
/// </list>
/// All work happens on one loop, so updates apply in order; readers never wait for it.
/// </summary>
public sealed partial class ConfigSnapshotService(
    ConfigSnapshot snapshot,
    DomainStore store,
    ConfigChangeFeed feed,
    IConnectionMultiplexer redis,
    GatewayOptions options,
    TimeProvider clock,
    ILogger<ConfigSnapshotService> logger,
    Rules.RuleStore? ruleStore = null) : BackgroundService
{
    // Rules load with their domain (same change feed): a rule change reloads the domain like a settings change.
    private readonly Rules.RuleStore _rules = ruleStore ?? new Rules.RuleStore(redis, feed);

    private const int StreamBatch = 10_000;
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var subscriber = redis.GetSubscriber();
        redis.ConnectionRestored += OnConnectionRestored;
        try
        {
            await SubscribeAsync(subscriber, stoppingToken).ConfigureAwait(false);
            var backoff = TimeSpan.FromMilliseconds(200);
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    if (!snapshot.IsLoaded)
                    {
                        await FullLoadAsync(stoppingToken).ConfigureAwait(false);
                    }

                    await CatchUpAsync(stoppingToken).ConfigureAwait(false);
                    backoff = TimeSpan.FromMilliseconds(200);
                }
                catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException or System.Text.Json.JsonException)
                {
                    // Keep serving the snapshot we have (or keep answering "try later" if none yet).
                    LogSyncFailed(logger, snapshot.IsLoaded, e.Message);
                    await Task.Delay(backoff, clock, stoppingToken).ConfigureAwait(false);
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
                    continue;
                }

                using var timer = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                timer.CancelAfter(options.SnapshotReconcileInterval);
                try
                {
                    await _wake.Reader.ReadAsync(timer.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                {
                    // Reconcile tick.
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            redis.ConnectionRestored -= OnConnectionRestored;
        }
    }

    /// <summary>Asks the loop to catch up now (used after a reconnect, and by tests).</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    private async Task SubscribeAsync(ISubscriber subscriber, CancellationToken stoppingToken)
    {
        while (true)
        {
            try
            {
                // The message only says "something changed"; the stream says what, in order.
                await subscriber.SubscribeAsync(RedisKeys.ConfigChannel, (_, _) => Wake()).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is RedisException or RedisTimeoutException)
            {
                LogSyncFailed(logger, snapshot.IsLoaded, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), clock, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e) => Wake();

    private async Task FullLoadAsync(CancellationToken cancellationToken)
    {
        var started = clock.GetTimestamp();
        var version = await feed.GetVersionAsync().ConfigureAwait(false);
        var domains = await store.LoadAllAsync(cancellationToken).ConfigureAwait(false);
        var rules = new Dictionary<string, Rules.RuleList>(StringComparer.OrdinalIgnoreCase);
        const int Chunk = 2000;
        for (var i = 0; i < domains.Count; i += Chunk)
        {
            var names = domains.Skip(i).Take(Chunk).Select(d => d.Name).ToList();
            var lists = await _rules.GetManyAsync(names).ConfigureAwait(false);
            for (var j = 0; j < names.Count; j++)
            {
                if (lists[j] is { } list)
                {
                    rules[names[j]] = list;
                }
            }
        }

        snapshot.Replace(domains, version, clock.GetUtcNow(), rules);
        var elapsed = clock.GetElapsedTime(started);
        LogLoaded(logger, domains.Count, version, elapsed.TotalMilliseconds);
    }

    private async Task CatchUpAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var applied = snapshot.Version;
            var current = await feed.GetVersionAsync().ConfigureAwait(false);
            if (current == applied)
            {
                snapshot.MarkSynced(applied, clock.GetUtcNow());
                return;
            }

            if (current < applied)
            {
                LogVersionWentBack(logger, applied, current);
                await FullLoadAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }

            var changes = await feed.ReadAfterAsync(applied, StreamBatch).ConfigureAwait(false);
            if (changes.Count == 0 || changes[0].Version != applied + 1)
            {
                LogGap(logger, applied, changes.Count == 0 ? current : changes[0].Version);
                await FullLoadAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }

            var names = changes.Select(c => c.Domain).Distinct(StringComparer.Ordinal).ToList();
            var configsTask = store.GetManyAsync(names);
            var rulesTask = _rules.GetManyAsync(names);
            var configs = await configsTask.ConfigureAwait(false);
            var rules = await rulesTask.ConfigureAwait(false);
            for (var i = 0; i < names.Count; i++)
            {
                snapshot.Apply(names[i], configs[i], rules[i]);
            }

            snapshot.MarkSynced(changes[^1].Version, clock.GetUtcNow());
            LogApplied(logger, names.Count, changes[^1].Version);
        }
    }

    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "Snapshot loaded: {Count} domains at config version {Version} in {Milliseconds:F0} ms")]
    private static partial void LogLoaded(ILogger logger, int count, long version, double milliseconds);

    [LoggerMessage(EventId = 301, Level = LogLevel.Debug, Message = "Snapshot applied {Count} changed domains up to version {Version}")]
    private static partial void LogApplied(ILogger logger, int count, long version);

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning, Message = "Snapshot sync failed (snapshot loaded: {Loaded}); keeping the current one: {Reason}")]
    private static partial void LogSyncFailed(ILogger logger, bool loaded, string reason);

    [LoggerMessage(EventId = 303, Level = LogLevel.Warning, Message = "Config version went back from {Applied} to {Current} (Redis lost data?); reloading everything")]
    private static partial void LogVersionWentBack(ILogger logger, long applied, long current);

    [LoggerMessage(EventId = 304, Level = LogLevel.Information, Message = "Change stream does not reach back to version {Applied} (next available {Next}); reloading everything")]
    private static partial void LogGap(ILogger logger, long applied, long next);
}
