using Gateway.Core.Domains;
using StackExchange.Redis;

namespace Gateway.Core.Storage;

public enum CreateDomainOutcome
{
    Created,
    AlreadyManaged,
    NoSuchTenant,

    /// <summary>A forced or ordinary delete of the same name is still purging its keys.</summary>
    BeingDeleted,

    /// <summary>The tenant already has its limit of domains (Gateway:Limits:DomainsPerTenant, enforced by the ControlPlane).</summary>
    TenantLimit,
}

public enum ChangeDomainOutcome
{
    Done,
    NotFound,
    EtagMismatch,
    HasMail,
}

/// <summary>
/// Managed domains in Redis. A domain is owned through the registry hash in the <c>{cfg}</c> slot
/// (the uniqueness claim) and configured by its own hash in its <c>{d:domain}</c> slot; every saved
/// change is then announced through <see cref="ConfigChangeFeed"/>.
/// Order of writes keeps a crash between two steps harmless: a claim without settings is invisible
/// to the snapshots and is completed when its owner creates the domain again.
/// </summary>
public sealed class DomainStore(IConnectionMultiplexer redis, ConfigChangeFeed feed, int scheduleShards = RedisKeys.DefaultScheduleShards, TimeProvider? clock = null)
{
    // Optional so the PolicyDaemon (which never deletes) needs no queue options; the ControlPlane registers them.
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;

    // KEYS: tenants, registry, tenant domains, purging. ARGV: company, domain, the tenant's domain limit.
    private const string ClaimScript = """
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 'NO_TENANT' end
        if redis.call('HEXISTS', KEYS[4], ARGV[2]) == 1 then return 'PURGING' end
        local owner = redis.call('HGET', KEYS[2], ARGV[2])
        if owner and owner ~= ARGV[1] then return 'TAKEN' end
        if not owner and redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[3]) then return 'LIMIT' end
        redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
        redis.call('ZADD', KEYS[3], 0, ARGV[2])
        return 'OK'
        """;

    // KEYS: domain config. ARGV: company, data. The registry already names this company as owner,
    // so settings left by another owner (a crash mid-delete) are replaced.
    private const string CreateScript = """
        local c = redis.call('HGET', KEYS[1], 'company')
        if c == ARGV[1] then return 0 end
        redis.call('DEL', KEYS[1])
        redis.call('HSET', KEYS[1], 'company', ARGV[1], 'etag', 1, 'data', ARGV[2])
        return 1
        """;

    // KEYS: domain config. ARGV: company, expected etag, data. Returns the new etag, -1 not found, -2 mismatch.
    internal const string ReplaceScript = """
        local cur = redis.call('HMGET', KEYS[1], 'company', 'etag')
        if cur[1] ~= ARGV[1] then return -1 end
        if cur[2] ~= ARGV[2] then return -2 end
        local n = redis.call('HINCRBY', KEYS[1], 'etag', 1)
        redis.call('HSET', KEYS[1], 'data', ARGV[3])
        return n
        """;

    // Deletion (docs/message-log.md "Deleting a domain"): intent in {cfg}, tombstone in {d:domain}, unlist,
    // purge, release. The intent is "<deletes running> <first start, unix ms>", counted so that a refused delete
    // racing a forced one of the same domain does not drop the forced one's intent.
    // KEYS: registry, deleting. ARGV: company, domain, now (unix ms).
    private const string IntentScript = """
        if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[1] then return 0 end
        local v = redis.call('HGET', KEYS[2], ARGV[2])
        local refs, since = 0, ARGV[3]
        if v then
          local sp = string.find(v, ' ', 1, true)
          refs = tonumber(string.sub(v, 1, sp - 1))
          since = string.sub(v, sp + 1)
        end
        redis.call('HSET', KEYS[2], ARGV[2], (refs + 1) .. ' ' .. since)
        return 1
        """;

    // KEYS: deleting. ARGV: domain. A refused delete gives its share of the intent back.
    private const string DropIntentScript = """
        local v = redis.call('HGET', KEYS[1], ARGV[1])
        if not v then return 0 end
        local sp = string.find(v, ' ', 1, true)
        local refs = tonumber(string.sub(v, 1, sp - 1)) - 1
        if refs <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], refs .. ' ' .. string.sub(v, sp + 1)) end
        return 1
        """;

    // KEYS: domain config, queue index, quarantine index. ARGV: company, expected etag ('' = any), force ('1').
    // Deleting the config hash is the tombstone: every write into the domain's slot by any program is a
    // script that first checks that this hash exists, so nothing written after this point survives the purge.
    // Returns 'OK', 'NOT_FOUND', 'ETAG', 'HAS_MAIL'.
    private const string TombstoneScript = """
        local cur = redis.call('HMGET', KEYS[1], 'company', 'etag')
        if cur[1] ~= ARGV[1] then return 'NOT_FOUND' end
        if ARGV[2] ~= '' and cur[2] ~= ARGV[2] then return 'ETAG' end
        if ARGV[3] ~= '1' and (redis.call('ZCARD', KEYS[2]) > 0 or redis.call('ZCARD', KEYS[3]) > 0) then return 'HAS_MAIL' end
        redis.call('DEL', KEYS[1])
        return 'OK'
        """;

    // KEYS: registry, tenant domains, purging. ARGV: company, domain. The claim is released only after the
    // purge, so nobody registers the name again while its old keys are being removed.
    private const string ReleaseScript = """
        if redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[1], ARGV[2]) end
        redis.call('ZREM', KEYS[2], ARGV[2])
        redis.call('HDEL', KEYS[3], ARGV[2])
        return 1
        """;

    private IDatabase Db => redis.GetDatabase();

    /// <summary>Registers a new domain for its tenant (refused once it has <paramref name="maxDomains"/>) and announces it.</summary>
    public async Task<(CreateDomainOutcome Outcome, DomainConfig? Domain)> CreateAsync(DomainConfig config, int maxDomains = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(config);
        var claim = (string?)await Db.ScriptEvaluateAsync(ClaimScript,
            [RedisKeys.Tenants, RedisKeys.DomainRegistry, RedisKeys.TenantDomains(config.CompanyId), RedisKeys.DomainsBeingDeleted],
            [config.CompanyId, config.Name, maxDomains]).ConfigureAwait(false);
        switch (claim)
        {
            case "LIMIT":
                return (CreateDomainOutcome.TenantLimit, null);
            case "PURGING":
                return (CreateDomainOutcome.BeingDeleted, null);
            case "NO_TENANT":
                return (CreateDomainOutcome.NoSuchTenant, null);
            case "TAKEN":
                return (CreateDomainOutcome.AlreadyManaged, null);
        }

        var intent = await feed.BeginAsync(config.Name, ConfigOps.Create).ConfigureAwait(false);
        var created = (long)await Db.ScriptEvaluateAsync(CreateScript,
            [RedisKeys.Domain(config.Name)], [config.CompanyId, StoreJson.Serialize(config)]).ConfigureAwait(false);
        if (created == 0)
        {
            await feed.CancelAsync(intent).ConfigureAwait(false);
            return (CreateDomainOutcome.AlreadyManaged, null);
        }

        await feed.PublishAsync(config.Name, ConfigOps.Create, intent).ConfigureAwait(false);
        return (CreateDomainOutcome.Created, config with { Revision = 1 });
    }

    /// <summary>The stored domain whoever owns it, or null.</summary>
    public async Task<DomainConfig?> GetAsync(string name)
    {
        var fields = await Db.HashGetAsync(RedisKeys.Domain(name), ["etag", "data"]).ConfigureAwait(false);
        return Parse(fields);
    }

    /// <summary>A tenant's domains ordered by name, after <paramref name="afterName"/>; the second item names the last one when more follow.</summary>
    public async Task<(IReadOnlyList<DomainConfig> Items, string? Last)> ListAsync(string companyId, string? afterName, int limit)
    {
        var names = await Db.SortedSetRangeByValueAsync(RedisKeys.TenantDomains(companyId),
            min: afterName is null ? default : (RedisValue)afterName, max: default,
            exclude: afterName is null ? Exclude.None : Exclude.Start, order: Order.Ascending, skip: 0, take: limit + 1).ConfigureAwait(false);
        var more = names.Length > limit;
        var page = names.Take(limit).Select(n => n.ToString()).ToArray();
        var loaded = await GetManyAsync(page).ConfigureAwait(false);
        var items = loaded.Where(d => d is not null && d.CompanyId == companyId).Select(d => d!).ToList();
        return (items, more && page.Length > 0 ? page[^1] : null);
    }

    /// <summary>How many domains a tenant manages.</summary>
    public Task<long> CountAsync(string companyId) => Db.SortedSetLengthAsync(RedisKeys.TenantDomains(companyId));

    /// <summary>The names of a tenant's domains.</summary>
    public async Task<IReadOnlyList<string>> NamesAsync(string companyId) =>
        (await Db.SortedSetRangeByRankAsync(RedisKeys.TenantDomains(companyId)).ConfigureAwait(false)).Select(v => v.ToString()).ToList();

    /// <summary>Saves <paramref name="next"/> if the stored revision is still <paramref name="expectedRevision"/>.</summary>
    public async Task<(ChangeDomainOutcome Outcome, DomainConfig? Domain)> ReplaceAsync(DomainConfig next, long expectedRevision, string op)
    {
        ArgumentNullException.ThrowIfNull(next);
        var intent = await feed.BeginAsync(next.Name, op).ConfigureAwait(false);
        var result = (long)await Db.ScriptEvaluateAsync(ReplaceScript, [RedisKeys.Domain(next.Name)],
            [next.CompanyId, expectedRevision, StoreJson.Serialize(next)]).ConfigureAwait(false);
        switch (result)
        {
            case -1:
                await feed.CancelAsync(intent).ConfigureAwait(false);
                return (ChangeDomainOutcome.NotFound, null);
            case -2:
                await feed.CancelAsync(intent).ConfigureAwait(false);
                return (ChangeDomainOutcome.EtagMismatch, null);
        }

        await feed.PublishAsync(next.Name, op, intent).ConfigureAwait(false);
        return (ChangeDomainOutcome.Done, next with { Revision = result });
    }

    /// <summary>
    /// Deletes a domain (requirements §3.15), refused while mail of the domain is queued or quarantined
    /// unless <paramref name="force"/>. In order, each step one script in one slot, so a crash anywhere
    /// leaves a state that <see cref="ResumePurgesAsync"/> finishes:
    /// (1) intent: the name joins <see cref="RedisKeys.DomainsBeingDeleted"/>;
    /// (2) tombstone: the settings hash goes (checks owner, etag and mail first; refused → intent dropped);
    /// (3) the change is published, so every PolicyDaemon and Deliverer drops the domain within a second
    ///     (and stops relaying for it: NO-DOMAIN); the tenant's index forgets it;
    /// (4) purge: every key under the domain's hash tag and its schedule members, in batches;
    /// (5) the claim is released and the intent removed.
    /// </summary>
    public async Task<ChangeDomainOutcome> DeleteAsync(string companyId, string name, string? etag, bool force, CancellationToken cancellationToken = default)
    {
        var db = Db;
        var now = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        if ((long)await db.ScriptEvaluateAsync(IntentScript, [RedisKeys.DomainRegistry, RedisKeys.DomainsBeingDeleted], [companyId, name, now])
                .ConfigureAwait(false) == 0)
        {
            return ChangeDomainOutcome.NotFound;
        }

        var intent = await feed.BeginAsync(name, ConfigOps.Delete).ConfigureAwait(false);
        var result = (string?)await db.ScriptEvaluateAsync(TombstoneScript,
            [RedisKeys.Domain(name), RedisKeys.DomainQueue(name), RedisKeys.DomainQuarantine(name)],
            [companyId, etag ?? string.Empty, force ? "1" : "0"]).ConfigureAwait(false);
        if (result != "OK")
        {
            await feed.CancelAsync(intent).ConfigureAwait(false);
            // Refused: nothing was deleted; the intent goes unless another delete of the same domain holds it too.
            await db.ScriptEvaluateAsync(DropIntentScript, [RedisKeys.DomainsBeingDeleted], [name]).ConfigureAwait(false);

            return result switch
            {
                "ETAG" => ChangeDomainOutcome.EtagMismatch,
                "HAS_MAIL" => ChangeDomainOutcome.HasMail,
                _ => ChangeDomainOutcome.NotFound,
            };
        }

        await db.SortedSetRemoveAsync(RedisKeys.TenantDomains(companyId), name).ConfigureAwait(false);
        await feed.PublishAsync(name, ConfigOps.Delete, intent).ConfigureAwait(false);
        await PurgeAndReleaseAsync(companyId, name, cancellationToken).ConfigureAwait(false);
        return ChangeDomainOutcome.Done;
    }

    /// <summary>
    /// Finishes deletions a crashed ControlPlane left behind: names in <see cref="RedisKeys.DomainsBeingDeleted"/>
    /// for longer than <paramref name="grace"/> (a live delete is given time to finish or refuse). A name whose
    /// settings still exist was refused or never tombstoned: its intent is dropped. Returns the names purged.
    /// </summary>
    public async Task<IReadOnlyList<string>> ResumePurgesAsync(TimeSpan grace, CancellationToken cancellationToken = default)
    {
        var db = Db;
        var cutoff = _clock.GetUtcNow().ToUnixTimeMilliseconds() - (long)grace.TotalMilliseconds;
        var stale = (await db.HashGetAllAsync(RedisKeys.DomainsBeingDeleted).ConfigureAwait(false))
            .Where(e => long.TryParse(e.Value.ToString().AsSpan(e.Value.ToString().IndexOf(' ', StringComparison.Ordinal) + 1),
                System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var since) && since <= cutoff)
            .Select(e => e.Name.ToString())
            .ToList();
        var purged = new List<string>();
        foreach (var name in stale)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (await db.KeyExistsAsync(RedisKeys.Domain(name)).ConfigureAwait(false))
            {
                // Never tombstoned (refused, or the ControlPlane died before): the domain stays.
                await db.HashDeleteAsync(RedisKeys.DomainsBeingDeleted, name).ConfigureAwait(false);
                continue;
            }

            var company = (string?)await db.HashGetAsync(RedisKeys.DomainRegistry, name).ConfigureAwait(false) ?? string.Empty;
            if (company.Length > 0)
            {
                await db.SortedSetRemoveAsync(RedisKeys.TenantDomains(company), name).ConfigureAwait(false);
            }

            await feed.PublishAsync(name, ConfigOps.Delete).ConfigureAwait(false);
            await PurgeAndReleaseAsync(company, name, cancellationToken).ConfigureAwait(false);
            purged.Add(name);
        }

        return purged;
    }

    private async Task PurgeAndReleaseAsync(string companyId, string name, CancellationToken cancellationToken)
    {
        await new DomainPurge(redis, scheduleShards).RunAsync(name, cancellationToken).ConfigureAwait(false);
        await Db.ScriptEvaluateAsync(ReleaseScript, [RedisKeys.DomainRegistry, RedisKeys.TenantDomains(companyId), RedisKeys.DomainsBeingDeleted], [companyId, name])
            .ConfigureAwait(false);
    }

    /// <summary>Every managed domain with settings, for a program's snapshot.</summary>
    public async Task<IReadOnlyList<DomainConfig>> LoadAllAsync(CancellationToken cancellationToken = default)
    {
        var registry = await Db.HashKeysAsync(RedisKeys.DomainRegistry).ConfigureAwait(false);
        var result = new List<DomainConfig>(registry.Length);
        const int Chunk = 2000;
        for (var i = 0; i < registry.Length; i += Chunk)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var names = registry.Skip(i).Take(Chunk).Select(v => v.ToString()).ToArray();
            foreach (var d in await GetManyAsync(names).ConfigureAwait(false))
            {
                if (d is not null)
                {
                    result.Add(d);
                }
            }
        }

        return result;
    }

    /// <summary>Several domains at once (pipelined); null where a name has no settings.</summary>
    public async Task<DomainConfig?[]> GetManyAsync(IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var db = Db;
        var tasks = new Task<RedisValue[]>[names.Count];
        for (var i = 0; i < names.Count; i++)
        {
            tasks[i] = db.HashGetAsync(RedisKeys.Domain(names[i]), ["etag", "data"]);
        }

        var fields = await Task.WhenAll(tasks).ConfigureAwait(false);
        return fields.Select(Parse).ToArray();
    }

    private static DomainConfig? Parse(RedisValue[] fields)
    {
        if (fields.Length < 2 || fields[1].IsNull)
        {
            return null;
        }

        return StoreJson.DeserializeDomain(fields[1].ToString(), (long)fields[0]);
    }
}
