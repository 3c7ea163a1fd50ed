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
/// <item>reloads everything when the stream no longer reaches back to its version (trimmed);</item>
/// <item>keeps its last good snapshot when Redis looks like it lost data (<see cref="DataLossGuard"/>: the version went
/// backwards, the lineage id changed or vanished, a full load would drop a large share of the domains): it reports
/// unhealthy and waits for an operator to accept the new state (requirements §4 rule 5, §8).</item>
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
    Rules.RuleStore? ruleStore = null,
    ConfigStateStore? stateStore = null) : BackgroundService
{
    private readonly ConfigStateStore _states = stateStore ?? new ConfigStateStore(redis);

    /// <summary>How this program names itself in the held reports an operator lists (host, process, program, instance).</summary>
    public string Instance { get; } = $"{Environment.MachineName}:{Environment.ProcessId}:{AppDomain.CurrentDomain.FriendlyName}:{Guid.NewGuid().ToString("N")[..6]}";

    // Rules load with their domain (same change feed): a rule change reloads the domain like a settings change.
    private readonly Rules.RuleStore _rules = ruleStore ?? new Rules.RuleStore(redis, feed);

    private readonly LineageFile? _lineageFile = string.IsNullOrWhiteSpace(options.LineageFile) ? null : new LineageFile(options.LineageFile);
    private SavedLineage? _written;

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
                    if (!snapshot.IsLoaded && snapshot.Hold is null)
                    {
                        await FirstLoadAsync(stoppingToken).ConfigureAwait(false);
                    }

                    // A writer that died between saving a change and announcing it: announce it for everyone.
                    if (await feed.AnnounceAbandonedAsync(options.ConfigPendingGrace, options.ConfigPendingFinal).ConfigureAwait(false) is > 0 and var announced)
                    {
                        LogAbandonedAnnounced(logger, announced);
                    }

                    if (snapshot.Hold is { } hold)
                    {
                        await CheckHoldAsync(hold, stoppingToken).ConfigureAwait(false);
                    }
                    else
                    {
                        await CatchUpAsync(stoppingToken).ConfigureAwait(false);
                    }

                    RememberLineage();
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

    /// <summary>
    /// The first load. With a <see cref="LineageFile"/> from an earlier run: when Redis's lineage went back, changed or
    /// vanished, or the load would drop a large share of the domains that run had, the program holds with no snapshot
    /// (answering "try later", unhealthy) until an operator accepts the stored state, instead of refusing every domain
    /// Redis forgot.
    /// </summary>
    private async Task FirstLoadAsync(CancellationToken cancellationToken)
    {
        SavedLineage? saved = null;
        if (_lineageFile is not null)
        {
            saved = _lineageFile.Read(out var problem);
            if (problem is not null)
            {
                LogLineageFileUnreadable(logger, _lineageFile.Path, problem);
            }
        }

        if (saved is null)
        {
            await FullLoadAsync(guard: false, cancellationToken).ConfigureAwait(false);
            return;
        }

        var lineage = await _states.GetLineageAsync().ConfigureAwait(false);
        var loss = DataLossGuard.CheckLineage(saved.Version, saved.Epoch, lineage);
        if (loss is null)
        {
            var stored = (int)await _states.CountDomainsAsync().ConfigureAwait(false);
            loss = DataLossGuard.CheckDrop(saved.Domains, stored, options.SnapshotDropGuardPercent, options.SnapshotDropGuardMinimum);
        }

        if (loss is not null && !DataLossGuard.IsAccepted(await _states.GetAcceptanceAsync().ConfigureAwait(false), lineage, saved.Epoch))
        {
            var reason = string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"at start: {loss} (this program last applied {saved.Domains} domains at config version {saved.Version}, recorded in {_lineageFile!.Path})");
            var hold = new SnapshotHold(reason, clock.GetUtcNow(), saved.Epoch);
            snapshot.Hold = hold;
            LogHeldAtStart(logger, reason);
            await _states.ReportHeldAsync(Instance, hold.Since, reason, clock.GetUtcNow()).ConfigureAwait(false);
            return;
        }

        await FullLoadAsync(guard: false, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes the lineage the program now decides from to its <see cref="LineageFile"/> when it changed.</summary>
    private void RememberLineage()
    {
        if (_lineageFile is null || !snapshot.IsLoaded || snapshot.Hold is not null)
        {
            return;
        }

        var now = new SavedLineage(snapshot.Version, snapshot.Epoch, snapshot.Count);
        if (now == _written)
        {
            return;
        }

        try
        {
            _lineageFile.Write(now);
            _written = now;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            LogLineageFileUnwritable(logger, _lineageFile.Path, e.Message);
        }
    }

    /// <summary>
    /// Loads everything; with <paramref name="guard"/>, a load that drops a large share of the domains is not applied
    /// but holds the snapshot (returns false).
    /// </summary>
    private async Task<bool> FullLoadAsync(bool guard, CancellationToken cancellationToken)
    {
        var started = clock.GetTimestamp();
        var lineage = await _states.GetLineageAsync().ConfigureAwait(false);
        var version = lineage.Version;
        var domains = await store.LoadAllAsync(cancellationToken).ConfigureAwait(false);
        if (guard && snapshot.IsLoaded &&
            DataLossGuard.CheckDrop(snapshot.Count, domains.Count, options.SnapshotDropGuardPercent, options.SnapshotDropGuardMinimum) is { } drop &&
            !DataLossGuard.IsAccepted(await _states.GetAcceptanceAsync().ConfigureAwait(false), lineage, snapshot.Epoch))
        {
            await HoldAsync(drop).ConfigureAwait(false);
            return false;
        }

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
        snapshot.Epoch = lineage.Epoch;
        var elapsed = clock.GetElapsedTime(started);
        LogLoaded(logger, domains.Count, version, elapsed.TotalMilliseconds);
        return true;
    }

    private async Task HoldAsync(string reason)
    {
        var hold = new SnapshotHold(reason, clock.GetUtcNow(), snapshot.Epoch);
        snapshot.Hold = hold;
        LogHeld(logger, reason, snapshot.Count, snapshot.Version);
        await _states.ReportHeldAsync(Instance, hold.Since, reason, clock.GetUtcNow()).ConfigureAwait(false);
    }

    /// <summary>While held: lets go once an operator accepted the stored state, else reports the hold again.</summary>
    private async Task CheckHoldAsync(SnapshotHold hold, CancellationToken cancellationToken)
    {
        var lineage = await _states.GetLineageAsync().ConfigureAwait(false);
        var accepted = await _states.GetAcceptanceAsync().ConfigureAwait(false);
        if (!DataLossGuard.IsAccepted(accepted, lineage, hold.HeldEpoch))
        {
            await _states.ReportHeldAsync(Instance, hold.Since, hold.Reason, clock.GetUtcNow()).ConfigureAwait(false);
            return;
        }

        await FullLoadAsync(guard: false, cancellationToken).ConfigureAwait(false);
        snapshot.Hold = null;
        LogAccepted(logger, accepted!.By, snapshot.Count, snapshot.Version);
        await _states.ClearHeldAsync(Instance).ConfigureAwait(false);
        await CatchUpAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task CatchUpAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var applied = snapshot.Version;
            var lineage = await _states.GetLineageAsync().ConfigureAwait(false);
            var current = lineage.Version;
            if (DataLossGuard.CheckLineage(applied, snapshot.Epoch, lineage) is { } loss)
            {
                if (DataLossGuard.IsAccepted(await _states.GetAcceptanceAsync().ConfigureAwait(false), lineage, snapshot.Epoch))
                {
                    // An operator accepted this state (possibly before this program noticed): take it.
                    LogVersionWentBack(logger, loss);
                    await FullLoadAsync(guard: false, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                await HoldAsync(loss).ConfigureAwait(false);
                return;
            }

            // Loaded before the first change set a lineage id: adopt it.
            snapshot.Epoch ??= lineage.Epoch;
            if (current == applied)
            {
                snapshot.MarkSynced(applied, clock.GetUtcNow());
                return;
            }

            var changes = await feed.ReadAfterAsync(applied, StreamBatch).ConfigureAwait(false);
            if (changes.Count == 0 || changes[0].Version != applied + 1)
            {
                LogGap(logger, applied, changes.Count == 0 ? current : changes[0].Version);
                if (!await FullLoadAsync(guard: true, cancellationToken).ConfigureAwait(false))
                {
                    return;
                }

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

    [LoggerMessage(EventId = 303, Level = LogLevel.Warning, Message = "Stored configuration changed lineage ({Reason}) and an operator accepted it; reloading everything")]
    private static partial void LogVersionWentBack(ILogger logger, string reason);

    [LoggerMessage(EventId = 304, Level = LogLevel.Information, Message = "Change stream does not reach back to version {Applied} (next available {Next}); reloading everything")]
    private static partial void LogGap(ILogger logger, long applied, long next);

    [LoggerMessage(EventId = 305, Level = LogLevel.Error, Message = "Redis looks like it lost data: {Reason}. Keeping the last good snapshot ({Count} domains at config version {Version}) and reporting unhealthy until an operator accepts the stored state (gatewayctl config accept)")]
    private static partial void LogHeld(ILogger logger, string reason, int count, long version);

    [LoggerMessage(EventId = 307, Level = LogLevel.Warning, Message = "Announced {Count} configuration changes that were saved but never announced (their writer died in between)")]
    private static partial void LogAbandonedAnnounced(ILogger logger, int count);

    [LoggerMessage(EventId = 308, Level = LogLevel.Error, Message = "Redis looks like it lost data: {Reason}. Answering 'try later' and reporting unhealthy until an operator accepts the stored state (gatewayctl config accept)")]
    private static partial void LogHeldAtStart(ILogger logger, string reason);

    [LoggerMessage(EventId = 309, Level = LogLevel.Warning, Message = "Cannot read the lineage file {Path} ({Reason}); loading what Redis holds without the start-time data loss check")]
    private static partial void LogLineageFileUnreadable(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 310, Level = LogLevel.Warning, Message = "Cannot write the lineage file {Path}: {Reason}")]
    private static partial void LogLineageFileUnwritable(ILogger logger, string path, string reason);

    [LoggerMessage(EventId = 306, Level = LogLevel.Warning, Message = "Operator {By} accepted the stored configuration; snapshot replaced: {Count} domains at config version {Version}")]
    private static partial void LogAccepted(ILogger logger, string by, int count, long version);
}
