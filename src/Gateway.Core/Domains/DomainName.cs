using System.Globalization;
using System.Net;

namespace Gateway.Core.Domains;

/// <summary>
/// Normalisation of DNS names as requirements §3.1 wants them: lower case, no trailing dot,
/// IDN converted to its A-label (UTS #46 via ICU, RFC 5891), LDH labels (RFC 1123 §2.1).
/// </summary>
public static class DomainName
{
    private static readonly IdnMapping Idn = new() { UseStd3AsciiRules = true, AllowUnassigned = false };

    public const int MaxLength = 253;
    public const int MaxLabelLength = 63;

    /// <summary>
    /// Normalises a name to register as a managed domain, or says why it cannot be one.
    /// Refuses wildcards and IP literals; requires at least two labels.
    /// </summary>
    public static bool TryNormalize(string? input, out string normalized, out string error)
    {
        normalized = string.Empty;
        var s = input?.Trim() ?? string.Empty;
        if (s.Length == 0)
        {
            error = "a domain name is required";
            return false;
        }

        if (s.Contains('*', StringComparison.Ordinal))
        {
            error = $"'{input}' is a wildcard; register the domain and each subdomain separately";
            return false;
        }

        if (s.StartsWith('[') || IsIpLiteral(s))
        {
            error = $"'{input}' is an IP address; register a domain name";
            return false;
        }

        if (s.Contains('@', StringComparison.Ordinal))
        {
            error = $"'{input}' is an email address; register its domain only";
            return false;
        }

        if (s.Any(char.IsWhiteSpace))
        {
            error = $"'{input}' contains white space";
            return false;
        }

        if (s.EndsWith('.'))
        {
            s = s[..^1];
        }

        if (s.Length == 0 || s.StartsWith('.') || s.EndsWith('.') || s.Contains("..", StringComparison.Ordinal))
        {
            error = $"'{input}' has an empty label";
            return false;
        }

        // ASCII input gets precise reasons (label length, characters) before the IDN mapper's generic one.
        if (s.All(char.IsAscii) && !IsValidAsciiHostName(s.ToLowerInvariant(), out error))
        {
            error = $"'{input}' is not a valid domain name: {error}";
            return false;
        }

        string ascii;
        try
        {
            // ASCII upper case is not folded by IdnMapping; non-ASCII is folded by UTS #46 mapping.
            ascii = Idn.GetAscii(s.ToLowerInvariant()).ToLowerInvariant();
        }
        catch (ArgumentException)
        {
            error = $"'{input}' is not a valid domain name (letters, digits and hyphens per label, or a valid internationalised name)";
            return false;
        }

        if (!IsValidAsciiHostName(ascii, out error))
        {
            error = $"'{input}' is not a valid domain name: {error}";
            return false;
        }

        if (!ascii.Contains('.', StringComparison.Ordinal))
        {
            error = $"'{input}' is a single label; register a fully qualified domain such as example.com";
            return false;
        }

        normalized = ascii;
        error = string.Empty;
        return true;
    }

    /// <summary>Normalises or returns null; for lookups where the reason does not matter.</summary>
    public static string? NormalizeOrNull(string? input) => TryNormalize(input, out var n, out _) ? n : null;

    /// <summary>True when <paramref name="name"/> is <paramref name="parent"/> or a subdomain of it (both normalised).</summary>
    public static bool IsSameOrSubdomain(string name, string parent) =>
        name.Equals(parent, StringComparison.Ordinal) ||
        (name.Length > parent.Length && name.EndsWith(parent, StringComparison.Ordinal) && name[name.Length - parent.Length - 1] == '.');

    private static bool IsIpLiteral(string s)
    {
        if (s.Contains(':', StringComparison.Ordinal))
        {
            return IPAddress.TryParse(s, out _);
        }

        // Dotted numbers (192.0.2.1, 10.1) are IP-like; an all-numeric last label is never a TLD.
        var last = s.TrimEnd('.').Split('.')[^1];
        return last.Length > 0 && last.All(char.IsAsciiDigit);
    }

    private static bool IsValidAsciiHostName(string ascii, out string error)
    {
        if (ascii.Length > MaxLength)
        {
            error = $"longer than {MaxLength} characters";
            return false;
        }

        foreach (var label in ascii.Split('.'))
        {
            if (label.Length is 0 or > MaxLabelLength)
            {
                error = $"each label must have 1-{MaxLabelLength} characters";
                return false;
            }

            if (label[0] == '-' || label[^1] == '-')
            {
                error = $"label '{label}' starts or ends with a hyphen";
                return false;
            }

            foreach (var c in label)
            {
                if (!(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-'))
                {
                    error = $"label '{label}' contains '{c}'";
                    return false;
                }
            }
        }

        error = string.Empty;
        return true;
    }
}
