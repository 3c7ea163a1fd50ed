using System.Text.Json;
using System.Text.Json.Serialization;
using Gateway.Core.Domains;

namespace Gateway.Core.Storage;

/// <summary>A tenant as stored.</summary>
public sealed record TenantRecord(string CompanyId, string DisplayName, DateTimeOffset CreateTime);

/// <summary>An API key as stored: only the SHA-256 of the key, never the key.</summary>
public sealed record ApiKeyRecord(string KeyId, string CompanyId, string Description, string Sha256, DateTimeOffset CreateTime);

/// <summary>Source-generated JSON for everything the store writes (snake_case, readable in redis-cli).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(DomainConfig))]
[JsonSerializable(typeof(TenantRecord))]
[JsonSerializable(typeof(ApiKeyRecord))]
public sealed partial class StoreJson : JsonSerializerContext
{
    public static string Serialize(DomainConfig value) => JsonSerializer.Serialize(value, Default.DomainConfig);

    public static DomainConfig DeserializeDomain(string json, long revision) =>
        (JsonSerializer.Deserialize(json, Default.DomainConfig) ?? throw new JsonException("empty domain record")) with { Revision = revision };
}
