using Gateway.Core.Mail;
using System.Globalization;
using System.IO.Hashing;
using System.Security.Cryptography;
using System.Text;
using Gateway.Core.Storage;
using StackExchange.Redis;

namespace Gateway.Core.Delivery;

/// <summary>Result of <see cref="MessageQueue.RetryNowAsync"/>.</summary>
public enum RetryNowOutcome
{
    /// <summary>Due now; a Deliverer takes it within moments.</summary>
    Scheduled,

    /// <summary>A Deliverer is attempting it at this moment.</summary>
    InFlight,

    NotFound,
}

/// <summary>
/// The durable delivery queue in Redis (requirements §6). Layout (docs/architecture.md "Delivery queue"):
/// <list type="bullet">
/// <item>each message in its owning domain's slot: <c>gw:{d:&lt;domain&gt;}:msg:&lt;id&gt;</c> (envelope with
/// per-recipient state, and body), indexed in <c>gw:{d:&lt;domain&gt;}:queue</c> by next attempt;</item>
/// <item>due work in <see cref="QueueOptions.ScheduleShards"/> sorted sets <c>gw:{sched:N}:due</c>
/// (member <c>&lt;domain&gt;|&lt;id&gt;</c>, score = due time) with a lease hash beside each. A worker takes
/// a member by moving its score to now + lease and recording its token, inside that one key's slot.</item>
/// </list>
/// Every script touches one slot. A write that spans the two (store, then schedule; complete, then
/// reschedule) is ordered so that a crash in between repeats work (at-least-once), never loses a message;
/// <see cref="SweepAsync"/> re-schedules anything the schedule lost.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1711:Identifiers should not have incorrect suffix",
    Justification = "It is a queue of mail messages; the name is the enqueue API other issues call.")]
public sealed class MessageQueue(IConnectionMultiplexer redis, QueueOptions options, TimeProvider clock)
{
    // KEYS: due, leases. ARGV: now, lease until, limit, token.
    private const string TakeScript = """
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
        for _, m in ipairs(due) do
          redis.call('ZADD', KEYS[1], ARGV[2], m)
          redis.call('HSET', KEYS[2], m, ARGV[4])
        end
        return due
        """;

    // KEYS: due, leases. ARGV: lease until, token, members...
    private const string RenewScript = """
        local n = 0
        for i = 3, #ARGV do
          if redis.call('HGET', KEYS[2], ARGV[i]) == ARGV[2] then
            redis.call('ZADD', KEYS[1], 'XX', ARGV[1], ARGV[i])
            n = n + 1
          end
        end
        return n
        """;

    // KEYS: due, leases. ARGV: member, token, next due ('' = remove). Only the lease holder may complete.
    private const string CompleteScript = """
        if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
        redis.call('HDEL', KEYS[2], ARGV[1])
        if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
        return 1
        """;

    // Every write that can create a key in a domain's slot first checks that the domain's settings hash
    // exists (KEYS[1] below): deleting it is DeleteDomain's tombstone, so a Deliverer racing the purge of a
    // deleted domain cannot bring its keys back (docs/message-log.md "Deletion").

    // KEYS: domain config, message, queue index. ARGV: id, env, body, score, shared body id ('' = the body is ARGV[3]; else
    // ARGV[3] is the copy's prefix in front of the shared body, '' for none).
    private const string StoreScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        if ARGV[5] == '' then
          redis.call('HSET', KEYS[2], 'env', ARGV[2], 'body', ARGV[3])
        else
          redis.call('HSET', KEYS[2], 'env', ARGV[2], 'bodyref', ARGV[5])
          if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'body', ARGV[3]) end
        end
        redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
        return 1
        """;

    // KEYS: domain config, round robin counter.
    private const string NextTurnScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
        return redis.call('INCR', KEYS[2])
        """;

    // KEYS: message, queue index, domain config. ARGV: id, env ('' = finished: delete), next attempt score, claim ('*' = not
    // fenced). Returns 0 when the message is gone, 2 when another taker has claimed it since (security review L1: the
    // lease lives in the schedule shard's slot, so the fence is the claim field in the message's own hash).
    private const string SaveStateScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        if ARGV[4] ~= '*' and (redis.call('HGET', KEYS[1], 'claim') or '') ~= ARGV[4] then return 2 end
        if redis.call('EXISTS', KEYS[3]) == 0 then
          redis.call('DEL', KEYS[1])
          redis.call('ZREM', KEYS[2], ARGV[1])
          return 0
        end
        if ARGV[2] == '' then
          redis.call('DEL', KEYS[1])
          redis.call('ZREM', KEYS[2], ARGV[1])
        else
          redis.call('HSET', KEYS[1], 'env', ARGV[2])
          redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
        end
        return 1
        """;

    // KEYS: message, domain config. ARGV: claim. Reads a message for an attempt and marks it claimed by this taker
    // (security review L1); nothing when it is gone or its domain tombstoned. Returns {env, body, bodyref}.
    private const string ClaimScript = """
        if redis.call('EXISTS', KEYS[2]) == 0 then return false end
        local v = redis.call('HMGET', KEYS[1], 'env', 'body', 'bodyref')
        if not v[1] then return false end
        redis.call('HSET', KEYS[1], 'claim', ARGV[1])
        return v
        """;

    // KEYS: message, queue index. ARGV: id, expected env, new env, score. Compare-and-set for operator edits.
    private const string ReplaceEnvScript = """
        if redis.call('HGET', KEYS[1], 'env') ~= ARGV[2] then return 0 end
        redis.call('HSET', KEYS[1], 'env', ARGV[3])
        redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
        return 1
        """;

    // KEYS: message, queue index. ARGV: id. Returns {env, body, bodyref} of the removed message, or nil.
    private const string RemoveScript = """
        local v = redis.call('HMGET', KEYS[1], 'env', 'body', 'bodyref')
        if not v[1] then return false end
        redis.call('DEL', KEYS[1])
        redis.call('ZREM', KEYS[2], ARGV[1])
        return v
        """;

    // KEYS: due, leases. ARGV: member, due. Not while a worker holds it (it is being attempted now).
    private const string MakeDueScript = """
        if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
        redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
        return 1
        """;

    private IDatabase Db => redis.GetDatabase();

    /// <summary>This process's lease token: leases it takes carry it, so only it can renew or complete them.</summary>
    public string Token { get; } = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));

    public QueueOptions Options => options;

    /// <summary>
    /// Puts a message into the queue, durably, due at once, and wakes the Deliverers. The public entry
    /// for other programs (the ControlPlane's test message): returns the message id.
    /// </summary>
    public async Task<string> EnqueueAsync(QueueEnvelope envelope, ReadOnlyMemory<byte> rawMessage, CancellationToken cancellationToken = default)
    {
        var item = await EnqueueLeasedAsync(envelope, rawMessage, cancellationToken).ConfigureAwait(false);
        await CompleteAsync(item, clock.GetUtcNow()).ConfigureAwait(false);
        await WakeAsync(item.Shard).ConfigureAwait(false);
        return item.Id;
    }

    /// <summary>
    /// Stores a message and schedules it already leased to this process, so the caller can deliver it
    /// at once without another worker racing it (the intake's fast path). The caller must attempt it or
    /// <see cref="CompleteAsync"/> it with a due time; if the process dies the lease expires and any
    /// Deliverer takes it. Both writes are sent together; the caller answers 250 only after this returns.
    /// </summary>
    public async Task<ScheduledItem> EnqueueLeasedAsync(QueueEnvelope envelope, ReadOnlyMemory<byte> rawMessage, CancellationToken cancellationToken = default) =>
        (await EnqueueLeasedWithMessageAsync(envelope, rawMessage, cancellationToken: cancellationToken).ConfigureAwait(false)).Item;

    /// <summary><see cref="EnqueueLeasedAsync"/> that also returns the stored message, so the caller can deliver it without reading it back.</summary>
    /// <param name="sharedBody">
    /// The id of a body stored with <see cref="StoreSharedBodyAsync"/> (naming this entry): the entry references it instead of
    /// holding <paramref name="rawMessage"/> (which is still the message's content, for its size and the caller's fast path).
    /// </param>
    /// <param name="size">The message's size when <paramref name="rawMessage"/> is only its head (a body received in pieces).</param>
    /// <param name="prefix">With <paramref name="sharedBody"/>: the copy's own bytes in front of the shared body (<see cref="QueuedMessage.BodyPrefix"/>).</param>
    /// <param name="bodyFrom">With <paramref name="sharedBody"/>: where the copy's content starts in it (<see cref="QueuedMessage.BodyFrom"/>).</param>
    public async Task<(ScheduledItem Item, QueuedMessage Message)> EnqueueLeasedWithMessageAsync(QueueEnvelope envelope, ReadOnlyMemory<byte> rawMessage,
        string? sharedBody = null, long? size = null, ReadOnlyMemory<byte> prefix = default, long bodyFrom = 0, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        cancellationToken.ThrowIfCancellationRequested();
        var now = clock.GetUtcNow();
        var message = new QueuedMessage
        {
            Id = envelope.Id is { } given && MessageId.IsValid(given) ? given : MessageId.New(now),
            Domain = envelope.Domain,
            Direction = envelope.Direction,
            Sender = envelope.Sender,
            Recipients = envelope.Recipients.Select(r => envelope.RecipientDsn?.TryGetValue(r, out var dsn) == true
                ? new QueuedRecipient { Address = r, Notify = dsn.Notify, OriginalRecipient = dsn.OriginalRecipient }
                : new QueuedRecipient { Address = r }).ToList(),
            DsnRet = envelope.DsnRet,
            DsnEnvelopeId = envelope.DsnEnvelopeId,
            CreateTime = now,
            NextAttempt = now,
            Size = size ?? rawMessage.Length,
            ClientAddress = envelope.ClientAddress,
            Utf8 = envelope.Utf8,
            IsDsn = envelope.IsDsn,
            BodyRef = sharedBody,
            BodyFrom = sharedBody is null ? 0 : bodyFrom,
            BodyPrefix = sharedBody is null || prefix.IsEmpty ? null : prefix.ToArray(),
            DsnGroup = envelope.DsnGroup,
            DsnGroupSize = envelope.DsnGroup is null ? 0 : envelope.DsnGroupSize,
            Claim = string.Empty, // stored here, not taken by anyone yet: a later taker's claim fences this copy's save
        };
        var item = new ScheduledItem(message.Domain, message.Id, ShardOf(message.Id), Token);
        var db = Db;

        // Schedule first (leased to us, so nobody takes it before the message exists), then the message;
        // a crash between them leaves either a lease that expires onto a missing message (dropped by the
        // worker) or a message without schedule entry (found by SweepAsync). Sent together: one round trip.
        var schedule = db.CreateTransaction();
        var leaseUntil = Score(now + options.Lease);
        _ = schedule.SortedSetAddAsync(RedisKeys.ScheduleDue(item.Shard), item.Member, leaseUntil);
        _ = schedule.HashSetAsync(RedisKeys.ScheduleLeases(item.Shard), item.Member, Token);
        var scheduled = schedule.ExecuteAsync();
        var stored = db.ScriptEvaluateAsync(StoreScript,
            [RedisKeys.Domain(message.Domain), RedisKeys.QueueMessage(message.Domain, message.Id), RedisKeys.DomainQueue(message.Domain)],
            [message.Id, QueueJson.Serialize(message), sharedBody is null ? rawMessage : prefix, Score(now), sharedBody ?? string.Empty]);
        if (!await scheduled.ConfigureAwait(false))
        {
            throw new RedisException("queue write was not applied");
        }

        if ((long)await stored.ConfigureAwait(false) == 0)
        {
            // The domain was deleted since the caller looked it up: nothing of it may be written any more.
            await CompleteAsync(item, null).ConfigureAwait(false);
            throw new DomainDeletedException(message.Domain);
        }

        return (item, message);
    }

    /// <summary>
    /// Stores one body for the queue entries <paramref name="entries"/> (domain, id) of one message, before they are enqueued with
    /// <c>sharedBody</c> = <paramref name="bodyId"/>: a message to N domains is stored once (<see cref="SharedBodies"/>).
    /// </summary>
    public Task StoreSharedBodyAsync(string bodyId, ReadOnlyMemory<byte> body, IEnumerable<(string Domain, string Id)> entries)
    {
        ArgumentNullException.ThrowIfNull(entries);
        return SharedBodies.StoreAsync(Db, bodyId, body, entries.Select(e => SharedBodies.Member(e.Domain, e.Id)).ToList(), options.MaxLifetime + TimeSpan.FromDays(1));
    }

    /// <summary>
    /// Makes the spool of a message received in pieces the shared body of the queue entries <paramref name="entries"/>, before
    /// they are enqueued with <c>sharedBody</c> = <paramref name="bodyId"/> (<see cref="SharedBodies.CommitSpoolAsync"/>).
    /// False when the spool is not all there.
    /// </summary>
    /// <param name="held">Quarantine entries (domain, id) that reference the body too (<see cref="SharedBodies.QuarantineMember"/>).</param>
    /// <param name="heldFor">How long the quarantine keeps them: the body then lives that long (and a day) at least.</param>
    public Task<bool> CommitSpoolAsync(string bodyId, long length, IEnumerable<(string Domain, string Id)> entries,
        IEnumerable<(string Domain, string Id)>? held = null, TimeSpan heldFor = default)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var members = entries.Select(e => SharedBodies.Member(e.Domain, e.Id)).Concat((held ?? []).Select(e => SharedBodies.QuarantineMember(e.Domain, e.Id))).ToList();
        var ttl = (options.MaxLifetime > heldFor ? options.MaxLifetime : heldFor) + TimeSpan.FromDays(1);
        return SharedBodies.CommitSpoolAsync(Db, bodyId, length, members, ttl);
    }

    /// <summary>
    /// Puts a copy that references a stored shared body into the queue (a quarantined copy of a big message being released:
    /// docs/architecture.md "Bodies in pieces"), due now: its reference is added first, so the body outlives the quarantine
    /// entry the caller removes next. False when the body is gone (nothing is queued).
    /// </summary>
    public async Task<bool> EnqueueSharedAsync(QueueEnvelope envelope, string bodyId, ReadOnlyMemory<byte> prefix, long bodyFrom, long size,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        var id = envelope.Id is { } given && MessageId.IsValid(given) ? given : throw new ArgumentException("a copy of a shared body needs its id", nameof(envelope));
        var member = SharedBodies.Member(envelope.Domain, id);
        if (!await SharedBodies.AddReferenceAsync(Db, bodyId, member, options.MaxLifetime + TimeSpan.FromDays(1)).ConfigureAwait(false))
        {
            return false;
        }

        try
        {
            var (item, _) = await EnqueueLeasedWithMessageAsync(envelope, ReadOnlyMemory<byte>.Empty, bodyId, size, prefix, bodyFrom, cancellationToken)
                .ConfigureAwait(false);
            await CompleteAsync(item, clock.GetUtcNow()).ConfigureAwait(false);
            await WakeAsync(item.Shard).ConfigureAwait(false);
            return true;
        }
        catch (DomainDeletedException)
        {
            await SharedBodies.ReleaseAsync(Db, bodyId, member).ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The database the bodies live in: the intake appends a big message's pieces to it (<see cref="SharedBodies.AppendSpoolAsync"/>).</summary>
    public IDatabase BodyDatabase => Db;

    /// <summary>A shared body as a stream read in blocks (<see cref="SharedBodyStream"/>); null when it is gone.</summary>
    public Task<SharedBodyStream?> OpenSharedBodyAsync(string bodyId) => SharedBodyStream.OpenAsync(Db, RedisKeys.SharedBody(bodyId));

    /// <summary>
    /// The content of an entry that references a shared body, as a stream read in blocks: its prefix (if any) in front of the body
    /// from <see cref="QueuedMessage.BodyFrom"/> (<see cref="SplicedStream"/>); null when the body is gone.
    /// </summary>
    public async Task<Stream?> OpenContentAsync(QueuedMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var body = await OpenSharedBodyAsync(message.BodyRef ?? throw new ArgumentException("the entry has no shared body", nameof(message))).ConfigureAwait(false);
        return body is null || (message.BodyPrefix is not { Length: > 0 } && message.BodyFrom == 0) ? body
            : new SplicedStream(message.BodyPrefix ?? [], body, message.BodyFrom);
    }

    /// <summary>The first <paramref name="max"/> bytes of an entry's content over a shared body (its prefix, then the body); null when it is gone.</summary>
    public Task<byte[]?> ReadContentHeadAsync(QueuedMessage message, int max)
    {
        ArgumentNullException.ThrowIfNull(message);
        return SharedBodies.ReadCopyHeadAsync(Db, message.BodyRef ?? throw new ArgumentException("the entry has no shared body", nameof(message)), message.BodyPrefix,
            message.BodyFrom, max);
    }

    /// <summary>The first <paramref name="max"/> bytes of a shared body (what a DSN returns at most); null when it is gone.</summary>
    public Task<byte[]?> ReadSharedBodyHeadAsync(string bodyId, int max) => SharedBodyStream.ReadHeadAsync(Db, RedisKeys.SharedBody(bodyId), max);

    /// <summary>Releases the shared body reference of a queue entry that is gone (no-op for an entry with its own body).</summary>
    public async Task ReleaseBodyAsync(QueuedMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (message.BodyRef is { } bodyId)
        {
            await SharedBodies.ReleaseAsync(Db, bodyId, SharedBodies.Member(message.Domain, message.Id)).ConfigureAwait(false);
        }
    }

    /// <summary>Takes up to <paramref name="limit"/> due messages of one shard under this process's lease.</summary>
    public async Task<IReadOnlyList<ScheduledItem>> TakeDueAsync(int shard, int limit)
    {
        var now = clock.GetUtcNow();
        var result = (RedisResult[]?)await Db.ScriptEvaluateAsync(TakeScript,
            [RedisKeys.ScheduleDue(shard), RedisKeys.ScheduleLeases(shard)],
            [Score(now), Score(now + options.Lease), limit, Token]).ConfigureAwait(false);
        var items = new List<ScheduledItem>(result?.Length ?? 0);
        foreach (var r in result ?? [])
        {
            if (ScheduledItem.TryParseMember(r.ToString(), out var domain, out var id))
            {
                items.Add(new ScheduledItem(domain, id, shard, Token));
            }
            else
            {
                // Not ours to understand: drop it rather than take it again forever.
                await Db.ScriptEvaluateAsync(CompleteScript, [RedisKeys.ScheduleDue(shard), RedisKeys.ScheduleLeases(shard)], [r.ToString(), Token, string.Empty])
                    .ConfigureAwait(false);
            }
        }

        return items;
    }

    /// <summary>Extends the leases this process holds in one shard; returns how many it still held.</summary>
    public async Task<int> RenewAsync(int shard, IReadOnlyList<string> members)
    {
        ArgumentNullException.ThrowIfNull(members);
        if (members.Count == 0)
        {
            return 0;
        }

        var args = new RedisValue[members.Count + 2];
        args[0] = Score(clock.GetUtcNow() + options.Lease);
        args[1] = Token;
        for (var i = 0; i < members.Count; i++)
        {
            args[i + 2] = members[i];
        }

        return (int)await Db.ScriptEvaluateAsync(RenewScript, [RedisKeys.ScheduleDue(shard), RedisKeys.ScheduleLeases(shard)], args).ConfigureAwait(false);
    }

    /// <summary>Ends a lease: the member becomes due at <paramref name="next"/>, or leaves the schedule when null. False if the lease was lost.</summary>
    public async Task<bool> CompleteAsync(ScheduledItem item, DateTimeOffset? next)
    {
        ArgumentNullException.ThrowIfNull(item);
        var r = (long)await Db.ScriptEvaluateAsync(CompleteScript, [RedisKeys.ScheduleDue(item.Shard), RedisKeys.ScheduleLeases(item.Shard)],
            [item.Member, item.Token, next is { } n ? Score(n) : string.Empty]).ConfigureAwait(false);
        return r == 1;
    }

    /// <summary>
    /// The stored message and body, or null when it is gone (delivered, deleted) or its domain was deleted
    /// (tombstoned, purge not yet through: the message is dropped, never delivered).
    /// </summary>
    public async Task<(QueuedMessage Message, byte[] Body)?> LoadAsync(string domain, string id)
    {
        if (await LoadForDeliveryAsync(domain, id).ConfigureAwait(false) is not var (message, body))
        {
            return null;
        }

        if (body is not null)
        {
            return (message, body);
        }

        // A copy over a shared body, whole (operators' reads; a delivery streams it instead).
        using var content = await OpenContentAsync(message).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"the shared body {message.BodyRef} of message {domain}/{id} is missing");
        var all = new byte[content.Length];
        await content.ReadExactlyAsync(all).ConfigureAwait(false);
        return (message, all);
    }

    /// <summary>
    /// <see cref="LoadAsync"/> for a delivery: a body of its own is read (a small message, or one written by an earlier
    /// version), a shared body is not (null): the delivery streams it (<see cref="OpenSharedBodyAsync"/>), so it never
    /// holds a big message whole (requirements §11).
    /// </summary>
    public async Task<(QueuedMessage Message, byte[]? Body)?> LoadForDeliveryAsync(string domain, string id)
    {
        var db = Db;
        var read = db.HashGetAsync(RedisKeys.QueueMessage(domain, id), ["env", "body", SharedBodies.Field]);
        var managed = db.KeyExistsAsync(RedisKeys.Domain(domain));
        var v = await read.ConfigureAwait(false);
        if (v[0].IsNull || !await managed.ConfigureAwait(false))
        {
            return null;
        }

        var message = QueueJson.Deserialize(v[0].ToString());
        return message.BodyRef is null ? (message, v[1].IsNull ? [] : (byte[])v[1]!) : (WithPrefix(message, v[1]), null);
    }

    /// <summary>
    /// <see cref="LoadForDeliveryAsync"/> for the worker that took <paramref name="item"/>: the message is marked with a claim of this
    /// take (unique per take, also within one process), and the returned copy carries it, so that
    /// <see cref="SaveStateAsync"/> of a worker whose lease expired meanwhile is refused (security review L1).
    /// </summary>
    public async Task<(QueuedMessage Message, byte[]? Body)?> LoadForAttemptAsync(ScheduledItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        var claim = $"{Token}.{Interlocked.Increment(ref _claims).ToString(CultureInfo.InvariantCulture)}";
        var r = await Db.ScriptEvaluateAsync(ClaimScript, [RedisKeys.QueueMessage(item.Domain, item.Id), RedisKeys.Domain(item.Domain)], [claim])
            .ConfigureAwait(false);
        if (r.IsNull || (RedisValue[]?)r is not { Length: 3 } v)
        {
            return null;
        }

        // As LoadForDeliveryAsync: a body of its own is returned, a shared one is streamed by the delivery (null here).
        var message = QueueJson.Deserialize(v[0].ToString()) with { Claim = claim };
        return message.BodyRef is null ? (message, v[1].IsNull ? [] : (byte[])v[1]!) : (WithPrefix(message, v[1]), null);
    }

    private long _claims;

    /// <summary>An entry over a shared body with the prefix its <c>body</c> field holds (none in entries of earlier versions).</summary>
    private static QueuedMessage WithPrefix(QueuedMessage message, RedisValue prefix) =>
        prefix.IsNullOrEmpty ? message : message with { BodyPrefix = (byte[])prefix! };

    /// <summary>The stored envelope and state without the body.</summary>
    public async Task<QueuedMessage?> GetAsync(string domain, string id)
    {
        var v = await Db.HashGetAsync(RedisKeys.QueueMessage(domain, id), "env").ConfigureAwait(false);
        return v.IsNull ? null : QueueJson.Deserialize(v.ToString());
    }

    /// <summary>
    /// Writes a message's new state in its domain's slot; <paramref name="finished"/> deletes it and its
    /// index entry. False when the message is gone (an operator bounced or deleted it meanwhile), or when another worker
    /// took it after this copy's lease expired (its <see cref="QueuedMessage.Claim"/> no longer stands: this stale outcome
    /// is dropped, the other worker's stays; counted in <see cref="StaleSaves"/>).
    /// </summary>
    public async Task<bool> SaveStateAsync(QueuedMessage message, bool finished)
    {
        ArgumentNullException.ThrowIfNull(message);
        var r = (long)await Db.ScriptEvaluateAsync(SaveStateScript,
            [RedisKeys.QueueMessage(message.Domain, message.Id), RedisKeys.DomainQueue(message.Domain), RedisKeys.Domain(message.Domain)],
            [message.Id, finished ? string.Empty : QueueJson.Serialize(message), Score(message.NextAttempt), message.Claim ?? "*"]).ConfigureAwait(false);
        if (r == 2)
        {
            // Not ours any more: the message, its body and its reference belong to the worker that holds it now.
            Interlocked.Increment(ref _staleSaves);
            return false;
        }

        if (finished || r == 0)
        {
            // The entry is gone (finished here, removed by an operator, or dropped with its tombstoned domain): its body reference too.
            await ReleaseBodyAsync(message).ConfigureAwait(false);
        }

        return r == 1;
    }

    private long _staleSaves;

    /// <summary>Saves refused because another worker had taken the message since (security review L1).</summary>
    public long StaleSaves => Interlocked.Read(ref _staleSaves);

    /// <summary>A domain's queued messages ordered by next attempt; paging by the last (score, id) seen.</summary>
    public async Task<(IReadOnlyList<QueuedMessage> Items, (double Score, string Id)? Last)> ListAsync(string domain, (double Score, string Id)? after, int limit)
    {
        var db = Db;
        var key = RedisKeys.DomainQueue(domain);
        var picked = new List<SortedSetEntry>(limit + 1);
        var skip = 0;
        while (picked.Count <= limit)
        {
            var batch = await db.SortedSetRangeByScoreWithScoresAsync(key, after?.Score ?? double.NegativeInfinity, double.PositiveInfinity,
                skip: skip, take: limit + 1).ConfigureAwait(false);
            foreach (var e in batch)
            {
                // Same score: Redis orders members lexicographically, so the cursor's id separates seen from unseen.
                if (after is { } a && e.Score == a.Score && string.CompareOrdinal(e.Element.ToString(), a.Id) <= 0)
                {
                    continue;
                }

                picked.Add(e);
            }

            if (batch.Length < limit + 1)
            {
                break;
            }

            skip += batch.Length;
        }

        var more = picked.Count > limit;
        var page = picked.Take(limit).ToList();
        var envs = await Task.WhenAll(page.Select(e => db.HashGetAsync(RedisKeys.QueueMessage(domain, e.Element.ToString()), "env"))).ConfigureAwait(false);
        var items = envs.Where(v => !v.IsNull).Select(v => QueueJson.Deserialize(v.ToString())).ToList();
        return (items, more && page.Count > 0 ? (page[^1].Score, page[^1].Element.ToString()) : null);
    }

    /// <summary>How many messages a domain has queued.</summary>
    public Task<long> CountAsync(string domain) => Db.SortedSetLengthAsync(RedisKeys.DomainQueue(domain));

    /// <summary>Makes a message due now (requirements §6.10) and wakes the Deliverers.</summary>
    public async Task<RetryNowOutcome> RetryNowAsync(string domain, string id)
    {
        var db = Db;
        var now = clock.GetUtcNow();
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var raw = await db.HashGetAsync(RedisKeys.QueueMessage(domain, id), "env").ConfigureAwait(false);
            if (raw.IsNull)
            {
                return RetryNowOutcome.NotFound;
            }

            var message = QueueJson.Deserialize(raw.ToString()) with { NextAttempt = now };
            // The message first (a worker that takes the schedule entry checks the message's due time),
            // then the schedule.
            var replaced = (long)await db.ScriptEvaluateAsync(ReplaceEnvScript, [RedisKeys.QueueMessage(domain, id), RedisKeys.DomainQueue(domain)],
                [id, raw, QueueJson.Serialize(message), Score(now)]).ConfigureAwait(false);
            if (replaced == 0)
            {
                continue;
            }

            var shard = ShardOf(id);
            var member = domain + "|" + id;
            var made = (long)await db.ScriptEvaluateAsync(MakeDueScript, [RedisKeys.ScheduleDue(shard), RedisKeys.ScheduleLeases(shard)], [member, Score(now)])
                .ConfigureAwait(false);
            if (made == 0)
            {
                return RetryNowOutcome.InFlight;
            }

            await WakeAsync(shard).ConfigureAwait(false);
            return RetryNowOutcome.Scheduled;
        }

        return RetryNowOutcome.InFlight;
    }

    /// <summary>
    /// Removes a message from the queue (operator bounce or delete) and returns what it was: the envelope, and the body, or
    /// the first <see cref="SharedBodies.DsnContentLimit"/> bytes of a shared one (all a DSN returns; requirements §11, bounded
    /// memory). A worker attempting it at this moment finds it gone when it saves its result.
    /// </summary>
    public async Task<(QueuedMessage Message, byte[] Body)?> RemoveAsync(string domain, string id)
    {
        var db = Db;
        var r = await db.ScriptEvaluateAsync(RemoveScript, [RedisKeys.QueueMessage(domain, id), RedisKeys.DomainQueue(domain)], [id]).ConfigureAwait(false);
        if (r.IsNull)
        {
            return null;
        }

        var parts = (RedisValue[])r!;
        var shard = ShardOf(id);
        var member = domain + "|" + id;
        var tx = db.CreateTransaction();
        _ = tx.SortedSetRemoveAsync(RedisKeys.ScheduleDue(shard), member);
        _ = tx.HashDeleteAsync(RedisKeys.ScheduleLeases(shard), member);
        await tx.ExecuteAsync().ConfigureAwait(false);
        var message = QueueJson.Deserialize(parts[0].ToString());
        // A shared body (possibly a big message received in pieces) is read only as far as a DSN returns anything of it.
        var bodyRef = parts.Length > 2 ? parts[2] : RedisValue.Null;
        var body = bodyRef.IsNullOrEmpty ? (parts[1].IsNull ? [] : (byte[])parts[1]!)
            : await ReadContentHeadAsync(WithPrefix(message with { BodyRef = bodyRef.ToString() }, parts[1]), SharedBodies.DsnContentLimit).ConfigureAwait(false) ?? [];

        await ReleaseBodyAsync(message).ConfigureAwait(false);
        return (message, body);
    }

    /// <summary>
    /// Re-schedules messages of <paramref name="domains"/> whose schedule entry is missing (a crash between
    /// the two writes of enqueue or completion, or a cluster master that lost a write). Only messages
    /// overdue by more than two leases are looked at, so nothing in flight is touched. Returns how many.
    /// </summary>
    public async Task<int> SweepAsync(IEnumerable<string> domains, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(domains);
        var db = Db;
        var now = clock.GetUtcNow();
        var cutoff = Score(now - (options.Lease * 2));
        var fixedCount = 0;
        foreach (var domain in domains)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var ids = await db.SortedSetRangeByScoreAsync(RedisKeys.DomainQueue(domain), double.NegativeInfinity, cutoff, take: 500).ConfigureAwait(false);
            foreach (var idValue in ids)
            {
                var id = idValue.ToString();
                var shard = ShardOf(id);
                var member = domain + "|" + id;
                if (await db.SortedSetScoreAsync(RedisKeys.ScheduleDue(shard), member).ConfigureAwait(false) is null &&
                    await db.SortedSetAddAsync(RedisKeys.ScheduleDue(shard), member, Score(now), SortedSetWhen.NotExists).ConfigureAwait(false))
                {
                    fixedCount++;
                }
            }
        }

        return fixedCount;
    }

    /// <summary>Announces due work of a shard to every Deliverer.</summary>
    public Task WakeAsync(int shard) =>
        redis.GetSubscriber().PublishAsync(RedisKeys.QueueChannel, shard.ToString(CultureInfo.InvariantCulture));

    /// <summary>The round robin turn of a route group (requirements §3: across the whole fleet, message by message).</summary>
    public async Task<long> NextTurnAsync(string domain, string groupKey) =>
        (long)await Db.ScriptEvaluateAsync(NextTurnScript, [RedisKeys.Domain(domain), RedisKeys.RoundRobin(domain, groupKey)]).ConfigureAwait(false);

    /// <summary>The schedule shard of a message id.</summary>
    public int ShardOf(string id) => (int)(XxHash32.HashToUInt32(Encoding.UTF8.GetBytes(id)) % (uint)options.ScheduleShards);

    /// <summary>Scores are unix milliseconds.</summary>
    public static double Score(DateTimeOffset time) => time.ToUnixTimeMilliseconds();
}

/// <summary>The message's domain was deleted (DeleteDomain's tombstone is there): nothing of it may be queued.</summary>
public sealed class DomainDeletedException(string domain) : Exception($"Domain '{domain}' was deleted")
{
    public string Domain { get; } = domain;
}
