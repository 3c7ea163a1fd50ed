using System.Security.Cryptography;
using System.Text;

namespace Gateway.ControlPlane.Application;

/// <summary>
/// Key material. Keys are 256-bit random secrets, so one SHA-256 is enough to store them safely
/// (no slow password hash is needed for a secret nobody chose). A tenant key carries its id so the
/// record is found without scanning: <c>gwk_&lt;12 hex id&gt;_&lt;64 hex secret&gt;</c>.
/// The operator key is <c>gwo_&lt;64 hex secret&gt;</c>.
/// </summary>
public static class ApiKeys
{
    public const string TenantPrefix = "gwk_";
    public const string OperatorPrefix = "gwo_";
    private const int IdLength = 12;

    public static (string KeyId, string Key) NewTenantKey()
    {
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(IdLength / 2));
        return (id, $"{TenantPrefix}{id}_{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32))}");
    }

    public static string NewOperatorKey() => OperatorPrefix + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    /// <summary>The key id inside a tenant key, or null if it is not shaped like one.</summary>
    public static string? TenantKeyId(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length != TenantPrefix.Length + IdLength + 1 + 64 || !key.StartsWith(TenantPrefix, StringComparison.Ordinal) ||
            key[TenantPrefix.Length + IdLength] != '_')
        {
            return null;
        }

        var id = key.Substring(TenantPrefix.Length, IdLength);
        return id.All(char.IsAsciiHexDigitLower) ? id : null;
    }

    /// <summary>True for a string shaped like a key id (12 lower-case hex digits).</summary>
    public static bool IsKeyId(string s) => s.Length == IdLength && s.All(char.IsAsciiHexDigitLower);

    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>Constant-time comparison of a presented key with a stored hash.</summary>
    public static bool Matches(string presentedKey, string storedSha256Hex) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(presentedKey)), Encoding.ASCII.GetBytes(storedSha256Hex));
}

/// <summary>Who is calling: the operator, or one tenant.</summary>
public sealed record Principal(bool IsOperator, string? CompanyId)
{
    public static readonly Principal Operator = new(true, null);

    public static Principal Tenant(string companyId) => new(false, companyId);
}
