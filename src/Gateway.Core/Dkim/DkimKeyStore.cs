using System.Text.Json;
using System.Text.Json.Serialization;
using Gateway.Core.Secrets;
using Gateway.Core.Storage;
using StackExchange.Redis;
using Gateway.Core.Domains;

namespace Gateway.Core.Dkim;

/// <summary>A private key as stored: its type and the sealed PKCS#8 bytes.</summary>
public sealed record StoredDkimKey(DkimKeyAlgorithm Algorithm, SealedSecret Sealed, DateTimeOffset CreateTime);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true)]
[JsonSerializable(typeof(StoredDkimKey))]
internal sealed partial class DkimStoreJson : JsonSerializerContext;

/// <summary>
/// DKIM private keys in Redis (requirements §10): one hash per domain (<see cref="RedisKeys.DomainDkimKeys"/>, in the
/// domain's slot, so deleting the domain removes them), field = selector, value = the PKCS#8 key sealed with AES-GCM under
/// the key-encryption key (<see cref="KeyEncryption"/>), bound to domain and selector. Nothing here is ever sent over the API.
/// </summary>
public sealed class DkimKeyStore(IConnectionMultiplexer redis, Func<KeyEncryption> kek)
{
    public async Task SaveAsync(string domain, string selector, DkimKeyPair pair, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(pair);
        var stored = new StoredDkimKey(pair.Algorithm, kek().Seal(pair.PrivateKeyPkcs8, Bound(domain, selector)), now);
        await redis.GetDatabase().HashSetAsync(RedisKeys.DomainDkimKeys(domain), selector, JsonSerializer.Serialize(stored, DkimStoreJson.Default.StoredDkimKey))
            .ConfigureAwait(false);
    }

    /// <summary>The PKCS#8 private key of a selector.</summary>
    /// <exception cref="SecretUnavailableException">No such key, another key-encryption key, or tampered data.</exception>
    public async Task<(DkimKeyAlgorithm Algorithm, byte[] Pkcs8)> LoadAsync(string domain, string selector)
    {
        var value = await redis.GetDatabase().HashGetAsync(RedisKeys.DomainDkimKeys(domain), selector).ConfigureAwait(false);
        if (value.IsNullOrEmpty)
        {
            throw new SecretUnavailableException($"no DKIM private key is stored for selector {selector} of {domain}");
        }

        var stored = JsonSerializer.Deserialize(value.ToString(), DkimStoreJson.Default.StoredDkimKey)
                     ?? throw new SecretUnavailableException($"the DKIM key record of {selector} of {domain} is empty");
        return (stored.Algorithm, kek().Open(stored.Sealed, Bound(domain, selector)));
    }

    public Task DeleteAsync(string domain, string selector) =>
        redis.GetDatabase().HashDeleteAsync(RedisKeys.DomainDkimKeys(domain), selector);

    public Task DeleteAllAsync(string domain) => redis.GetDatabase().KeyDeleteAsync(RedisKeys.DomainDkimKeys(domain));

    /// <summary>The associated data: a sealed key opens only for its own domain and selector.</summary>
    private static string Bound(string domain, string selector) => $"dkim:{domain}:{selector}";
}
