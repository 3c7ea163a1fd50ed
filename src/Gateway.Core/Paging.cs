using System.Buffers.Text;
using System.Text;
using Gateway.Core.Errors;

namespace Gateway.Core;

/// <summary>AIP-158 paging: page sizes and opaque page tokens (the last item's key, base64url).</summary>
public static class Paging
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 1000;

    public static int ResolvePageSize(int requested, List<FieldViolation> violations)
    {
        ArgumentNullException.ThrowIfNull(violations);
        if (requested < 0)
        {
            violations.Add(new FieldViolation("page_size", $"page_size must not be negative; {requested} given"));
            return DefaultPageSize;
        }

        return requested == 0 ? DefaultPageSize : Math.Min(requested, MaxPageSize);
    }

    public static string Encode(string? lastKey) =>
        lastKey is null ? string.Empty : "p1." + Base64Url.EncodeToString(Encoding.UTF8.GetBytes(lastKey));

    public static string? Decode(string? token, List<FieldViolation> violations)
    {
        ArgumentNullException.ThrowIfNull(violations);
        if (string.IsNullOrEmpty(token))
        {
            return null;
        }

        try
        {
            if (token.StartsWith("p1.", StringComparison.Ordinal))
            {
                return Encoding.UTF8.GetString(Base64Url.DecodeFromChars(token.AsSpan(3)));
            }
        }
        catch (FormatException)
        {
        }

        violations.Add(new FieldViolation("page_token", "page_token is not one this server returned"));
        return null;
    }
}
