using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;

namespace Gateway.Core.Mail;

/// <summary>
/// The one canonical form of an envelope address that every part of the gateway uses (requirements §11.3): the
/// policy decision, the intake, rules, routing, the queue, DSNs and the message log.
/// <list type="bullet">
/// <item>local part: unquoted when it is a dot-atom (RFC 5321 §4.1.2: <c>"john"</c> is <c>john</c>), otherwise one
/// quoted string with only <c>\"</c> and <c>\\</c> escaped; its case is kept (RFC 5321 §2.4), comparisons
/// elsewhere ignore it;</item>
/// <item>domain: lower case, no trailing dot, an internationalised name as its A-label (RFC 5891); an address
/// literal (<c>[192.0.2.1]</c>) as given.</item>
/// </list>
/// Two entry points reach the same form: <see cref="TryParse"/> for the mailbox of an SMTP path (strict RFC 5321
/// grammar, what the intake receives) and <see cref="TryFromUnquoted"/> for the unquoted form an MTA has already
/// parsed (Postfix's policy attributes). Addresses whose local part carries routing syntax are flagged
/// (<see cref="CanonicalAddress.HasRoutingSyntax"/>); the relay rule refuses them as recipients.
/// </summary>
public static class EnvelopeAddress
{
    /// <summary>RFC 5321 §4.5.3.1.3: a path is at most 256 octets including the angle brackets.</summary>
    public const int MaxLength = 254;

    private static readonly IdnMapping Idn = new() { UseStd3AsciiRules = false, AllowUnassigned = false };

    /// <summary>
    /// The canonical form of a mailbox as written in an SMTP path (<c>local@domain</c>, without angle brackets and
    /// source route). The local part must be a dot-string or a quoted string (RFC 5321 §4.1.2); dot-strings with
    /// empty atoms (<c>john..doe</c>, <c>.john</c>), which Postfix and many MTAs accept, are taken as the quoted
    /// string they stand for. A backslash outside quotes, unbalanced quotes, or anything else is an error.
    /// </summary>
    public static bool TryParse(string mailbox, out CanonicalAddress address, out string error)
    {
        ArgumentNullException.ThrowIfNull(mailbox);
        address = default;
        if (!SplitExternal(mailbox, out var local, out var domain, out error))
        {
            return false;
        }

        return TryBuild(local, domain, mailbox, out address, out error);
    }

    /// <summary>
    /// The canonical form of an address an MTA has already parsed into its unquoted ("internal") form, as Postfix
    /// passes <c>sender=</c> and <c>recipient=</c> to a policy service: the local part is everything before the last
    /// <c>@</c>, taken literally (quotes and backslashes in it are characters of the local part).
    /// </summary>
    public static bool TryFromUnquoted(string address, out CanonicalAddress canonical, out string error)
    {
        ArgumentNullException.ThrowIfNull(address);
        canonical = default;
        var at = address.LastIndexOf('@');
        if (at <= 0 || at == address.Length - 1)
        {
            error = $"'{Printable(address)}' is not local-part@domain";
            return false;
        }

        return TryBuild(address[..at], address[(at + 1)..], address, out canonical, out error);
    }

    /// <summary>The domain part of a canonical address (after its last <c>@</c>); empty for the null sender or text without one.</summary>
    public static string DomainOf(string? canonical)
    {
        if (string.IsNullOrEmpty(canonical))
        {
            return string.Empty;
        }

        var at = canonical.LastIndexOf('@');
        return at < 0 ? string.Empty : canonical[(at + 1)..];
    }

    /// <summary>
    /// The local part of <paramref name="canonical"/> as the mailbox name it stands for (quotes and escapes removed):
    /// what rules and routes compare.
    /// </summary>
    public static string LocalOf(string canonical)
    {
        ArgumentNullException.ThrowIfNull(canonical);
        var at = canonical.LastIndexOf('@');
        var local = at < 0 ? canonical : canonical[..at];
        return local.Length >= 2 && local[0] == '"' && local[^1] == '"' ? Unescape(local.AsSpan(1, local.Length - 2)) : local;
    }

    /// <summary>
    /// True when the local part of a canonical address holds <c>%</c>, <c>!</c> or <c>@</c>: sender-specified routing
    /// (RFC 1123 §5.2.16), which the relay rule refuses for recipients.
    /// </summary>
    public static bool HasRoutingSyntax(string? canonical)
    {
        if (string.IsNullOrEmpty(canonical))
        {
            return false;
        }

        var at = canonical.LastIndexOf('@');
        return at > 0 && canonical.AsSpan(0, at).IndexOfAny('%', '!', '@') >= 0;
    }

    /// <summary>True when <paramref name="local"/> (unquoted) is a dot-atom that may be written without quotes.</summary>
    public static bool IsDotAtom(ReadOnlySpan<char> local)
    {
        if (local.IsEmpty || local[0] == '.' || local[^1] == '.')
        {
            return false;
        }

        for (var i = 0; i < local.Length; i++)
        {
            var c = local[i];
            if (c == '.')
            {
                if (local[i - 1] == '.')
                {
                    return false;
                }
            }
            else if (!IsAtext(c))
            {
                return false;
            }
        }

        return true;
    }

    private static bool SplitExternal(string mailbox, out string local, out string domain, out string error)
    {
        local = domain = string.Empty;
        if (mailbox.Length == 0)
        {
            error = "an address is required";
            return false;
        }

        if (mailbox.Length > MaxLength)
        {
            error = $"the address is longer than {MaxLength} characters";
            return false;
        }

        var s = mailbox.AsSpan();
        int at;
        if (s[0] == '"')
        {
            // Quoted-string = DQUOTE *QcontentSMTP DQUOTE; QcontentSMTP = qtextSMTP / "\" %d32-126.
            var sb = new StringBuilder();
            var i = 1;
            for (; i < s.Length && s[i] != '"'; i++)
            {
                var c = s[i];
                if (c == '\\')
                {
                    if (i + 1 >= s.Length || !IsQuotedPairChar(s[i + 1]))
                    {
                        error = $"'{Printable(mailbox)}': a backslash in a quoted local part must escape a printable character";
                        return false;
                    }

                    sb.Append(s[++i]);
                }
                else if (IsQtext(c))
                {
                    sb.Append(c);
                }
                else
                {
                    error = $"'{Printable(mailbox)}': character '{Printable(c.ToString())}' is not allowed in a quoted local part";
                    return false;
                }
            }

            if (i >= s.Length)
            {
                error = $"'{Printable(mailbox)}': the quoted local part is not closed";
                return false;
            }

            at = i + 1;
            if (at >= s.Length || s[at] != '@')
            {
                error = $"'{Printable(mailbox)}': the quoted local part must be followed by '@'";
                return false;
            }

            local = sb.ToString();
        }
        else
        {
            at = s.IndexOf('@');
            if (at <= 0)
            {
                error = $"'{Printable(mailbox)}' is not local-part@domain";
                return false;
            }

            // Dot-string = Atom *("." Atom). Empty atoms (leading, trailing or doubled dots) are taken as written,
            // as Postfix does; the canonical form then quotes them.
            foreach (var c in s[..at])
            {
                if (c != '.' && !IsAtext(c))
                {
                    error = c is '"' or '\\'
                        ? $"'{Printable(mailbox)}': quotes and backslashes belong inside one quoted local part (\"...\")"
                        : $"'{Printable(mailbox)}': character '{Printable(c.ToString())}' is not allowed in a local part";
                    return false;
                }
            }

            local = s[..at].ToString();
        }

        if (at == s.Length - 1)
        {
            error = $"'{Printable(mailbox)}' has no domain";
            return false;
        }

        domain = s[(at + 1)..].ToString();
        error = string.Empty;
        return true;
    }

    private static bool TryBuild(string local, string domain, string original, out CanonicalAddress address, out string error)
    {
        address = default;
        if (local.Length == 0)
        {
            error = $"'{Printable(original)}' has an empty local part";
            return false;
        }

        foreach (var c in local)
        {
            if (char.IsControl(c))
            {
                error = $"'{Printable(original)}': control characters in the local part";
                return false;
            }
        }

        if (!TryCanonicalDomain(domain, out var canonicalDomain, out error))
        {
            error = $"'{Printable(original)}': {error}";
            return false;
        }

        var dotAtom = IsDotAtom(local);
        var routing = local.AsSpan().IndexOfAny('%', '!', '@') >= 0;
        // Most addresses are canonical already: keep the caller's string rather than building an equal one.
        var text = dotAtom && original.Length == local.Length + 1 + canonicalDomain.Length && original.EndsWith(canonicalDomain, StringComparison.Ordinal)
            ? original
            : (dotAtom ? local : Quote(local)) + "@" + canonicalDomain;
        address = new CanonicalAddress(text, local, canonicalDomain, routing);
        error = string.Empty;
        return true;
    }

    /// <summary>
    /// An envelope domain in canonical form: one trailing dot removed, lower case, U-labels to A-labels, labels of
    /// letters, digits, hyphens and underscores (underscores occur in real mail domains and Postfix accepts them) of
    /// 1-63 characters, at most 253 in all; or an address literal (<c>[192.0.2.1]</c>, <c>[IPv6:…]</c>).
    /// </summary>
    public static bool TryCanonicalDomain(string domain, [NotNullWhen(true)] out string? canonical, out string error)
    {
        ArgumentNullException.ThrowIfNull(domain);
        canonical = null;
        if (domain.Length > 2 && domain[0] == '[' && domain[^1] == ']')
        {
            var inner = domain.AsSpan(1, domain.Length - 2);
            var ok = inner.StartsWith("IPv6:", StringComparison.OrdinalIgnoreCase)
                ? System.Net.IPAddress.TryParse(inner[5..], out var v6) && v6.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
                : System.Net.IPAddress.TryParse(inner, out var v4) && v4.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && inner.Count('.') == 3;
            if (!ok)
            {
                error = "the address literal is not an IP address";
                return false;
            }

            canonical = domain.StartsWith("[ipv6:", StringComparison.OrdinalIgnoreCase) ? "[IPv6:" + domain[6..].ToLowerInvariant() : domain;
            error = string.Empty;
            return true;
        }

        var d = domain.EndsWith('.') ? domain[..^1] : domain;
        if (d.Length == 0)
        {
            error = "the domain is empty";
            return false;
        }

        string ascii;
        if (System.Text.Ascii.IsValid(d))
        {
            ascii = d.AsSpan().IndexOfAnyInRange('A', 'Z') < 0 ? d : d.ToLowerInvariant();
        }
        else
        {
            try
            {
                ascii = Idn.GetAscii(d.ToLowerInvariant()).ToLowerInvariant();
            }
            catch (ArgumentException)
            {
                error = "the domain is not a valid internationalised name";
                return false;
            }
        }

        if (ascii.Length > 253)
        {
            error = "the domain is longer than 253 characters";
            return false;
        }

        var labelStart = 0;
        for (var i = 0; i <= ascii.Length; i++)
        {
            if (i == ascii.Length || ascii[i] == '.')
            {
                var length = i - labelStart;
                if (length is 0 or > 63)
                {
                    error = "each label of the domain must have 1-63 characters";
                    return false;
                }

                if (ascii[labelStart] == '-' || ascii[i - 1] == '-')
                {
                    error = "a label of the domain starts or ends with a hyphen";
                    return false;
                }

                labelStart = i + 1;
                continue;
            }

            var c = ascii[i];
            if (!(char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '-' or '_'))
            {
                error = $"the domain contains '{Printable(c.ToString())}'";
                return false;
            }
        }

        canonical = ascii;
        error = string.Empty;
        return true;
    }

    /// <summary>RFC 5322 atext, plus any non-ASCII character (RFC 6531 §3.3, SMTPUTF8).</summary>
    private static bool IsAtext(char c) =>
        char.IsAsciiLetterOrDigit(c) || c > 127 || c is '!' or '#' or '$' or '%' or '&' or '\'' or '*' or '+' or '-' or '/' or '=' or '?' or '^' or '_' or '`' or '{' or '|' or '}' or '~';

    /// <summary>RFC 5321 qtextSMTP: %d32-33 / %d35-91 / %d93-126, plus non-ASCII (RFC 6531).</summary>
    private static bool IsQtext(char c) => c is (>= ' ' and <= '~') and not ('"' or '\\') || c > 127;

    private static bool IsQuotedPairChar(char c) => c is >= ' ' and <= '~';

    private static string Quote(string local)
    {
        var sb = new StringBuilder(local.Length + 2).Append('"');
        foreach (var c in local)
        {
            if (c is '"' or '\\')
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }

        return sb.Append('"').ToString();
    }

    private static string Unescape(ReadOnlySpan<char> quoted)
    {
        var sb = new StringBuilder(quoted.Length);
        for (var i = 0; i < quoted.Length; i++)
        {
            if (quoted[i] == '\\' && i + 1 < quoted.Length)
            {
                i++;
            }

            sb.Append(quoted[i]);
        }

        return sb.ToString();
    }

    /// <summary>Untrusted text for an error message: control characters shown as '?', at most 100 characters.</summary>
    private static string Printable(string text)
    {
        var s = new string(text.Select(c => char.IsControl(c) ? '?' : c).Take(100).ToArray());
        return text.Length > 100 ? s + "…" : s;
    }
}

/// <summary>An envelope address in the gateway's canonical form (<see cref="EnvelopeAddress"/>).</summary>
/// <param name="Address">The canonical text: what is stored, logged, compared and sent to next hops.</param>
/// <param name="Local">The local part as the mailbox name it stands for (unquoted).</param>
/// <param name="Domain">The canonical domain (A-label, lower case, no trailing dot) or address literal.</param>
/// <param name="HasRoutingSyntax">The local part holds <c>%</c>, <c>!</c> or <c>@</c>: sender-specified routing
/// (RFC 1123 §5.2.16, Postfix's <c>allow_untrusted_routing</c>), refused for recipients.</param>
public readonly record struct CanonicalAddress(string Address, string Local, string Domain, bool HasRoutingSyntax)
{
    public override string ToString() => Address ?? string.Empty;
}
