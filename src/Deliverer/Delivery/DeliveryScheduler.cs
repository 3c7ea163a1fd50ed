using System.Collections.Concurrent;
using System.Threading.Channels;
using Gateway.Core.Delivery;
using Gateway.Core.Snapshot;
using Gateway.Core.Storage;
using StackExchange.Redis;

namespace Gateway.Deliverer.Delivery;

/// <summary>
/// Runs deliveries: takes due messages from the schedule shards under this process's lease (at most
/// <see cref="DelivererOptions.MaxConcurrentDeliveries"/> at once), renews the leases while they run,
/// and starts messages the intake just stored without a round trip through the schedule. Woken by pub/sub
/// (<see cref="RedisKeys.QueueChannel"/>) and polled every <see cref="DelivererOptions.PollInterval"/>;
/// at start it assumes there is work. A killed process's leases expire and any Deliverer takes them.
/// </summary>
public sealed partial class DeliveryScheduler(
    MessageQueue queue,
    MessageDeliverer deliverer,
    SmtpTransport transport,
    DeadHosts deadHosts,
    DestinationLimiter limiter,
    ConfigSnapshot snapshot,
    IConnectionMultiplexer redis,
    DelivererOptions options,
    QueueOptions queueOptions,
    TimeProvider clock,
    DelivererMetrics metrics,
    ILogger<DeliveryScheduler> logger) : BackgroundService
{
    private const int TakeBatch = 100;
    private readonly ConcurrentDictionary<string, ScheduledItem> _inFlight = new(StringComparer.Ordinal);
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly ConcurrentDictionary<Task, bool> _running = new();
    private int _count;
    private volatile bool _backlog = true;
    private CancellationToken _stopping = CancellationToken.None;

    /// <summary>Messages being attempted by this process now.</summary>
    public int InFlight => Volatile.Read(ref _count);

    /// <summary>Asks the loop to look at the schedule now.</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    /// <summary>
    /// Starts a message this process holds the lease of (the intake's fast path). When all delivery slots
    /// are busy the lease is given back as due now, so any Deliverer with room takes it.
    /// </summary>
    public void DispatchLocal(ScheduledItem item, QueuedMessage message, byte[]? body)
    {
        ArgumentNullException.ThrowIfNull(item);
        if (!_stopping.IsCancellationRequested && TryReserve(item))
        {
            Start(item, (message, body));
            return;
        }

        _backlog = true;
        _ = ReleaseAsync(item);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        await SubscribeAsync(stoppingToken).ConfigureAwait(false);
        var renew = RenewLoopAsync(stoppingToken);
        var housekeeping = HousekeepingLoopAsync(stoppingToken);
        var shard = 0;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var tookFull = false;
                try
                {
                    for (var i = 0; i < queueOptions.ScheduleShards && InFlight < options.MaxConcurrentDeliveries; i++, shard = (shard + 1) % queueOptions.ScheduleShards)
                    {
                        var room = Math.Min(TakeBatch, options.MaxConcurrentDeliveries - InFlight);
                        var items = await queue.TakeDueAsync(shard, room).ConfigureAwait(false);
                        tookFull |= items.Count == room;
                        _backlog = tookFull;
                        foreach (var item in items)
                        {
                            if (limiter.Running(item.Domain) >= options.MaxConcurrentPerDestination)
                            {
                                // An inbound copy whose destination (its managed domain) is full: back after BusyRetryDelay
                                // without taking a delivery slot or reading the message, so a black hole's queue cannot crowd
                                // the slots other domains' mail needs (requirements §11.6; bench/deliverer (s)).
                                _ = PostponeAsync(item);
                                continue;
                            }

                            if (TryReserve(item))
                            {
                                Start(item, null);
                            }
                            else
                            {
                                // The intake's own dispatches filled the slots since `room` was computed: hand the lease back
                                // at once, or the message would wait for the lease to expire (60 s; seen in bench/deliverer (o)).
                                _backlog = true;
                                _ = ReleaseAsync(item);
                            }
                        }
                    }
                }
                catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
                {
                    LogPollFailed(logger, e.Message);
                }

                if (tookFull && InFlight < options.MaxConcurrentDeliveries)
                {
                    continue;
                }

                using var timer = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                timer.CancelAfter(options.PollInterval);
                try
                {
                    await _wake.Reader.ReadAsync(timer.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
                {
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        // Let running deliveries notice the stop and hand their leases back.
        await Task.WhenAll(_running.Keys.Append(renew).Append(housekeeping)).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None)
            .ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        await transport.DisposeAsync().ConfigureAwait(false);
    }

    private bool TryReserve(ScheduledItem item)
    {
        if (Interlocked.Increment(ref _count) > options.MaxConcurrentDeliveries || !_inFlight.TryAdd(item.Member, item))
        {
            // Already ours (its lease expired while running and was taken again) or no room.
            Interlocked.Decrement(ref _count);
            return false;
        }

        return true;
    }

    private void Start(ScheduledItem item, (QueuedMessage, byte[]?)? known)
    {
        var task = Task.Run(() => RunOneAsync(item, known));
        _running.TryAdd(task, true);
        _ = task.ContinueWith(t => _running.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task RunOneAsync(ScheduledItem item, (QueuedMessage, byte[]?)? known)
    {
        metrics.InFlight(1);
        try
        {
            await deliverer.RunAsync(item, known, _stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            await ReleaseAsync(item).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Redis away, or a bug: the lease expires and the message is attempted again (at-least-once).
            LogDeliveryFailed(logger, item.Id, item.Domain, e);
        }
        finally
        {
            metrics.InFlight(-1);
            _inFlight.TryRemove(item.Member, out _);
            Interlocked.Decrement(ref _count);
            // A freed slot matters only when due work was left behind for lack of room.
            if (_backlog)
            {
                Wake();
            }
        }
    }

    private async Task PostponeAsync(ScheduledItem item)
    {
        try
        {
            await queue.CompleteAsync(item, clock.GetUtcNow() + options.BusyRetryDelay).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
        {
            // The lease expires instead.
            LogPollFailed(logger, e.Message);
        }
    }

    private async Task ReleaseAsync(ScheduledItem item)
    {
        try
        {
            await queue.CompleteAsync(item, clock.GetUtcNow()).ConfigureAwait(false);
            await queue.WakeAsync(item.Shard).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
        {
            // The lease expires instead.
            LogPollFailed(logger, e.Message);
        }
    }

    private async Task SubscribeAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await redis.GetSubscriber().SubscribeAsync(RedisKeys.QueueChannel, (_, _) => Wake()).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is RedisException or RedisTimeoutException)
            {
                // Polling still finds the work; keep trying to subscribe without holding up the start.
                LogPollFailed(logger, e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), clock, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    private async Task RenewLoopAsync(CancellationToken stoppingToken)
    {
        var period = queueOptions.Lease / 3;
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(period, clock, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            foreach (var shard in _inFlight.Values.GroupBy(i => i.Shard))
            {
                try
                {
                    await queue.RenewAsync(shard.Key, shard.Select(i => i.Member).ToList()).ConfigureAwait(false);
                }
                catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
                {
                    LogPollFailed(logger, e.Message);
                }
            }
        }
    }

    private async Task HousekeepingLoopAsync(CancellationToken stoppingToken)
    {
        var lastSweep = clock.GetTimestamp();
        var period = options.ConnectionCacheTime > TimeSpan.Zero ? TimeSpan.FromTicks(Math.Min(options.ConnectionCacheTime.Ticks, TimeSpan.TicksPerSecond)) : TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            await Task.Delay(period, clock, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await transport.PruneAsync().ConfigureAwait(false);
            try
            {
                await deadHosts.RefreshAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
            {
                LogPollFailed(logger, e.Message);
            }

            if (clock.GetElapsedTime(lastSweep) < options.SweepInterval || !snapshot.IsLoaded)
            {
                continue;
            }

            lastSweep = clock.GetTimestamp();
            try
            {
                var found = await queue.SweepAsync(snapshot.All.Select(d => d.Name).ToList(), stoppingToken).ConfigureAwait(false);
                if (found > 0)
                {
                    LogSwept(logger, found);
                    Wake();
                }
            }
            catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
            {
                LogPollFailed(logger, e.Message);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
            }
        }
    }

    [LoggerMessage(EventId = 1300, Level = LogLevel.Warning, Message = "Delivery schedule: Redis unavailable: {Reason}")]
    private static partial void LogPollFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 1301, Level = LogLevel.Error, Message = "Delivery of {Id} ({Domain}) failed; it will be attempted again when its lease expires")]
    private static partial void LogDeliveryFailed(ILogger logger, string id, string domain, Exception exception);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Warning, Message = "Delivery schedule: {Count} queued messages had lost their schedule entry and were scheduled again")]
    private static partial void LogSwept(ILogger logger, int count);
}
