using Gateway.Core.Errors;
using Gateway.Core.Storage;
using Gateway.Core;

namespace Gateway.ControlPlane.Application;

/// <summary>Tenants, API keys and authentication (requirements §2).</summary>
public sealed class TenantManager(TenantStore store, DomainStore domains, GatewayOptions options, TimeProvider clock)
{
    private volatile string? _operatorHash;

    public async Task<TenantRecord> CreateAsync(string? companyId, string? displayName)
    {
        var id = NormalizeCompanyId(companyId);
        var name = (displayName ?? string.Empty).Trim();
        if (name.Length > 200)
        {
            GatewayException.ThrowInvalid("display_name", "display_name must be at most 200 characters");
        }

        var tenant = new TenantRecord(id, name.Length == 0 ? id : name, clock.GetUtcNow());
        if (!await store.CreateAsync(tenant).ConfigureAwait(false))
        {
            GatewayException.ThrowAlreadyExists($"Tenant '{id}' already exists.");
        }

        return tenant;
    }

    public async Task<TenantRecord> GetAsync(string? companyId)
    {
        var id = NormalizeCompanyId(companyId);
        return await store.GetAsync(id).ConfigureAwait(false) ?? throw NotFound(id);
    }

    public async Task<(IReadOnlyList<TenantRecord> Items, string NextPageToken)> ListAsync(int pageSize, string? pageToken)
    {
        var violations = new List<FieldViolation>();
        var size = Paging.ResolvePageSize(pageSize, violations);
        var after = Paging.Decode(pageToken, violations);
        if (violations.Count > 0)
        {
            GatewayException.ThrowInvalid(violations);
        }

        var (items, last) = await store.ListAsync(after, size).ConfigureAwait(false);
        return (items, Paging.Encode(last));
    }

    public Task<long> CountDomainsAsync(string companyId) => domains.CountAsync(companyId);

    /// <summary>
    /// Deletes a tenant and revokes its keys. While it owns domains: FAILED_PRECONDITION, unless
    /// <paramref name="force"/>, which deletes each domain as a forced DeleteDomain would.
    /// </summary>
    public async Task DeleteAsync(string? companyId, bool force, Func<string, string, Task>? deleteDomain = null)
    {
        var id = NormalizeCompanyId(companyId);
        if (force && deleteDomain is not null)
        {
            foreach (var name in await domains.NamesAsync(id).ConfigureAwait(false))
            {
                await deleteDomain(id, name).ConfigureAwait(false);
            }
        }

        switch (await store.DeleteAsync(id).ConfigureAwait(false))
        {
            case "NOT_FOUND":
                throw NotFound(id);
            case "HAS_DOMAINS":
                GatewayException.ThrowFailedPrecondition(
                    $"Tenant '{id}' still manages domains; delete them first or delete the tenant with force.");
                break;
        }
    }

    public async Task<(ApiKeyRecord Record, string Key)> CreateApiKeyAsync(string? companyId, string? description)
    {
        var id = NormalizeCompanyId(companyId);
        var text = (description ?? string.Empty).Trim();
        if (text.Length > 200)
        {
            GatewayException.ThrowInvalid("description", "description must be at most 200 characters");
        }

        var (keyId, key) = ApiKeys.NewTenantKey();
        var record = new ApiKeyRecord(keyId, id, text, ApiKeys.Hash(key), clock.GetUtcNow());
        if (!await store.AddApiKeyAsync(record).ConfigureAwait(false))
        {
            throw NotFound(id);
        }

        return (record, key);
    }

    public async Task<IReadOnlyList<ApiKeyRecord>> ListApiKeysAsync(string? companyId)
    {
        var id = NormalizeCompanyId(companyId);
        if (await store.GetAsync(id).ConfigureAwait(false) is null)
        {
            throw NotFound(id);
        }

        return await store.ListApiKeysAsync(id).ConfigureAwait(false);
    }

    /// <summary>Revokes a key given its id or the whole key.</summary>
    public async Task RevokeApiKeyAsync(string? keyIdOrKey)
    {
        var s = (keyIdOrKey ?? string.Empty).Trim();
        var keyId = ApiKeys.IsKeyId(s) ? s : ApiKeys.TenantKeyId(s);
        if (keyId is null)
        {
            GatewayException.ThrowInvalid("key_id", "key_id must be a key id (12 hex digits) or a whole tenant key");
        }

        var record = await store.GetApiKeyAsync(keyId).ConfigureAwait(false);
        if (record is null || !await store.RevokeApiKeyAsync(record).ConfigureAwait(false))
        {
            GatewayException.ThrowNotFound($"API key '{keyId}' not found.");
        }
    }

    /// <summary>The caller behind a bearer key, or null when the key is unknown.</summary>
    public async Task<Principal?> AuthenticateAsync(string? key)
    {
        if (string.IsNullOrEmpty(key))
        {
            return null;
        }

        if (key.StartsWith(ApiKeys.TenantPrefix, StringComparison.Ordinal))
        {
            var keyId = ApiKeys.TenantKeyId(key);
            if (keyId is null)
            {
                return null;
            }

            var record = await store.GetApiKeyAsync(keyId).ConfigureAwait(false);
            return record is not null && ApiKeys.Matches(key, record.Sha256) ? Principal.Tenant(record.CompanyId) : null;
        }

        if (!string.IsNullOrEmpty(options.OperatorKey))
        {
            return ApiKeys.Matches(key, ApiKeys.Hash(options.OperatorKey)) ? Principal.Operator : null;
        }

        var hash = _operatorHash ??= await store.GetOperatorKeyHashAsync().ConfigureAwait(false);
        return hash is not null && ApiKeys.Matches(key, hash) ? Principal.Operator : null;
    }

    /// <summary>
    /// Makes sure an operator key exists: the configured one, or one generated now whose hash is
    /// stored in Redis. Returns the new key when this call generated it (to be written to a file), else null.
    /// </summary>
    public async Task<string?> EnsureOperatorKeyAsync()
    {
        if (!string.IsNullOrEmpty(options.OperatorKey))
        {
            return null;
        }

        var existing = await store.GetOperatorKeyHashAsync().ConfigureAwait(false);
        if (existing is not null)
        {
            _operatorHash = existing;
            return null;
        }

        var key = ApiKeys.NewOperatorKey();
        var hash = ApiKeys.Hash(key);
        if (!await store.TrySetOperatorKeyHashAsync(hash, clock.GetUtcNow()).ConfigureAwait(false))
        {
            _operatorHash = await store.GetOperatorKeyHashAsync().ConfigureAwait(false);
            return null;
        }

        _operatorHash = hash;
        return key;
    }

    /// <summary>Undoes <see cref="EnsureOperatorKeyAsync"/> when its key could not be written down.</summary>
    public async Task ForgetGeneratedOperatorKeyAsync(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        await store.ClearOperatorKeyHashAsync(ApiKeys.Hash(key)).ConfigureAwait(false);
        _operatorHash = null;
    }

    public static string NormalizeCompanyId(string? companyId)
    {
        if (!CompanyId.TryNormalize(companyId, out var id, out var error))
        {
            GatewayException.ThrowInvalid("company_id", error);
        }

        return id;
    }

    private static GatewayException NotFound(string id) => new(ErrorKind.NotFound, $"Tenant '{id}' not found.");
}
