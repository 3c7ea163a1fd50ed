using StackExchange.Redis;

namespace Gateway.Core.Storage;

/// <summary>
/// One message body shared by the queue copies of one message (requirements §11; docs/architecture.md "Delivery queue"):
/// an inbound message to recipients at N managed domains is N queue entries, one per domain's slot, but its body is
/// stored once, in a slot of its own (<c>gw:{b:&lt;id&gt;}:body</c>), with the set of the entries that reference it
/// (<c>gw:{b:&lt;id&gt;}:refs</c>, members <c>&lt;domain&gt;|&lt;id&gt;</c>). Each entry that is done (delivered,
/// bounced, expired, deleted, purged with its domain) releases its reference; the last one removes the body.
/// <para>
/// The body's slot and the domains' slots are different keys (a Redis Cluster spreads them over masters), so no script
/// spans both: the body and its reference set are written before any entry names them, and a reference is released only
/// after its entry is gone. A crash in between leaves a body nobody reads; both keys expire on their own a day after the
/// queue's lifetime (the safety net), never while an entry can still need them. Release is a set removal, so repeating
/// it (at-least-once) is harmless.
/// </para>
/// </summary>
public static class SharedBodies
{
    // KEYS: body, refs. ARGV: ttl ms, body, members...
    private const string StoreScript = """
        redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1])
        redis.call('SADD', KEYS[2], unpack(ARGV, 3))
        redis.call('PEXPIRE', KEYS[2], ARGV[1])
        return 1
        """;

    // KEYS: body, refs. ARGV: member. Returns 1 when the body was removed (the last reference is gone).
    private const string ReleaseScript = """
        redis.call('SREM', KEYS[2], ARGV[1])
        if redis.call('SCARD', KEYS[2]) == 0 then
          redis.call('DEL', KEYS[1], KEYS[2])
          return 1
        end
        return 0
        """;

    // KEYS: spool. ARGV: piece, ttl ms. The expiry is renewed with every piece: a session that dies leaves nothing that lives on.
    private const string AppendScript = """
        redis.call('APPEND', KEYS[1], ARGV[1])
        redis.call('PEXPIRE', KEYS[1], ARGV[2])
        return 1
        """;

    // KEYS: spool, body, refs. ARGV: ttl ms, length, members... Returns 0 when the spool is not all there (expired, lost).
    private const string CommitScript = """
        if redis.call('STRLEN', KEYS[1]) ~= tonumber(ARGV[2]) then
          redis.call('DEL', KEYS[1])
          return 0
        end
        redis.call('RENAME', KEYS[1], KEYS[2])
        -- APPEND grows a string greedily (up to 1 MB spare, twice the length below 1 MB): a body of a few MB is written
        -- again at its exact size, so it takes about its length in memory (larger ones keep at most 1 MB spare).
        if tonumber(ARGV[2]) <= 4194304 then redis.call('SET', KEYS[2], redis.call('GET', KEYS[2])) end
        redis.call('PEXPIRE', KEYS[2], ARGV[1])
        redis.call('SADD', KEYS[3], unpack(ARGV, 3))
        redis.call('PEXPIRE', KEYS[3], ARGV[1])
        return 1
        """;

    // KEYS: body, refs. ARGV: ttl ms, member. Returns 0 when the body is gone. The expiry only grows (a released quarantine
    // copy keeps the body as long as the queue may need it).
    private const string AddReferenceScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        redis.call('SADD', KEYS[2], ARGV[2])
        if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
          redis.call('PEXPIRE', KEYS[1], ARGV[1])
          redis.call('PEXPIRE', KEYS[2], ARGV[1])
        end
        return 1
        """;

    /// <summary>
    /// How long the pieces of a body still being received live without a new piece (requirements §11, bounded memory): far
    /// longer than the intake's idle timeout between two reads, short enough that a crashed session's pieces go soon.
    /// </summary>
    public static readonly TimeSpan SpoolTtl = TimeSpan.FromHours(1);

    /// <summary>
    /// Appends one piece of a body being received to its spool (<c>gw:{b:&lt;id&gt;}:spool</c>). Nothing names the spool
    /// until <see cref="CommitSpoolAsync"/>, so no delivery ever sees a half-received body.
    /// </summary>
    public static Task AppendSpoolAsync(IDatabase db, string bodyId, ReadOnlyMemory<byte> piece)
    {
        ArgumentNullException.ThrowIfNull(db);
        return db.ScriptEvaluateAsync(AppendScript, [RedisKeys.SharedBodySpool(bodyId)], [piece, (long)SpoolTtl.TotalMilliseconds]);
    }

    /// <summary>
    /// Makes a complete spool of <paramref name="length"/> bytes the shared body of <paramref name="members"/>, in one script:
    /// renamed to the body key (same slot) with the references and the queue's expiry. False when the spool is not all
    /// there (it expired or Redis lost it): the message must not be stored.
    /// </summary>
    public static async Task<bool> CommitSpoolAsync(IDatabase db, string bodyId, long length, IReadOnlyList<string> members, TimeSpan ttl)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(members);
        return (long)await db.ScriptEvaluateAsync(CommitScript, [RedisKeys.SharedBodySpool(bodyId), RedisKeys.SharedBody(bodyId), RedisKeys.SharedBodyRefs(bodyId)],
            Args(ttl, length, members)).ConfigureAwait(false) == 1;
    }

    /// <summary>Removes a spool that will not be committed (the session failed, was aborted, or the message was refused).</summary>
    public static Task DiscardSpoolAsync(IDatabase db, string bodyId, CommandFlags flags = CommandFlags.None)
    {
        ArgumentNullException.ThrowIfNull(db);
        return db.KeyDeleteAsync(RedisKeys.SharedBodySpool(bodyId), flags);
    }

    /// <summary>
    /// What a DSN reads of a shared body at most: more than <c>DsnBuilder.FullReturnLimit</c> (so a bigger message is seen as
    /// too big for RET=FULL) and room for the header section a DSN returns a part of (<c>DsnBuilder.HeaderReturnLimit</c>):
    /// as much as the intake keeps in memory of a message received in pieces, so the DSN finds the same header section.
    /// </summary>
    public const int DsnContentLimit = 1024 * 1024;

    /// <summary>The hash field of a queue entry that names its shared body (instead of a <c>body</c> field).</summary>
    public const string Field = "bodyref";

    /// <summary>The member of the reference set for one queue entry.</summary>
    public static string Member(string domain, string id) => domain + "|" + id;

    /// <summary>
    /// The member of the reference set for one quarantine entry (docs/architecture.md "Bodies in pieces"): apart from the queue's,
    /// since a released entry enters the queue under the same id and both reference the body for a moment.
    /// </summary>
    public static string QuarantineMember(string domain, string id) => "q|" + domain + "|" + id;

    /// <summary>
    /// Adds a reference to a stored body (a quarantined copy released into the queue) and makes sure the body lives at least
    /// <paramref name="ttl"/> more. False when the body is gone.
    /// </summary>
    public static async Task<bool> AddReferenceAsync(IDatabase db, string bodyId, string member, TimeSpan ttl)
    {
        ArgumentNullException.ThrowIfNull(db);
        return (long)await db.ScriptEvaluateAsync(AddReferenceScript, [RedisKeys.SharedBody(bodyId), RedisKeys.SharedBodyRefs(bodyId)],
            [(long)ttl.TotalMilliseconds, member]).ConfigureAwait(false) == 1;
    }

    /// <summary>
    /// The first <paramref name="max"/> bytes of one copy's content (docs/architecture.md "Bodies in pieces"): its own
    /// <paramref name="prefix"/>, then the shared body from <paramref name="from"/> (a DSN returns no more). Null when the body is gone.
    /// </summary>
    public static async Task<byte[]?> ReadCopyHeadAsync(IDatabase db, string bodyId, byte[]? prefix, long from, int max)
    {
        ArgumentNullException.ThrowIfNull(db);
        prefix ??= [];
        if (prefix.Length >= max)
        {
            return (await db.KeyExistsAsync(RedisKeys.SharedBody(bodyId)).ConfigureAwait(false)) ? prefix[..max] : null;
        }

        var rest = await SharedBodyStream.ReadHeadAsync(db, RedisKeys.SharedBody(bodyId), max - prefix.Length, from).ConfigureAwait(false);
        return rest is null ? null : prefix.Length == 0 ? rest : [.. prefix, .. rest];
    }

    /// <summary>Stores <paramref name="body"/> once, referenced by <paramref name="members"/>; both keys expire after <paramref name="ttl"/>.</summary>
    public static async Task StoreAsync(IDatabase db, string bodyId, ReadOnlyMemory<byte> body, IReadOnlyList<string> members, TimeSpan ttl)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(members);
        await db.ScriptEvaluateAsync(StoreScript, [RedisKeys.SharedBody(bodyId), RedisKeys.SharedBodyRefs(bodyId)], Args(ttl, body, members)).ConfigureAwait(false);
    }

    /// <summary>The shared body, or null when it is gone.</summary>
    public static async Task<byte[]?> ReadAsync(IDatabase db, string bodyId)
    {
        ArgumentNullException.ThrowIfNull(db);
        var v = await db.StringGetAsync(RedisKeys.SharedBody(bodyId)).ConfigureAwait(false);
        return v.IsNull ? null : (byte[])v!;
    }

    /// <summary>Releases one entry's reference; the last one removes the body. True when the body was removed.</summary>
    public static async Task<bool> ReleaseAsync(IDatabase db, string bodyId, string member)
    {
        ArgumentNullException.ThrowIfNull(db);
        return (long)await db.ScriptEvaluateAsync(ReleaseScript, [RedisKeys.SharedBody(bodyId), RedisKeys.SharedBodyRefs(bodyId)], [member]).ConfigureAwait(false) == 1;
    }

    /// <summary>The scripts' arguments: the expiry in ms, one value, then the reference set's members.</summary>
    private static RedisValue[] Args(TimeSpan ttl, RedisValue value, IReadOnlyList<string> members)
    {
        var args = new RedisValue[members.Count + 2];
        args[0] = (long)ttl.TotalMilliseconds;
        args[1] = value;
        for (var i = 0; i < members.Count; i++)
        {
            args[i + 2] = members[i];
        }

        return args;
    }
}
