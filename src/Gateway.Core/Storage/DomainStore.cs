using Gateway.Core.Domains;
using StackExchange.Redis;

namespace Gateway.Core.Storage;

public enum CreateDomainOutcome
{
    Created,
    AlreadyManaged,
    NoSuchTenant,
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
public sealed class DomainStore(IConnectionMultiplexer redis, ConfigChangeFeed feed)
{
    // KEYS: tenants, registry, tenant domains. ARGV: company, domain.
    private const string ClaimScript = """
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 'NO_TENANT' end
        local owner = redis.call('HGET', KEYS[2], ARGV[2])
        if owner and owner ~= ARGV[1] then return 'TAKEN' end
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
    private const string ReplaceScript = """
        local cur = redis.call('HMGET', KEYS[1], 'company', 'etag')
        if cur[1] ~= ARGV[1] then return -1 end
        if cur[2] ~= ARGV[2] then return -2 end
        local n = redis.call('HINCRBY', KEYS[1], 'etag', 1)
        redis.call('HSET', KEYS[1], 'data', ARGV[3])
        return n
        """;

    // KEYS: domain config, queue index, quarantine index, log, ... (every key of the domain).
    // ARGV: company, expected etag ('' = any), force ('1'). Returns 'OK', 'NOT_FOUND', 'ETAG', 'HAS_MAIL'.
    private const string DeleteScript = """
        local cur = redis.call('HMGET', KEYS[1], 'company', 'etag')
        if cur[1] ~= ARGV[1] then return 'NOT_FOUND' end
        if ARGV[2] ~= '' and cur[2] ~= ARGV[2] then return 'ETAG' end
        if ARGV[3] ~= '1' and (redis.call('ZCARD', KEYS[2]) > 0 or redis.call('ZCARD', KEYS[3]) > 0) then return 'HAS_MAIL' end
        redis.call('DEL', unpack(KEYS))
        return 'OK'
        """;

    // KEYS: registry, tenant domains. ARGV: company, domain.
    private const string ReleaseScript = """
        if redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[1] then redis.call('HDEL', KEYS[1], ARGV[2]) end
        redis.call('ZREM', KEYS[2], ARGV[2])
        return 1
        """;

    private IDatabase Db => redis.GetDatabase();

    /// <summary>Registers a new domain for its tenant and announces it.</summary>
    public async Task<(CreateDomainOutcome Outcome, DomainConfig? Domain)> CreateAsync(DomainConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var claim = (string?)await Db.ScriptEvaluateAsync(ClaimScript,
            [RedisKeys.Tenants, RedisKeys.DomainRegistry, RedisKeys.TenantDomains(config.CompanyId)],
            [config.CompanyId, config.Name]).ConfigureAwait(false);
        switch (claim)
        {
            case "NO_TENANT":
                return (CreateDomainOutcome.NoSuchTenant, null);
            case "TAKEN":
                return (CreateDomainOutcome.AlreadyManaged, null);
        }

        var created = (long)await Db.ScriptEvaluateAsync(CreateScript,
            [RedisKeys.Domain(config.Name)], [config.CompanyId, StoreJson.Serialize(config)]).ConfigureAwait(false);
        if (created == 0)
        {
            return (CreateDomainOutcome.AlreadyManaged, null);
        }

        await feed.PublishAsync(config.Name, ConfigOps.Create).ConfigureAwait(false);
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
        var result = (long)await Db.ScriptEvaluateAsync(ReplaceScript, [RedisKeys.Domain(next.Name)],
            [next.CompanyId, expectedRevision, StoreJson.Serialize(next)]).ConfigureAwait(false);
        switch (result)
        {
            case -1:
                return (ChangeDomainOutcome.NotFound, null);
            case -2:
                return (ChangeDomainOutcome.EtagMismatch, null);
        }

        await feed.PublishAsync(next.Name, op).ConfigureAwait(false);
        return (ChangeDomainOutcome.Done, next with { Revision = result });
    }

    /// <summary>
    /// Deletes a domain's settings and every key of its slot, then releases the claim.
    /// Refused while mail of the domain is queued or quarantined unless <paramref name="force"/>.
    /// </summary>
    public async Task<ChangeDomainOutcome> DeleteAsync(string companyId, string name, string? etag, bool force)
    {
        var keys = new List<RedisKey> { RedisKeys.Domain(name), RedisKeys.DomainQueue(name), RedisKeys.DomainQuarantine(name) };
        keys.AddRange(await OtherDomainKeysAsync(name, keys).ConfigureAwait(false));
        var result = (string?)await Db.ScriptEvaluateAsync(DeleteScript, [.. keys], [companyId, etag ?? string.Empty, force ? "1" : "0"])
            .ConfigureAwait(false);
        switch (result)
        {
            case "NOT_FOUND":
                return ChangeDomainOutcome.NotFound;
            case "ETAG":
                return ChangeDomainOutcome.EtagMismatch;
            case "HAS_MAIL":
                return ChangeDomainOutcome.HasMail;
        }

        await Db.ScriptEvaluateAsync(ReleaseScript, [RedisKeys.DomainRegistry, RedisKeys.TenantDomains(companyId)], [companyId, name])
            .ConfigureAwait(false);
        await feed.PublishAsync(name, ConfigOps.Delete).ConfigureAwait(false);
        return ChangeDomainOutcome.Done;
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

    private async Task<IEnumerable<RedisKey>> OtherDomainKeysAsync(string name, List<RedisKey> known)
    {
        // Keys added by later features (rules, quarantine bodies, queue entries) all carry the domain's
        // hash tag; find them so the delete script removes the whole slot's share of the domain.
        var found = new List<RedisKey>();
        foreach (var endpoint in redis.GetEndPoints())
        {
            var server = redis.GetServer(endpoint);
            if (!server.IsConnected || server.IsReplica)
            {
                continue;
            }

            await foreach (var key in server.KeysAsync(pattern: RedisKeys.DomainKeyPattern(name), pageSize: 1000).ConfigureAwait(false))
            {
                if (!known.Contains(key))
                {
                    found.Add(key);
                }
            }
        }

        return found;
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
