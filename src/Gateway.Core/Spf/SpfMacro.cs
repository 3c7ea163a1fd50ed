using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Gateway.Core.Spf;

/// <summary>What macros expand to during one <c>check_host()</c> (RFC 7208 §7.2).</summary>
/// <param name="Sender">The sender, <c>local@domain</c> (<c>postmaster@&lt;domain&gt;</c> when the local part is empty).</param>
/// <param name="Domain">The domain whose record is being evaluated (changes with include/redirect).</param>
/// <param name="Ip">The client address (IPv4-mapped IPv6 already as IPv4).</param>
/// <param name="Helo">The HELO/EHLO name.</param>
/// <param name="ValidatedName">The <c>%{p}</c> value; only looked up when a macro needs it.</param>
public readonly record struct SpfMacroContext(string Sender, string Domain, IPAddress Ip, string Helo, string ValidatedName = "unknown");

/// <summary>
/// Macro strings of RFC 7208 §7 as pure functions: syntax checks (done for the whole record before
/// evaluation, §4.6) and expansion.
/// </summary>
public static class SpfMacro
{
    /// <summary>Macro letters allowed in domain-specs; c, r and t are for explanation strings only (§7.1).</summary>
    private const string DomainLetters = "slodiphv";

    private const string AllLetters = "slodiphvcrt";

    /// <summary>delimiter = "." / "-" / "+" / "," / "/" / "_" / "=" (§7.1).</summary>
    private const string Delimiters = ".-+,/_=";

    /// <summary>Longest domain name in text form; longer expansions lose labels on the left (§7.3).</summary>
    private const int MaxDomainLength = 253;

    /// <summary>
    /// Checks a <c>domain-spec</c> (§7.1): a macro-string ending in a macro or in <c>"." toplabel ["."]</c>.
    /// </summary>
    public static bool IsValidDomainSpec(string spec, out string error)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Length == 0)
        {
            error = "the domain is empty";
            return false;
        }

        if (!Scan(spec, DomainLetters, out var literalTailStart, out error))
        {
            return false;
        }

        if (literalTailStart == spec.Length)
        {
            // domain-end = macro-expand.
            return true;
        }

        var tail = spec.AsSpan(literalTailStart);
        if (tail.EndsWith("."))
        {
            tail = tail[..^1];
        }

        var dot = tail.LastIndexOf('.');
        if (dot < 0 || !IsTopLabel(tail[(dot + 1)..]))
        {
            error = $"'{spec}' does not end in a valid top-level label (such as .com)";
            return false;
        }

        return true;
    }

    /// <summary>Checks a macro-string such as the value of an unknown modifier (any macro letter allowed).</summary>
    public static bool IsValidMacroString(string text, out string error) => Scan(text, AllLetters, out _, out error);

    /// <summary>True when the string uses <c>%{p}</c>, whose value needs DNS lookups.</summary>
    public static bool UsesValidatedName(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return spec.Contains("%{p", StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// Expands a valid domain-spec to the name to query: macros replaced, then shortened from the left
    /// to at most 253 characters (§7.3), trailing dot removed.
    /// </summary>
    public static string ExpandDomain(string spec, in SpfMacroContext context)
    {
        var expanded = Expand(spec, context);
        while (expanded.Length > MaxDomainLength)
        {
            var dot = expanded.IndexOf('.', StringComparison.Ordinal);
            if (dot < 0)
            {
                break;
            }

            expanded = expanded[(dot + 1)..];
        }

        return expanded.TrimEnd('.');
    }

    /// <summary>Expands the macros of a string that <see cref="IsValidDomainSpec"/> accepted.</summary>
    public static string Expand(string spec, in SpfMacroContext context)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var sb = new StringBuilder(spec.Length + 32);
        for (var i = 0; i < spec.Length; i++)
        {
            var c = spec[i];
            if (c != '%')
            {
                sb.Append(c);
                continue;
            }

            var next = spec[++i];
            switch (next)
            {
                case '%':
                    sb.Append('%');
                    continue;
                case '_':
                    sb.Append(' ');
                    continue;
                case '-':
                    sb.Append("%20");
                    continue;
            }

            // %{ letter digits [r] delimiters }
            var close = spec.IndexOf('}', i);
            var body = spec.AsSpan(i + 1, close - i - 1);
            i = close;
            sb.Append(ExpandOne(body, context));
        }

        return sb.ToString();
    }

    private static string ExpandOne(ReadOnlySpan<char> body, in SpfMacroContext context)
    {
        var letter = body[0];
        var value = char.ToLowerInvariant(letter) switch
        {
            's' => context.Sender,
            'l' => context.Sender[..context.Sender.LastIndexOf('@')],
            'o' => context.Sender[(context.Sender.LastIndexOf('@') + 1)..],
            'd' => context.Domain,
            'i' => DotFormat(context.Ip),
            'p' => context.ValidatedName,
            'v' => context.Ip.AddressFamily == AddressFamily.InterNetworkV6 ? "ip6" : "in-addr",
            'h' => context.Helo,
            _ => string.Empty,
        };

        var pos = 1;
        var digits = 0;
        while (pos < body.Length && char.IsAsciiDigit(body[pos]))
        {
            digits = Math.Min(digits * 10 + (body[pos] - '0'), 1000);
            pos++;
        }

        var reverse = pos < body.Length && (body[pos] is 'r' or 'R');
        if (reverse)
        {
            pos++;
        }

        var delimiters = body[pos..];
        if (digits > 0 || reverse || delimiters.Length > 0)
        {
            // §7.3: split on the delimiters (default "."), reverse, keep the right-most parts, join with ".".
            var separators = delimiters.Length > 0 ? delimiters.ToArray() : ['.'];
            var parts = value.Split(separators);
            if (reverse)
            {
                Array.Reverse(parts);
            }

            if (digits > 0 && digits < parts.Length)
            {
                parts = parts[^digits..];
            }

            value = string.Join('.', parts);
        }

        // An upper-case macro letter means URL-escaping: everything outside RFC 3986 "unreserved" (§7.3).
        return char.IsAsciiLetterUpper(letter) ? Uri.EscapeDataString(value) : value;
    }

    /// <summary>The <c>%{i}</c> form: dotted quad for IPv4, 32 dot-separated nibbles for IPv6 (§7.3).</summary>
    public static string DotFormat(IPAddress ip)
    {
        ArgumentNullException.ThrowIfNull(ip);
        if (ip.AddressFamily == AddressFamily.InterNetwork)
        {
            return ip.ToString();
        }

        var bytes = ip.GetAddressBytes();
        var sb = new StringBuilder(63);
        foreach (var b in bytes)
        {
            if (sb.Length > 0)
            {
                sb.Append('.');
            }

            sb.Append((b >> 4).ToString("x", CultureInfo.InvariantCulture)).Append('.').Append((b & 0xf).ToString("x", CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }

    /// <summary>
    /// Validates macro-literals and macro-expands; returns where the literal text after the last macro starts.
    /// macro-literal = %x21-24 / %x26-7E (visible ASCII but "%").
    /// </summary>
    private static bool Scan(string text, string letters, out int literalTailStart, out string error)
    {
        literalTailStart = 0;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c != '%')
            {
                if (c is < '!' or > '~')
                {
                    error = $"'{Printable(text)}' contains a character that is not visible ASCII";
                    return false;
                }

                continue;
            }

            if (i + 1 >= text.Length)
            {
                error = $"'{text}' ends with a lone '%' (write %% for a percent sign)";
                return false;
            }

            var next = text[i + 1];
            if (next is '%' or '_' or '-')
            {
                i++;
                literalTailStart = i + 1;
                continue;
            }

            if (next != '{')
            {
                error = $"'{text}': '%' must be followed by '{{', '%', '_' or '-' (RFC 7208 §7.1)";
                return false;
            }

            var close = text.IndexOf('}', i + 2);
            if (close < 0)
            {
                error = $"'{text}' has an unterminated macro";
                return false;
            }

            if (!IsValidMacroBody(text.AsSpan(i + 2, close - i - 2), letters, out var why))
            {
                error = $"'{text}': {why}";
                return false;
            }

            i = close;
            literalTailStart = i + 1;
        }

        error = string.Empty;
        return true;
    }

    // macro-letter transformers *delimiter, transformers = *DIGIT [ "r" ].
    private static bool IsValidMacroBody(ReadOnlySpan<char> body, string letters, out string error)
    {
        if (body.Length == 0 || !letters.Contains(char.ToLowerInvariant(body[0]), StringComparison.Ordinal))
        {
            error = body.Length == 0 ? "empty macro" :
                AllLetters.Contains(char.ToLowerInvariant(body[0]), StringComparison.Ordinal)
                    ? $"macro letter '{body[0]}' is only allowed in explanation text"
                    : $"unknown macro letter '{body[0]}'";
            return false;
        }

        var pos = 1;
        var digitStart = pos;
        while (pos < body.Length && char.IsAsciiDigit(body[pos]))
        {
            pos++;
        }

        if (pos > digitStart && int.TryParse(body[digitStart..pos], NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n == 0)
        {
            // §7.3: "If a DIGIT is specified, the value MUST be nonzero."
            error = "a macro's part count must not be zero";
            return false;
        }

        if (pos < body.Length && body[pos] is 'r' or 'R')
        {
            pos++;
        }

        foreach (var d in body[pos..])
        {
            if (!Delimiters.Contains(d, StringComparison.Ordinal))
            {
                error = $"'{d}' is not a macro delimiter";
                return false;
            }
        }

        error = string.Empty;
        return true;
    }

    // toplabel = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
    private static bool IsTopLabel(ReadOnlySpan<char> label)
    {
        if (label.Length == 0)
        {
            return false;
        }

        var hasLetter = false;
        var hasDash = false;
        foreach (var c in label)
        {
            if (char.IsAsciiLetter(c))
            {
                hasLetter = true;
            }
            else if (c == '-')
            {
                hasDash = true;
            }
            else if (!char.IsAsciiDigit(c))
            {
                return false;
            }
        }

        if (hasDash)
        {
            return char.IsAsciiLetterOrDigit(label[0]) && char.IsAsciiLetterOrDigit(label[^1]);
        }

        return hasLetter;
    }

    internal static string Printable(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is < ' ' or > '~')
            {
                sb.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:x2}");
            }
            else
            {
                sb.Append(c);
            }
        }

        return sb.ToString();
    }
}
