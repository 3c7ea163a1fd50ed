using System.Globalization;
using System.Threading.Channels;
using Gateway.Core.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Gateway.Core.MessageLog;

/// <summary>
/// Appends message log events to the domain's stream (<see cref="RedisKeys.DomainLog"/>). Entry ids are
/// Redis' time-based ids, so retention is a time trim: every XADD carries <c>MINID ~ now - retention</c>.
/// </summary>
public sealed class MessageLogWriter(IConnectionMultiplexer redis, GatewayOptions options, TimeProvider clock)
{
    /// <summary>Writes one event now.</summary>
    public Task AppendAsync(MessageLogEvent e) => Append(redis.GetDatabase(), e);

    /// <summary>Writes several events in one pipeline.</summary>
    public async Task AppendManyAsync(IReadOnlyList<MessageLogEvent> events)
    {
        ArgumentNullException.ThrowIfNull(events);
        var db = redis.GetDatabase();
        var tasks = new Task[events.Count];
        for (var i = 0; i < events.Count; i++)
        {
            tasks[i] = Append(db, events[i]);
        }

        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    private Task Append(IDatabaseAsync db, MessageLogEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var minId = (clock.GetUtcNow() - options.MessageLogRetention).ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
        var args = new List<object>(32) { RedisKeys.DomainLog(e.Domain), "MINID", "~", minId, "*" };
        Add(args, "event", e.Event);
        Add(args, "time", e.Time.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        Add(args, "message_id", e.MessageId);
        Add(args, "direction", e.Direction);
        Add(args, "sender", e.Sender);
        Add(args, "recipient", e.Recipient);
        Add(args, "client_address", e.ClientAddress);
        Add(args, "host", e.Host);
        Add(args, "reply", e.Reply);
        Add(args, "detail", e.Detail);
        Add(args, "program", e.Program);
        return db.ExecuteAsync("XADD", args);
    }

    private static void Add(List<object> args, string name, string? value)
    {
        if (value is not null)
        {
            args.Add(name);
            args.Add(value);
        }
    }
}

/// <summary>
/// Fire-and-forget front of <see cref="MessageLogWriter"/> for hot paths (a policy reply must not wait
/// for Redis): events go to a bounded in-memory queue and are written in batches. When the queue is
/// full (Redis away for long) the oldest events are dropped and counted, never the caller blocked.
/// </summary>
public sealed partial class BufferedMessageLog(MessageLogWriter writer, ILogger<BufferedMessageLog> logger) : BackgroundService
{
    private const int Capacity = 100_000;
    private const int Batch = 512;
    private readonly Channel<MessageLogEvent> _queue = Channel.CreateBounded<MessageLogEvent>(
        new BoundedChannelOptions(Capacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });

    private long _dropped;

    /// <summary>Events lost because the queue overflowed.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Queues an event; returns at once.</summary>
    public void Post(MessageLogEvent e)
    {
        if (!_queue.Writer.TryWrite(e))
        {
            Interlocked.Increment(ref _dropped);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<MessageLogEvent>(Batch);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
            {
                batch.Clear();
                while (batch.Count < Batch && _queue.Reader.TryRead(out var e))
                {
                    batch.Add(e);
                }

                await WriteAsync(batch, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        // Flush what is left at shutdown, best effort.
        batch.Clear();
        while (_queue.Reader.TryRead(out var rest))
        {
            batch.Add(rest);
        }

        if (batch.Count > 0)
        {
            try
            {
                await writer.AppendManyAsync(batch).WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                LogLost(logger, batch.Count, e.Message);
            }
        }
    }

    private async Task WriteAsync(List<MessageLogEvent> batch, CancellationToken stoppingToken)
    {
        for (var delay = TimeSpan.FromMilliseconds(100); ; delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks)))
        {
            try
            {
                await writer.AppendManyAsync(batch).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is RedisException or RedisTimeoutException)
            {
                LogRetry(logger, batch.Count, e.Message);
                await Task.Delay(delay, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(EventId = 400, Level = LogLevel.Warning, Message = "Message log: writing {Count} events failed, retrying: {Reason}")]
    private static partial void LogRetry(ILogger logger, int count, string reason);

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "Message log: {Count} events lost at shutdown: {Reason}")]
    private static partial void LogLost(ILogger logger, int count, string reason);
}
