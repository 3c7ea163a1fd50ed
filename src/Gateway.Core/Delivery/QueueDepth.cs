using Gateway.Core.Storage;
using StackExchange.Redis;

namespace Gateway.Core.Delivery;

/// <summary>How many messages the whole queue holds, fleet-wide (every Deliverer shares the schedule).</summary>
/// <param name="Scheduled">Entries in the schedule shards: every queued message, due or not, held or not.</param>
/// <param name="Due">Of those, due now and held by no Deliverer: the backlog waiting for a free delivery slot.</param>
public readonly record struct QueueDepthSample(long Scheduled, long Due);

/// <summary>Reads the queue's size from the schedule shards (one pipelined ZCARD and ZCOUNT per shard).</summary>
public sealed class QueueDepth(IConnectionMultiplexer redis, QueueOptions options, TimeProvider clock)
{
    public async Task<QueueDepthSample> ReadAsync()
    {
        var db = redis.GetDatabase();
        // A held (leased) entry's score is its lease expiry, in the future: ZCOUNT up to now counts only free due work.
        var now = MessageQueue.Score(clock.GetUtcNow());
        var cards = new Task<long>[options.ScheduleShards];
        var due = new Task<long>[options.ScheduleShards];
        for (var shard = 0; shard < options.ScheduleShards; shard++)
        {
            cards[shard] = db.SortedSetLengthAsync(RedisKeys.ScheduleDue(shard));
            due[shard] = db.SortedSetLengthAsync(RedisKeys.ScheduleDue(shard), double.NegativeInfinity, now);
        }

        var scheduled = await Task.WhenAll(cards).ConfigureAwait(false);
        var free = await Task.WhenAll(due).ConfigureAwait(false);
        return new QueueDepthSample(scheduled.Sum(), free.Sum());
    }
}
