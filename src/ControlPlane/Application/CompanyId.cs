namespace Gateway.ControlPlane.Application;

/// <summary>A tenant's company id: one DNS label (RFC 1123), used in <c>&lt;id&gt;.in.&lt;gateway-domain&gt;</c>.</summary>
public static class CompanyId
{
    public static bool TryNormalize(string? input, out string normalized, out string error)
    {
        normalized = (input ?? string.Empty).Trim().ToLowerInvariant();
        if (normalized.Length is 0 or > 63)
        {
            error = "company_id must be 1-63 characters: lower-case letters, digits and hyphens (a DNS label)";
            return false;
        }

        if (normalized[0] == '-' || normalized[^1] == '-' || !normalized.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
        {
            error = $"company_id '{input}' must be a DNS label: lower-case letters, digits and hyphens, not starting or ending with a hyphen";
            return false;
        }

        error = string.Empty;
        return true;
    }
}
