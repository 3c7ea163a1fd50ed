using System.Globalization;
using System.Text.Json.Serialization;
using Gateway.Core.Delivery;
using Gateway.Core.Storage;
using StackExchange.Redis;
using Gateway.Core.Mail;

namespace Gateway.Core.Quarantine;

/// <summary>A message held by a rule (requirements §7): its envelope for one managed domain, the rule, when.</summary>
public sealed record QuarantinedMessage
{
    /// <summary>The gateway's message id (the intake's; the same id when released into the queue).</summary>
    public required string Id { get; init; }

    public required string Domain { get; init; }

    /// <summary>Inbound or outbound relative to <see cref="Domain"/>; a release delivers it that way.</summary>
    public required Direction Direction { get; init; }

    /// <summary>Envelope sender; empty for the null sender.</summary>
    public required string Sender { get; init; }

    public required IReadOnlyList<string> Recipients { get; init; }

    public required DateTimeOffset QuarantineTime { get; init; }

    /// <summary>The rule that held it and its description at that time.</summary>
    public required string RuleId { get; init; }

    public string? RuleDescription { get; init; }

    public string? Subject { get; init; }

    public long Size { get; init; }

    public string? ClientAddress { get; init; }

    public bool Utf8 { get; init; }

    /// <summary>RFC 3461 RET of the message, kept for its release.</summary>
    public string? DsnRet { get; init; }

    /// <summary>RFC 3461 ENVID of the message, kept for its release.</summary>
    public string? DsnEnvelopeId { get; init; }

    /// <summary>RFC 3461 NOTIFY/ORCPT per recipient, kept for its release.</summary>
    public IReadOnlyDictionary<string, RecipientDsn>? RecipientDsn { get; init; }

    /// <summary>
    /// The shared body this entry references (a big message received in pieces; docs/architecture.md "Bodies in pieces"), with
    /// its own reference (<see cref="SharedBodies.QuarantineMember"/>); the entry's <c>body</c> field is then its prefix. Null:
    /// the entry holds its own bytes.
    /// </summary>
    public string? BodyRef { get; init; }

    /// <summary>With <see cref="BodyRef"/>: where the copy's content starts in the shared body (after its prefix).</summary>
    public long BodyFrom { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault)]
[JsonSerializable(typeof(QuarantinedMessage))]
internal sealed partial class QuarantineJson : JsonSerializerContext
{
    public static string Serialize(QuarantinedMessage m) => System.Text.Json.JsonSerializer.Serialize(m, Default.QuarantinedMessage);

    public static QuarantinedMessage Deserialize(string json) =>
        System.Text.Json.JsonSerializer.Deserialize(json, Default.QuarantinedMessage) ?? throw new System.Text.Json.JsonException("empty quarantined message");
}

/// <summary>Filters of <see cref="QuarantineStore.ListAsync"/>; null: any.</summary>
public sealed record QuarantineFilter
{
    /// <summary>An address pattern as in rules (<c>*@x.org</c>, <c>x.org</c>, <c>a@x.org</c>, <c>&lt;&gt;</c>).</summary>
    public Rules.AddressPattern? Sender { get; init; }

    /// <summary>Matches when any recipient matches.</summary>
    public Rules.AddressPattern? Recipient { get; init; }

    public DateTimeOffset? Since { get; init; }

    public DateTimeOffset? Until { get; init; }

    public bool Matches(QuarantinedMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return (Sender is null || Sender.IsMatch(m.Sender)) && (Recipient is null || m.Recipients.Any(Recipient.IsMatch));
    }
}

/// <summary>
/// The quarantine in Redis, in the owning domain's slot: <see cref="RedisKeys.QuarantineMessage"/> (hash: <c>env</c>
/// JSON, <c>body</c> raw bytes, <c>claim</c> while a release runs) indexed by <see cref="RedisKeys.DomainQuarantine"/>
/// (score: quarantine time, unix ms). Writes are one MULTI/script per message in one slot.
/// </summary>
public sealed class QuarantineStore(IConnectionMultiplexer redis)
{
    // KEYS: message, index. ARGV: id. Returns {env, body} of the removed message, or nil.
    private const string RemoveScript = """
        local v = redis.call('HMGET', KEYS[1], 'env', 'body')
        if not v[1] then redis.call('ZREM', KEYS[2], ARGV[1]) return false end
        redis.call('DEL', KEYS[1])
        redis.call('ZREM', KEYS[2], ARGV[1])
        return v
        """;

    // KEYS: message. ARGV: now ms, stale after ms. Returns {env, body}, 'BUSY' while another release runs, nil when gone.
    private const string ClaimScript = """
        local v = redis.call('HMGET', KEYS[1], 'env', 'body', 'claim')
        if not v[1] then return false end
        if v[3] and (tonumber(ARGV[1]) - tonumber(v[3])) < tonumber(ARGV[2]) then return 'BUSY' end
        redis.call('HSET', KEYS[1], 'claim', ARGV[1])
        return {v[1], v[2]}
        """;

    private IDatabase Db => redis.GetDatabase();

    // KEYS: domain config, message, index. ARGV: id, env, body (or prefix), score, shared body id ('' = none). The settings hash
    // is DeleteDomain's tombstone: nothing is written into the slot of a deleted domain (docs/architecture.md "Delete domain").
    private const string AddScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        redis.call('HSET', KEYS[2], 'env', ARGV[2], 'body', ARGV[3])
        if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], 'bodyref', ARGV[5]) end
        redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
        return 1
        """;

    /// <summary>
    /// Stores messages durably (each hash and its index entry in one script in its domain's slot, all sent together);
    /// the caller answers 250 after this. Returns those stored: a copy for a domain deleted meanwhile is dropped.
    /// </summary>
    public async Task<IReadOnlyList<QuarantinedMessage>> AddManyAsync(IReadOnlyList<(QuarantinedMessage Message, ReadOnlyMemory<byte> Body)> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var db = Db;
        var results = new Task<RedisResult>[messages.Count];
        for (var i = 0; i < messages.Count; i++)
        {
            var (m, body) = messages[i];
            results[i] = db.ScriptEvaluateAsync(AddScript, [RedisKeys.Domain(m.Domain), RedisKeys.QuarantineMessage(m.Domain, m.Id), RedisKeys.DomainQuarantine(m.Domain)],
                [m.Id, QuarantineJson.Serialize(m), body, MessageQueue.Score(m.QuarantineTime), m.BodyRef ?? string.Empty]);
        }

        var stored = await Task.WhenAll(results).ConfigureAwait(false);
        return messages.Where((_, i) => (long)stored[i] == 1).Select(m => m.Message).ToList();
    }

    public async Task<QuarantinedMessage?> GetAsync(string domain, string id)
    {
        var v = await Db.HashGetAsync(RedisKeys.QuarantineMessage(domain, id), "env").ConfigureAwait(false);
        return v.IsNull ? null : QuarantineJson.Deserialize(v.ToString());
    }

    /// <summary>How many messages a domain holds in quarantine.</summary>
    public Task<long> CountAsync(string domain) => Db.SortedSetLengthAsync(RedisKeys.DomainQuarantine(domain));

    /// <summary>At most this many held messages are examined by one list call; a filtered page may then come back short, with a token to go on.</summary>
    public const int MaxScanPerPage = 5000;

    /// <summary>
    /// Newest first, filtered, after the (score, id) cursor; the cursor to continue from when more may follow. A call
    /// examines at most <see cref="MaxScanPerPage"/> messages, so a filter that matches little cannot make one
    /// request read a whole large quarantine: the page comes back short with the cursor of the last one examined.
    /// </summary>
    public async Task<(IReadOnlyList<QuarantinedMessage> Items, (double Score, string Id)? Last)> ListAsync(string domain, QuarantineFilter filter,
        (double Score, string Id)? after, int limit, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var db = Db;
        var key = RedisKeys.DomainQuarantine(domain);
        var max = after?.Score ?? double.PositiveInfinity;
        var until = filter.Until is { } u ? MessageQueue.Score(u) : double.PositiveInfinity; // end_time is exclusive
        max = Math.Min(max, until);
        var min = filter.Since is { } s ? MessageQueue.Score(s) : double.NegativeInfinity;
        var picked = new List<(double Score, QuarantinedMessage Message)>(limit + 1);
        (double Score, string Id)? lastExamined = null;
        var examined = 0;
        const int Batch = 200;
        for (var skip = 0; picked.Count <= limit; skip += Batch)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var entries = await db.SortedSetRangeByScoreWithScoresAsync(key, min, max, Exclude.None, Order.Descending, skip, Batch).ConfigureAwait(false);
            var seen = entries.Where(e => e.Score < until && (after is not { } a || e.Score < a.Score || string.CompareOrdinal(e.Element.ToString(), a.Id) < 0)).ToList();
            var envs = await Task.WhenAll(seen.Select(e => db.HashGetAsync(RedisKeys.QuarantineMessage(domain, e.Element.ToString()), "env"))).ConfigureAwait(false);
            for (var i = 0; i < seen.Count && picked.Count <= limit; i++)
            {
                examined++;
                lastExamined = (seen[i].Score, seen[i].Element.ToString());
                if (!envs[i].IsNull && QuarantineJson.Deserialize(envs[i].ToString()) is var m && filter.Matches(m))
                {
                    picked.Add((seen[i].Score, m));
                }
            }

            if (entries.Length < Batch)
            {
                break;
            }

            if (examined >= MaxScanPerPage && picked.Count <= limit)
            {
                return (picked.Select(p => p.Message).ToList(), lastExamined);
            }
        }

        var more = picked.Count > limit;
        var page = picked.Take(limit).ToList();
        return (page.Select(p => p.Message).ToList(), more && page.Count > 0 ? (page[^1].Score, page[^1].Message.Id) : null);
    }

    /// <summary>
    /// Marks a message as being released and returns it, unless another release claimed it less than
    /// <paramref name="staleAfter"/> ago (then <c>Busy</c>). A release that died leaves a stale claim the next one takes over.
    /// </summary>
    public async Task<(bool Busy, QuarantinedMessage? Message, byte[] Body)> ClaimAsync(string domain, string id, DateTimeOffset now, TimeSpan staleAfter)
    {
        var r = await Db.ScriptEvaluateAsync(ClaimScript, [RedisKeys.QuarantineMessage(domain, id)],
            [MessageQueue.Score(now), (long)staleAfter.TotalMilliseconds]).ConfigureAwait(false);
        if (r.IsNull)
        {
            return (false, null, []);
        }

        if (r.Resp2Type == ResultType.BulkString || r.Resp2Type == ResultType.SimpleString)
        {
            return (true, null, []);
        }

        var parts = (RedisValue[])r!;
        return (false, QuarantineJson.Deserialize(parts[0].ToString()), parts[1].IsNull ? [] : (byte[])parts[1]!);
    }

    /// <summary>
    /// Removes a message (released, deleted, expired); returns what it was (the body, or the prefix of a shared body), or null
    /// when it is gone. Its reference to a shared body goes with it: the last reference removes the body.
    /// </summary>
    public async Task<(QuarantinedMessage Message, byte[] Body)?> RemoveAsync(string domain, string id)
    {
        var db = Db;
        var r = await db.ScriptEvaluateAsync(RemoveScript, [RedisKeys.QuarantineMessage(domain, id), RedisKeys.DomainQuarantine(domain)], [id]).ConfigureAwait(false);
        if (r.IsNull)
        {
            return null;
        }

        var parts = (RedisValue[])r!;
        var message = QuarantineJson.Deserialize(parts[0].ToString());
        if (message.BodyRef is { } bodyId)
        {
            await SharedBodies.ReleaseAsync(db, bodyId, SharedBodies.QuarantineMember(domain, id)).ConfigureAwait(false);
        }

        return (message, parts[1].IsNull ? [] : (byte[])parts[1]!);
    }

    /// <summary>Ids of a domain's messages quarantined before <paramref name="cutoff"/>, oldest first, at most <paramref name="limit"/>.</summary>
    public async Task<IReadOnlyList<string>> OlderThanAsync(string domain, DateTimeOffset cutoff, int limit)
    {
        var ids = await Db.SortedSetRangeByScoreAsync(RedisKeys.DomainQuarantine(domain), double.NegativeInfinity, MessageQueue.Score(cutoff),
            Exclude.Stop, Order.Ascending, 0, limit).ConfigureAwait(false);
        return ids.Select(i => i.ToString()).ToList();
    }

    public static string ScoreText(double score) => score.ToString("R", CultureInfo.InvariantCulture);
}
