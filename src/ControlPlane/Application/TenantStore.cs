using System.Text.Json;
using StackExchange.Redis;
using Gateway.Core.Storage;

namespace Gateway.ControlPlane.Application;

/// <summary>Tenants and their API keys, all in the <c>{cfg}</c> slot.</summary>
public sealed class TenantStore(IConnectionMultiplexer redis)
{
    // KEYS: tenants, tenant ids. ARGV: company, json.
    private const string CreateScript = """
        if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
        redis.call('ZADD', KEYS[2], 0, ARGV[1])
        return 1
        """;

    // KEYS: tenants, tenant ids, tenant domains, tenant key ids, api keys. ARGV: company.
    // Refuses while the tenant still owns domains; revokes its keys.
    private const string DeleteScript = """
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 'NOT_FOUND' end
        if redis.call('ZCARD', KEYS[3]) > 0 then return 'HAS_DOMAINS' end
        local ids = redis.call('SMEMBERS', KEYS[4])
        for _, id in ipairs(ids) do redis.call('HDEL', KEYS[5], id) end
        redis.call('DEL', KEYS[4], KEYS[3])
        redis.call('HDEL', KEYS[1], ARGV[1])
        redis.call('ZREM', KEYS[2], ARGV[1])
        return 'OK'
        """;

    // KEYS: tenants, api keys, tenant key ids. ARGV: company, key id, json.
    private const string AddKeyScript = """
        if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
        redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
        redis.call('SADD', KEYS[3], ARGV[2])
        return 1
        """;

    private IDatabase Db => redis.GetDatabase();

    /// <summary>Creates a tenant; false if the company id is taken.</summary>
    public async Task<bool> CreateAsync(TenantRecord tenant)
    {
        ArgumentNullException.ThrowIfNull(tenant);
        var json = JsonSerializer.Serialize(tenant, StoreJson.Default.TenantRecord);
        return (long)await Db.ScriptEvaluateAsync(CreateScript, [RedisKeys.Tenants, RedisKeys.TenantIds], [tenant.CompanyId, json])
            .ConfigureAwait(false) == 1;
    }

    public async Task<TenantRecord?> GetAsync(string companyId)
    {
        var json = await Db.HashGetAsync(RedisKeys.Tenants, companyId).ConfigureAwait(false);
        return json.IsNull ? null : JsonSerializer.Deserialize(json.ToString(), StoreJson.Default.TenantRecord);
    }

    /// <summary>Tenants ordered by company id after <paramref name="after"/>; the second item names the last one when more follow.</summary>
    public async Task<(IReadOnlyList<TenantRecord> Items, string? Last)> ListAsync(string? after, int limit)
    {
        var ids = await Db.SortedSetRangeByValueAsync(RedisKeys.TenantIds,
            min: after is null ? default : (RedisValue)after, max: default,
            exclude: after is null ? Exclude.None : Exclude.Start, order: Order.Ascending, skip: 0, take: limit + 1).ConfigureAwait(false);
        var page = ids.Take(limit).ToArray();
        var values = page.Length == 0 ? [] : await Db.HashGetAsync(RedisKeys.Tenants, page).ConfigureAwait(false);
        var items = values.Where(v => !v.IsNull).Select(v => JsonSerializer.Deserialize(v.ToString(), StoreJson.Default.TenantRecord)!).ToList();
        return (items, ids.Length > limit && page.Length > 0 ? page[^1].ToString() : null);
    }

    /// <summary>Deletes a tenant that owns no domains, with its keys. Returns OK, NOT_FOUND or HAS_DOMAINS.</summary>
    public async Task<string> DeleteAsync(string companyId) =>
        (string)(await Db.ScriptEvaluateAsync(DeleteScript,
            [RedisKeys.Tenants, RedisKeys.TenantIds, RedisKeys.TenantDomains(companyId), RedisKeys.TenantApiKeys(companyId), RedisKeys.ApiKeys],
            [companyId]).ConfigureAwait(false))!;

    /// <summary>Stores a key's record; false when the tenant does not exist.</summary>
    public async Task<bool> AddApiKeyAsync(ApiKeyRecord key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var json = JsonSerializer.Serialize(key, StoreJson.Default.ApiKeyRecord);
        return (long)await Db.ScriptEvaluateAsync(AddKeyScript,
            [RedisKeys.Tenants, RedisKeys.ApiKeys, RedisKeys.TenantApiKeys(key.CompanyId)], [key.CompanyId, key.KeyId, json])
            .ConfigureAwait(false) == 1;
    }

    public async Task<ApiKeyRecord?> GetApiKeyAsync(string keyId)
    {
        var json = await Db.HashGetAsync(RedisKeys.ApiKeys, keyId).ConfigureAwait(false);
        return json.IsNull ? null : JsonSerializer.Deserialize(json.ToString(), StoreJson.Default.ApiKeyRecord);
    }

    public async Task<IReadOnlyList<ApiKeyRecord>> ListApiKeysAsync(string companyId)
    {
        var ids = await Db.SetMembersAsync(RedisKeys.TenantApiKeys(companyId)).ConfigureAwait(false);
        if (ids.Length == 0)
        {
            return [];
        }

        var values = await Db.HashGetAsync(RedisKeys.ApiKeys, ids).ConfigureAwait(false);
        return values.Where(v => !v.IsNull).Select(v => JsonSerializer.Deserialize(v.ToString(), StoreJson.Default.ApiKeyRecord)!)
            .OrderBy(k => k.CreateTime).ToList();
    }

    /// <summary>Removes a key; false if it did not exist.</summary>
    public async Task<bool> RevokeApiKeyAsync(ApiKeyRecord key)
    {
        ArgumentNullException.ThrowIfNull(key);
        var tran = Db.CreateTransaction();
        var removed = tran.HashDeleteAsync(RedisKeys.ApiKeys, key.KeyId);
        _ = tran.SetRemoveAsync(RedisKeys.TenantApiKeys(key.CompanyId), key.KeyId);
        await tran.ExecuteAsync().ConfigureAwait(false);
        return await removed.ConfigureAwait(false);
    }

    /// <summary>The generated operator key's hash, if one was generated.</summary>
    public async Task<string?> GetOperatorKeyHashAsync()
    {
        var v = await Db.HashGetAsync(RedisKeys.OperatorKey, "sha256").ConfigureAwait(false);
        return v.IsNull ? null : v.ToString();
    }

    /// <summary>Stores a generated operator key's hash unless one exists; false if another instance won.</summary>
    public async Task<bool> TrySetOperatorKeyHashAsync(string sha256, DateTimeOffset time) =>
        (long)await Db.ScriptEvaluateAsync("""
            if redis.call('HSETNX', KEYS[1], 'sha256', ARGV[1]) == 0 then return 0 end
            redis.call('HSET', KEYS[1], 'create_time', ARGV[2])
            return 1
            """, [RedisKeys.OperatorKey], [sha256, time.ToString("O", System.Globalization.CultureInfo.InvariantCulture)]).ConfigureAwait(false) == 1;

    public Task ClearOperatorKeyHashAsync(string sha256) =>
        Db.ScriptEvaluateAsync("if redis.call('HGET', KEYS[1], 'sha256') == ARGV[1] then redis.call('DEL', KEYS[1]) end return 1",
            [RedisKeys.OperatorKey], [sha256]);
}
