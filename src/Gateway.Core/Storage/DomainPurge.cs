using StackExchange.Redis;

namespace Gateway.Core.Storage;

/// <summary>
/// Removes every key of one (already tombstoned) domain without blocking Redis: the keys under its hash
/// tag, found by SCAN on every master (Redis Cluster keeps the slot on one of them, but which one can
/// change during a resharding), and its members of the schedule shards (<c>&lt;domain&gt;|&lt;id&gt;</c>,
/// found by ZSCAN/HSCAN). Deletes go in batches of <see cref="Batch"/> keys with <c>UNLINK</c>, so a
/// domain with 100,000 keys (or a log stream of millions of entries) costs many short commands, never
/// one long one, and memory is freed off Redis' main thread. Idempotent: a crash is resumed by running
/// it again.
/// </summary>
internal sealed class DomainPurge(IConnectionMultiplexer redis, int scheduleShards)
{
    private const int Batch = 500;

    // KEYS: the keys to remove (one slot).
    private const string UnlinkScript = "return redis.call('UNLINK', unpack(KEYS))";

    // KEYS: due, leases. ARGV: members.
    private const string UnscheduleScript = """
        redis.call('ZREM', KEYS[1], unpack(ARGV))
        redis.call('HDEL', KEYS[2], unpack(ARGV))
        return 1
        """;

    public async Task RunAsync(string domain, CancellationToken cancellationToken)
    {
        // Schedule members first: a Deliverer that takes one now finds the message gone (or the domain
        // tombstoned) and drops the entry, so either order is safe; this one leaves nothing to take.
        for (var shard = 0; shard < scheduleShards; shard++)
        {
            await UnscheduleAsync(domain, shard, cancellationToken).ConfigureAwait(false);
        }

        // Queue entries that share a body with other domains' copies release their reference first (SharedBodies).
        await ReleaseSharedBodiesAsync(domain, cancellationToken).ConfigureAwait(false);

        // A second pass catches keys a racing writer without the tombstone check created during the first
        // (each pass is a full SCAN; writers that check the tombstone create nothing after it).
        for (var pass = 0; pass < 3; pass++)
        {
            if (await UnlinkDomainKeysAsync(domain, cancellationToken).ConfigureAwait(false) == 0)
            {
                break;
            }
        }
    }

    private async Task ReleaseSharedBodiesAsync(string domain, CancellationToken cancellationToken)
    {
        var db = redis.GetDatabase();
        await foreach (var e in db.SortedSetScanAsync(RedisKeys.DomainQueue(domain), pageSize: 1000).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            var id = e.Element.ToString();
            var bodyRef = await db.HashGetAsync(RedisKeys.QueueMessage(domain, id), SharedBodies.Field).ConfigureAwait(false);
            if (!bodyRef.IsNullOrEmpty)
            {
                await SharedBodies.ReleaseAsync(db, bodyRef.ToString(), SharedBodies.Member(domain, id)).ConfigureAwait(false);
            }
        }

        // Quarantined copies of big messages reference a shared body too.
        await foreach (var e in db.SortedSetScanAsync(RedisKeys.DomainQuarantine(domain), pageSize: 1000).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            var id = e.Element.ToString();
            var bodyRef = await db.HashGetAsync(RedisKeys.QuarantineMessage(domain, id), SharedBodies.Field).ConfigureAwait(false);
            if (!bodyRef.IsNullOrEmpty)
            {
                await SharedBodies.ReleaseAsync(db, bodyRef.ToString(), SharedBodies.QuarantineMember(domain, id)).ConfigureAwait(false);
            }
        }
    }

    private async Task<long> UnlinkDomainKeysAsync(string domain, CancellationToken cancellationToken)
    {
        var db = redis.GetDatabase();
        long removed = 0;
        var batch = new List<RedisKey>(Batch);
        foreach (var endpoint in redis.GetEndPoints())
        {
            var server = redis.GetServer(endpoint);
            if (!server.IsConnected || server.IsReplica)
            {
                continue;
            }

            await foreach (var key in server.KeysAsync(pattern: RedisKeys.DomainKeyPattern(domain), pageSize: 1000).WithCancellation(cancellationToken).ConfigureAwait(false))
            {
                batch.Add(key);
                if (batch.Count == Batch)
                {
                    removed += await UnlinkAsync(db, batch).ConfigureAwait(false);
                }
            }

            removed += await UnlinkAsync(db, batch).ConfigureAwait(false);
        }

        return removed;
    }

    private static async Task<long> UnlinkAsync(IDatabase db, List<RedisKey> batch)
    {
        if (batch.Count == 0)
        {
            return 0;
        }

        var n = (long)await db.ScriptEvaluateAsync(UnlinkScript, [.. batch]).ConfigureAwait(false);
        batch.Clear();
        return n;
    }

    private async Task UnscheduleAsync(string domain, int shard, CancellationToken cancellationToken)
    {
        var db = redis.GetDatabase();
        var pattern = RedisKeys.ScheduleMemberPattern(domain);
        var members = new List<RedisValue>(Batch);
        await foreach (var e in db.SortedSetScanAsync(RedisKeys.ScheduleDue(shard), pattern, pageSize: 1000).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            members.Add(e.Element);
            if (members.Count == Batch)
            {
                await UnscheduleAsync(db, shard, members).ConfigureAwait(false);
            }
        }

        await foreach (var e in db.HashScanAsync(RedisKeys.ScheduleLeases(shard), pattern, pageSize: 1000).WithCancellation(cancellationToken).ConfigureAwait(false))
        {
            members.Add(e.Name);
            if (members.Count == Batch)
            {
                await UnscheduleAsync(db, shard, members).ConfigureAwait(false);
            }
        }

        await UnscheduleAsync(db, shard, members).ConfigureAwait(false);
    }

    private static async Task UnscheduleAsync(IDatabase db, int shard, List<RedisValue> members)
    {
        if (members.Count == 0)
        {
            return;
        }

        await db.ScriptEvaluateAsync(UnscheduleScript, [RedisKeys.ScheduleDue(shard), RedisKeys.ScheduleLeases(shard)], [.. members]).ConfigureAwait(false);
        members.Clear();
    }
}
