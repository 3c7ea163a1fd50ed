using System.Diagnostics.Metrics;
using System.Globalization;
using System.Threading.Channels;
using Gateway.Core.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Gateway.Core.MessageLog;

/// <summary>
/// Appends message log events to the domain's stream (<see cref="RedisKeys.DomainLog"/>). Entry ids are
/// Redis' time-based ids, so retention is a time trim: every XADD carries <c>MINID ~ now - retention</c>,
/// and <see cref="TrimAsync"/> trims exactly for domains that stay quiet.
/// </summary>
public sealed class MessageLogWriter(IConnectionMultiplexer redis, GatewayOptions options, TimeProvider clock)
{
    // KEYS: log, domain config. ARGV: min id, max entries, field, value, ... Nothing is written for a deleted domain
    // (no settings hash: DeleteDomain's tombstone), so a late event cannot bring a purged log back. Trimmed by time
    // and by count (requirements §11.9): a flood of refused RCPTs cannot grow one domain's log past the cap.
    private const string AppendScript = """
        if redis.call('EXISTS', KEYS[2]) == 0 then return false end
        local id = redis.call('XADD', KEYS[1], 'MINID', '~', ARGV[1], '*', unpack(ARGV, 3))
        if redis.call('XLEN', KEYS[1]) > tonumber(ARGV[2]) then redis.call('XTRIM', KEYS[1], 'MAXLEN', '~', ARGV[2]) end
        return id
        """;

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
        var args = new List<RedisValue>(32) { MinId(), options.MessageLogMaxEntries };
        foreach (var (name, value) in MessageLogFields.Of(e))
        {
            args.Add(name);
            args.Add(value);
        }

        return db.ScriptEvaluateAsync(AppendScript, [RedisKeys.DomainLog(e.Domain), RedisKeys.Domain(e.Domain)], [.. args]);
    }

    /// <summary>
    /// Trims one domain's log to the retention exactly (the append path trims approximately, whole stream
    /// nodes at a time, and only when the domain gets new events): the periodic job for quiet domains.
    /// </summary>
    public async Task<long> TrimAsync(string domain)
    {
        var db = redis.GetDatabase();
        var byTime = (long)await db.ExecuteAsync("XTRIM", RedisKeys.DomainLog(domain), "MINID", MinId()).ConfigureAwait(false);
        return byTime + (long)await db.ExecuteAsync("XTRIM", RedisKeys.DomainLog(domain), "MAXLEN", options.MessageLogMaxEntries).ConfigureAwait(false);
    }

    private string MinId() =>
        (clock.GetUtcNow() - options.MessageLogRetention).ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Fire-and-forget front of <see cref="MessageLogWriter"/> for hot paths (a policy reply must not wait
/// for Redis): events go to a bounded in-memory queue and are written in batches. When the queue is
/// full (Redis away for long) the oldest events are dropped and counted, never the caller blocked.
/// </summary>
public sealed partial class BufferedMessageLog : BackgroundService
{
    /// <summary>The meter of the buffer's instruments.</summary>
    public const string MeterName = "Gateway.MessageLog";

    private const int Capacity = 100_000;
    private const int Batch = 512;
    private readonly Channel<MessageLogEvent> _queue;
    private readonly MessageLogWriter _writer;
    private readonly ILogger<BufferedMessageLog> _logger;
    private long _dropped;

    /// <param name="meters">Where the <c>gateway.messagelog.dropped</c> counter (meter <c>Gateway.MessageLog</c>) is created; none in unit tests.</param>
    /// <param name="capacity">Events held while Redis is slow or away; the oldest go first when it is full.</param>
    public BufferedMessageLog(MessageLogWriter writer, ILogger<BufferedMessageLog> logger, IMeterFactory? meters = null, int capacity = Capacity)
    {
        // Requirements §7.4, §11.9: the log is bounded, and what it loses is counted (docs/telemetry.md).
        meters?.Create(MeterName).CreateObservableCounter("gateway.messagelog.dropped", () => Dropped, "{event}",
            "Message log events dropped because the in-memory buffer was full (Redis away or too slow): the oldest go first.");
        _writer = writer;
        _logger = logger;
        // DropOldest never refuses a write: the channel tells which event it dropped, and that is what is counted.
        _queue = Channel.CreateBounded<MessageLogEvent>(
            new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true },
            _ => Interlocked.Increment(ref _dropped));
    }

    /// <summary>Events lost because the queue overflowed (metric <c>gateway.messagelog.dropped</c>).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Queues an event; returns at once.</summary>
    public void Post(MessageLogEvent e) => _queue.Writer.TryWrite(e);

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
                await _writer.AppendManyAsync(batch).WaitAsync(TimeSpan.FromSeconds(2), CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                LogLost(_logger, batch.Count, e.Message);
            }
        }
    }

    private async Task WriteAsync(List<MessageLogEvent> batch, CancellationToken stoppingToken)
    {
        for (var delay = TimeSpan.FromMilliseconds(100); ; delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks)))
        {
            try
            {
                await _writer.AppendManyAsync(batch).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (e is RedisException or RedisTimeoutException)
            {
                LogRetry(_logger, batch.Count, e.Message);
                await Task.Delay(delay, stoppingToken).ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(EventId = 400, Level = LogLevel.Warning, Message = "Message log: writing {Count} events failed, retrying: {Reason}")]
    private static partial void LogRetry(ILogger logger, int count, string reason);

    [LoggerMessage(EventId = 401, Level = LogLevel.Warning, Message = "Message log: {Count} events lost at shutdown: {Reason}")]
    private static partial void LogLost(ILogger logger, int count, string reason);
}
