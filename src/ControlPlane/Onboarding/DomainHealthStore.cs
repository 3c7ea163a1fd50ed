using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Gateway.Core.Storage;
using StackExchange.Redis;

namespace Gateway.ControlPlane.Onboarding;

/// <summary>A domain's stored health: the last report (null before the first check) and the last background verification attempt.</summary>
public sealed record StoredHealth(HealthReport? Report, DateTimeOffset? VerifyAttempt)
{
    public static readonly StoredHealth Never = new(null, null);
}

/// <summary>
/// The last health result of each domain, in the hash <c>gw:{d:&lt;domain&gt;}:health</c> beside the
/// domain's settings (same hash tag, so it is deleted with the domain and lives in its Cluster slot),
/// and the per-domain lock with which several ControlPlanes share the background checks.
/// </summary>
public sealed class DomainHealthStore(IConnectionMultiplexer redis)
{
    // KEYS: domain config, health. ARGV: field/value pairs. Writes only while the domain exists, so a
    // check that finishes after a deletion leaves nothing behind.
    private const string SaveScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        redis.call('HSET', KEYS[2], unpack(ARGV))
        return 1
        """;

    // KEYS: lock. ARGV: token. Deletes the lock only if this holder still owns it.
    private const string ReleaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """;

    private IDatabase Db => redis.GetDatabase();

    /// <summary>Stores a report; false when the domain no longer exists.</summary>
    public async Task<bool> SaveAsync(HealthReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var saved = (long)await Db.ScriptEvaluateAsync(SaveScript, [RedisKeys.Domain(report.Domain), RedisKeys.DomainHealth(report.Domain)],
        [
            "status", (int)report.Status,
            "time", report.CheckTime.ToUnixTimeMilliseconds(),
            "revision", report.Revision,
            "findings", JsonSerializer.Serialize(report.Findings.ToList(), HealthJson.Default.ListFinding),
        ]).ConfigureAwait(false);
        return saved == 1;
    }

    /// <summary>Records when the background job last asked DNS whether an unverified domain is verified.</summary>
    public Task SaveVerifyAttemptAsync(string domain, DateTimeOffset time) =>
        Db.ScriptEvaluateAsync(SaveScript, [RedisKeys.Domain(domain), RedisKeys.DomainHealth(domain)],
            ["verify_attempt", time.ToUnixTimeMilliseconds()]);

    /// <summary>The stored health of several domains (pipelined), in the order of <paramref name="names"/>.</summary>
    public async Task<StoredHealth[]> GetManyAsync(IReadOnlyList<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var db = Db;
        var tasks = names.Select(n => db.HashGetAsync(RedisKeys.DomainHealth(n), ["status", "time", "revision", "findings", "verify_attempt"])).ToArray();
        var all = await Task.WhenAll(tasks).ConfigureAwait(false);
        return all.Select((fields, i) => Parse(names[i], fields)).ToArray();
    }

    /// <summary>Takes the domain's check lock for <paramref name="ttl"/>; returns the token to release it with, or null if held.</summary>
    public async Task<string?> TryLockAsync(string domain, TimeSpan ttl)
    {
        var token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
        return await Db.StringSetAsync(RedisKeys.DomainCheckLock(domain), token, ttl, When.NotExists).ConfigureAwait(false) ? token : null;
    }

    public Task ReleaseAsync(string domain, string token) =>
        Db.ScriptEvaluateAsync(ReleaseScript, [RedisKeys.DomainCheckLock(domain)], [token]);

    private static StoredHealth Parse(string domain, RedisValue[] f)
    {
        DateTimeOffset? verifyAttempt = f[4].IsNull ? null : DateTimeOffset.FromUnixTimeMilliseconds((long)f[4]);
        if (f[0].IsNull || f[1].IsNull || f[3].IsNull)
        {
            return new StoredHealth(null, verifyAttempt);
        }

        var findings = JsonSerializer.Deserialize(f[3].ToString(), HealthJson.Default.ListFinding) ?? [];
        var report = new HealthReport(domain, (DomainStatus)(int)f[0], findings, DateTimeOffset.FromUnixTimeMilliseconds((long)f[1]),
            long.Parse(f[2].ToString(), CultureInfo.InvariantCulture));
        return new StoredHealth(report, verifyAttempt);
    }
}

/// <summary>Source-generated JSON for stored findings (snake_case, readable in redis-cli).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(List<Finding>))]
internal sealed partial class HealthJson : JsonSerializerContext;
