using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Gateway.Core.Storage;
using StackExchange.Redis;

namespace Gateway.Core.Delivery;

/// <summary>One failed recipient waiting in a message's pending-failures record: its queue state (NOTIFY, ORCPT) and what is reported.</summary>
public sealed record PendingFailure(QueuedRecipient Recipient, DsnRecipient Report);

/// <summary>What <see cref="FailureDsnRecords.AddAsync"/> found after adding: the copies done, the copies in all, the failures waiting.</summary>
public readonly record struct FailureGroupState(long Done, long Copies, long Failures)
{
    /// <summary>Every copy of the message is finished: nothing more will be collected, the DSN is due now.</summary>
    public bool AllDone => Done >= Copies;
}

/// <summary>What <see cref="FailureDsnRecords.ClaimAsync"/> read: nothing (no record), busy (another worker sends it), or the failures to report.</summary>
public sealed record FailureClaim(bool Busy, DateTimeOffset BusyUntil, QueuedMessage? Original, byte[] Content, IReadOnlyList<(string Field, PendingFailure Failure)> Failures)
{
    public static readonly FailureClaim None = new(false, default, null, [], []);
}

/// <summary>
/// The per-message "pending failures" record that makes one failure DSN of the failures of all copies of one message
/// (requirements §11, no amplification; docs/architecture.md "One failure DSN per message"). A message to N managed domains is
/// N queue copies in N domains' slots; the copies carry the message's group id (<see cref="QueuedMessage.DsnGroup"/>, the
/// intake id, which also names the shared body) and the number of copies. The record lives in the body's slot,
/// <c>gw:{b:&lt;group&gt;}:dsn</c>, a hash:
/// <list type="bullet">
/// <item><c>n</c>: the copies; <c>nd</c>, <c>nf</c>: copies done, failures waiting; <c>d:&lt;copy id&gt;</c>: that copy is done;</item>
/// <item><c>f:&lt;copy id&gt;|&lt;recipient&gt;</c>: one failure (<see cref="PendingFailure"/>, JSON); re-adding it after a crash overwrites it;</item>
/// <item><c>m</c> and <c>c</c>: the first failing copy's envelope and the part of its content a DSN returns (at most 50 kB);</item>
/// <item><c>claim</c>: <c>&lt;token&gt;|&lt;until, unix ms&gt;</c> while a worker builds and queues the DSN.</item>
/// </list>
/// Beside it, in a slot of its own, <c>gw:{dsn}:due</c> (<see cref="RedisKeys.FailureDsnDue"/>) orders the groups with failures
/// waiting by when their DSN is due (the first failure plus the coalescing window), so any Deliverer sends it if the one that
/// collected them is gone. Every script touches one slot.
/// </summary>
public static partial class FailureDsnRecords
{
    // KEYS: record. ARGV: copies, copy id, done ('1'/'0'), ttl ms, envelope ('' = keep), content, then field/value pairs of failures.
    // Returns {done, copies, failures}. A record without failures whose copies are all done is removed.
    private const string AddScript = """
        local k = KEYS[1]
        redis.call('HSETNX', k, 'n', ARGV[1])
        if ARGV[5] ~= '' then
          redis.call('HSETNX', k, 'm', ARGV[5])
          redis.call('HSETNX', k, 'c', ARGV[6])
        end
        for i = 7, #ARGV, 2 do
          if redis.call('HSET', k, ARGV[i], ARGV[i + 1]) == 1 then redis.call('HINCRBY', k, 'nf', 1) end
        end
        if ARGV[3] == '1' and redis.call('HSETNX', k, 'd:' .. ARGV[2], '1') == 1 then redis.call('HINCRBY', k, 'nd', 1) end
        redis.call('PEXPIRE', k, ARGV[4])
        local v = redis.call('HMGET', k, 'nd', 'n', 'nf')
        local nd, n, nf = tonumber(v[1] or '0'), tonumber(v[2]), tonumber(v[3] or '0')
        if nf == 0 and nd >= n then redis.call('DEL', k) end
        return {nd, n, nf}
        """;

    // KEYS: record. ARGV: token, now ms, claim until ms. Returns false (no record or no failures), {'busy', until}, or
    // {'ok', envelope, content, field1, value1, ...}.
    private const string ClaimScript = """
        local k = KEYS[1]
        if redis.call('EXISTS', k) == 0 then return false end
        local c = redis.call('HGET', k, 'claim')
        if c then
          local bar = string.find(c, '|', 1, true)
          local untilMs = tonumber(string.sub(c, bar + 1))
          if untilMs > tonumber(ARGV[2]) and string.sub(c, 1, bar - 1) ~= ARGV[1] then return {'busy', tostring(untilMs)} end
        end
        local all = redis.call('HGETALL', k)
        local out = {'ok', '', ''}
        for i = 1, #all, 2 do
          local f = all[i]
          if f == 'm' then out[2] = all[i + 1]
          elseif f == 'c' then out[3] = all[i + 1]
          elseif string.sub(f, 1, 2) == 'f:' then out[#out + 1] = f; out[#out + 1] = all[i + 1] end
        end
        if #out == 3 then return false end
        redis.call('HSET', k, 'claim', ARGV[1] .. '|' .. ARGV[3])
        return out
        """;

    // KEYS: record. ARGV: token, fields reported... Removes what was reported (failures added meanwhile stay), ends the claim.
    // Returns {done, copies, failures left}; the record goes when every copy is done and nothing waits.
    private const string FinishScript = """
        local k = KEYS[1]
        if redis.call('EXISTS', k) == 0 then return {0, 0, 0} end
        local c = redis.call('HGET', k, 'claim')
        if c and string.sub(c, 1, string.find(c, '|', 1, true) - 1) == ARGV[1] then redis.call('HDEL', k, 'claim') end
        for i = 2, #ARGV do
          if redis.call('HDEL', k, ARGV[i]) == 1 then redis.call('HINCRBY', k, 'nf', -1) end
        end
        local v = redis.call('HMGET', k, 'nd', 'n', 'nf')
        local nd, n, nf = tonumber(v[1] or '0'), tonumber(v[2] or '0'), tonumber(v[3] or '0')
        if nf <= 0 then
          redis.call('HDEL', k, 'm', 'c')
          if nd >= n then redis.call('DEL', k) end
        end
        return {nd, n, nf}
        """;

    // KEYS: due. ARGV: now ms, until ms, limit. Takes due groups for one worker: their score moves to until (the claim's end).
    private const string TakeScript = """
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
        for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], m) end
        return due
        """;

    /// <summary>
    /// Adds one copy's failures (none: it only reports that it is done) to its message's record, in one script. Called before
    /// the copy's new state is saved, so a crash in between repeats the attempt and adds them again (the same fields).
    /// </summary>
    /// <param name="content">The copy's content as a DSN would read it (the body, or its first megabyte); only what a DSN returns is kept.</param>
    public static async Task<FailureGroupState> AddAsync(IDatabase db, QueuedMessage copy, IReadOnlyList<PendingFailure> failures, ReadOnlyMemory<byte> content,
        bool done, TimeSpan ttl)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(copy);
        ArgumentNullException.ThrowIfNull(failures);
        var group = copy.DsnGroup ?? throw new ArgumentException("the copy belongs to no group", nameof(copy));
        var args = new List<RedisValue>(6 + (failures.Count * 2))
        {
            Math.Max(1, copy.DsnGroupSize), copy.Id, done ? "1" : "0", (long)ttl.TotalMilliseconds,
        };
        if (failures.Count > 0)
        {
            var (returned, full) = Returned(copy, content.Span);
            var envelope = copy with { Id = group, Recipients = [], DsnRet = full ? copy.DsnRet : null, Claim = null, BodyRef = null };
            args.Add(QueueJson.Serialize(envelope));
            args.Add(returned);
        }
        else
        {
            args.Add(string.Empty);
            args.Add(string.Empty);
        }

        foreach (var f in failures)
        {
            args.Add(FailureField(copy.Id, f.Report.Address));
            args.Add(JsonSerializer.Serialize(f, PendingJson.Default.PendingFailure));
        }

        var r = (RedisResult[])(await db.ScriptEvaluateAsync(AddScript, [RedisKeys.FailureDsn(group)], [.. args]).ConfigureAwait(false))!;
        return new FailureGroupState((long)r[0], (long)r[1], (long)r[2]);
    }

    /// <summary>
    /// A grouped copy removed by an operator (bounced with its own DSN, or deleted): it is done, so the message's combined DSN
    /// does not wait for it; when it was the last, the DSN is made due now (a Deliverer's poller sends it).
    /// </summary>
    public static async Task CopyRemovedAsync(IDatabase db, QueuedMessage copy, TimeSpan ttl, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(copy);
        if (copy.DsnGroup is not { } group)
        {
            return;
        }

        var state = await AddAsync(db, copy, [], ReadOnlyMemory<byte>.Empty, done: true, ttl).ConfigureAwait(false);
        if (state is { AllDone: true, Failures: > 0 })
        {
            await RescheduleAsync(db, group, now).ConfigureAwait(false);
        }
    }

    /// <summary>Claims a group's waiting failures for <paramref name="token"/> until <paramref name="until"/> (another worker's claim is respected until it ends).</summary>
    public static async Task<FailureClaim> ClaimAsync(IDatabase db, string group, string token, DateTimeOffset now, DateTimeOffset until)
    {
        ArgumentNullException.ThrowIfNull(db);
        var r = await db.ScriptEvaluateAsync(ClaimScript, [RedisKeys.FailureDsn(group)],
            [token, now.ToUnixTimeMilliseconds(), until.ToUnixTimeMilliseconds()]).ConfigureAwait(false);
        if (r.IsNull)
        {
            return FailureClaim.None;
        }

        var v = (RedisValue[])r!;
        if (v[0] == "busy")
        {
            return FailureClaim.None with { Busy = true, BusyUntil = DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(v[1].ToString(), CultureInfo.InvariantCulture)) };
        }

        var failures = new List<(string, PendingFailure)>((v.Length - 3) / 2);
        for (var i = 3; i + 1 < v.Length; i += 2)
        {
            failures.Add((v[i].ToString(), JsonSerializer.Deserialize(v[i + 1].ToString(), PendingJson.Default.PendingFailure)!));
        }

        var original = v[1].IsNullOrEmpty ? null : QueueJson.Deserialize(v[1].ToString());
        return new FailureClaim(false, default, original, v[2].IsNull ? [] : (byte[])v[2]!, failures);
    }

    /// <summary>Removes the failures a sent DSN reported and ends the claim; returns what is left.</summary>
    public static async Task<FailureGroupState> FinishAsync(IDatabase db, string group, string token, IEnumerable<string> reported)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(reported);
        RedisValue[] args = [token, .. reported.Select(f => (RedisValue)f)];
        var r = (RedisResult[])(await db.ScriptEvaluateAsync(FinishScript, [RedisKeys.FailureDsn(group)], args).ConfigureAwait(false))!;
        return new FailureGroupState((long)r[0], (long)r[1], (long)r[2]);
    }

    /// <summary>Failures waiting in a group's record (0 when it is gone).</summary>
    public static async Task<long> WaitingAsync(IDatabase db, string group)
    {
        ArgumentNullException.ThrowIfNull(db);
        var v = await db.HashGetAsync(RedisKeys.FailureDsn(group), "nf").ConfigureAwait(false);
        return v.IsNull ? 0 : (long)v;
    }

    /// <summary>Makes a group's DSN due at <paramref name="due"/> unless it is due earlier already (the window runs from the first failure).</summary>
    public static Task ScheduleAsync(IDatabase db, string group, DateTimeOffset due)
    {
        ArgumentNullException.ThrowIfNull(db);
        return db.SortedSetAddAsync(RedisKeys.FailureDsnDue, group, due.ToUnixTimeMilliseconds(), SortedSetWhen.NotExists);
    }

    /// <summary>Moves a group's due time (a claim of another worker ends then, or failures arrived during a send).</summary>
    public static Task RescheduleAsync(IDatabase db, string group, DateTimeOffset due)
    {
        ArgumentNullException.ThrowIfNull(db);
        return db.SortedSetAddAsync(RedisKeys.FailureDsnDue, group, due.ToUnixTimeMilliseconds());
    }

    /// <summary>Removes a group from the due set (nothing waits).</summary>
    public static Task UnscheduleAsync(IDatabase db, string group)
    {
        ArgumentNullException.ThrowIfNull(db);
        return db.SortedSetRemoveAsync(RedisKeys.FailureDsnDue, group);
    }

    /// <summary>Takes up to <paramref name="limit"/> groups whose DSN is due, for one worker until <paramref name="until"/>.</summary>
    public static async Task<IReadOnlyList<string>> TakeDueAsync(IDatabase db, DateTimeOffset now, DateTimeOffset until, int limit)
    {
        ArgumentNullException.ThrowIfNull(db);
        var r = (RedisValue[]?)await db.ScriptEvaluateAsync(TakeScript, [RedisKeys.FailureDsnDue],
            [now.ToUnixTimeMilliseconds(), until.ToUnixTimeMilliseconds(), limit]).ConfigureAwait(false);
        return r?.Select(v => v.ToString()).ToList() ?? [];
    }

    /// <summary>
    /// The message a combined DSN is about: the first failing copy's envelope under the group's id with every reported recipient
    /// (their NOTIFY and ORCPT), and the reports in the order of the copies. Pure.
    /// </summary>
    public static (QueuedMessage Original, IReadOnlyList<DsnRecipient> Reports) Combine(QueuedMessage envelope, IReadOnlyList<(string Field, PendingFailure Failure)> failures)
    {
        ArgumentNullException.ThrowIfNull(envelope);
        ArgumentNullException.ThrowIfNull(failures);
        var ordered = failures.OrderBy(f => f.Field, StringComparer.Ordinal).Select(f => f.Failure).ToList();
        return (envelope with { Recipients = ordered.Select(f => f.Recipient).ToList() }, ordered.Select(f => f.Report).ToList());
    }

    /// <summary>
    /// What of a copy's content a DSN returns (<see cref="DsnBuilder"/>): the whole message for RET=FULL up to
    /// <see cref="DsnBuilder.FullReturnLimit"/>, else its header section cut as <see cref="DsnBuilder.ReturnedHeaderLength"/> cuts it,
    /// followed by the empty line that ends it (so the builder finds it again), or nothing. Kept in the record instead of the
    /// body, which is gone when the last copy is.
    /// </summary>
    public static (byte[] Returned, bool Full) Returned(QueuedMessage copy, ReadOnlySpan<byte> content)
    {
        ArgumentNullException.ThrowIfNull(copy);
        if (copy.DsnRet == "FULL" && content.Length <= DsnBuilder.FullReturnLimit)
        {
            return (content.ToArray(), true);
        }

        var n = DsnBuilder.ReturnedHeaderLength(content);
        if (n == 0)
        {
            return ([], false);
        }

        ReadOnlySpan<byte> end = n >= 2 && content[n - 2] == '\r' ? "\r\n"u8 : "\n"u8;
        var returned = new byte[n + end.Length];
        content[..n].CopyTo(returned);
        end.CopyTo(returned.AsSpan(n));
        return (returned, false);
    }

    private static string FailureField(string copyId, string address) => "f:" + copyId + "|" + address;

    [JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault)]
    [JsonSerializable(typeof(PendingFailure))]
    private sealed partial class PendingJson : JsonSerializerContext;
}
