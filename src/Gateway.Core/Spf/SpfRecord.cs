using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Gateway.Core.Domains;

namespace Gateway.Core.Spf;

/// <summary>The mechanisms of RFC 7208 §5.</summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720:Identifier contains type name", Justification = "The RFC 7208 mechanism is called ptr.")]
public enum SpfMechanismKind
{
    All,
    Include,
    A,
    Mx,
    Ptr,
    Ip4,
    Ip6,
    Exists,
}

/// <summary>
/// One directive: qualifier and mechanism (RFC 7208 §4.6.2). <see cref="DomainSpec"/> is the unexpanded
/// target (null: the current domain); <see cref="Network"/> the address of ip4/ip6; the prefix lengths
/// are null when not given.
/// </summary>
public sealed record SpfMechanism(SpfResult Qualifier, SpfMechanismKind Kind, string? DomainSpec, IPAddress? Network, int? Cidr4, int? Cidr6, string Text)
{
    /// <summary>Mechanisms that cost a DNS query and count against the limit of 10 (§4.6.4).</summary>
    public bool QueriesDns => Kind is SpfMechanismKind.Include or SpfMechanismKind.A or SpfMechanismKind.Mx or SpfMechanismKind.Ptr or SpfMechanismKind.Exists;
}

/// <summary>
/// A parsed SPF record (RFC 7208 §4.5, §4.6, §12). Parsing is a pure function over the record text and
/// checks the whole record, so a syntax error anywhere is a permerror before anything is evaluated (§4.6).
/// </summary>
public sealed class SpfRecord
{
    private const string Version = "v=spf1";

    /// <summary>RFC 7208 §4.6.4: at most 10 terms that cause DNS queries (include, a, mx, ptr, exists, redirect).</summary>
    public const int MaxDnsLookups = 10;

    private SpfRecord(IReadOnlyList<SpfMechanism> mechanisms, string? redirect, string? explanation)
    {
        Mechanisms = mechanisms;
        Redirect = redirect;
        Explanation = explanation;
    }

    public IReadOnlyList<SpfMechanism> Mechanisms { get; }

    /// <summary>The <c>redirect=</c> domain-spec, unexpanded.</summary>
    public string? Redirect { get; }

    /// <summary>The <c>exp=</c> domain-spec, unexpanded (checked, not used: the gateway shows its own explanations).</summary>
    public string? Explanation { get; }

    /// <summary>
    /// True for the TXT records that are SPF records: <c>v=spf1</c> (any case) followed by a space or
    /// the end (§4.5). <c>v=spf10</c> is not one.
    /// </summary>
    public static bool IsSpfRecord(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.StartsWith(Version, StringComparison.OrdinalIgnoreCase) && (text.Length == Version.Length || text[Version.Length] == ' ');
    }

    /// <summary>Parses a record that <see cref="IsSpfRecord"/> accepted; on failure says what is wrong.</summary>
    public static bool TryParse(string text, [NotNullWhen(true)] out SpfRecord? record, out string error)
    {
        ArgumentNullException.ThrowIfNull(text);
        record = null;
        if (!IsSpfRecord(text))
        {
            error = "the record does not start with 'v=spf1'";
            return false;
        }

        // terms = *( 1*SP ( directive / modifier ) ): only spaces separate terms, and only ASCII is allowed (§3.1).
        foreach (var c in text)
        {
            if (c is < ' ' or > '~')
            {
                error = $"the record contains a character that is not printable ASCII: '{SpfMacro.Printable(text)}'";
                return false;
            }
        }

        var mechanisms = new List<SpfMechanism>();
        string? redirect = null;
        string? explanation = null;
        foreach (var term in text[Version.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (TryModifier(term, out var name, out var value))
            {
                if (name.Equals("redirect", StringComparison.OrdinalIgnoreCase) || name.Equals("exp", StringComparison.OrdinalIgnoreCase))
                {
                    var isRedirect = name.Length == "redirect".Length;
                    if ((isRedirect ? redirect : explanation) is not null)
                    {
                        // §6: redirect and exp MUST NOT appear more than once.
                        error = $"'{name.ToLowerInvariant()}=' appears more than once";
                        return false;
                    }

                    if (!SpfMacro.IsValidDomainSpec(value, out var why))
                    {
                        error = $"'{term}': {why}";
                        return false;
                    }

                    if (isRedirect)
                    {
                        redirect = value;
                    }
                    else
                    {
                        explanation = value;
                    }
                }
                else if (!SpfMacro.IsValidMacroString(value, out var why))
                {
                    // Unknown modifiers are ignored, but their syntax is checked (§6, appendix A).
                    error = $"'{term}': {why}";
                    return false;
                }

                continue;
            }

            if (!TryMechanism(term, out var mechanism, out error))
            {
                return false;
            }

            mechanisms.Add(mechanism);
        }

        record = new SpfRecord(mechanisms, redirect, explanation);
        error = string.Empty;
        return true;
    }

    // modifier = name "=" macro-string; name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ).
    private static bool TryModifier(string term, out string name, out string value)
    {
        name = value = string.Empty;
        if (term.Length == 0 || !char.IsAsciiLetter(term[0]))
        {
            return false;
        }

        var i = 1;
        while (i < term.Length && (char.IsAsciiLetterOrDigit(term[i]) || term[i] is '-' or '_' or '.'))
        {
            i++;
        }

        if (i >= term.Length || term[i] != '=')
        {
            return false;
        }

        name = term[..i];
        value = term[(i + 1)..];
        return true;
    }

    private static bool TryMechanism(string term, [NotNullWhen(true)] out SpfMechanism? mechanism, out string error)
    {
        mechanism = null;
        var qualifier = term[0] switch
        {
            '+' => SpfResult.Pass,
            '-' => SpfResult.Fail,
            '~' => SpfResult.SoftFail,
            '?' => SpfResult.Neutral,
            _ => SpfResult.None,
        };
        var body = qualifier == SpfResult.None ? term : term[1..];
        if (qualifier == SpfResult.None)
        {
            qualifier = SpfResult.Pass;
        }

        var nameEnd = body.IndexOfAny([':', '/']);
        var name = (nameEnd < 0 ? body : body[..nameEnd]).ToLowerInvariant();
        var rest = nameEnd < 0 ? string.Empty : body[nameEnd..];
        string? domainSpec = null;
        IPAddress? network = null;
        int? cidr4 = null, cidr6 = null;
        SpfMechanismKind kind;
        switch (name)
        {
            case "all":
                kind = SpfMechanismKind.All;
                if (rest.Length > 0)
                {
                    error = $"'{term}': 'all' takes no argument";
                    return false;
                }

                break;
            case "include" or "exists":
                // include = "include" ":" domain-spec; exists = "exists" ":" domain-spec (no CIDR).
                kind = name == "include" ? SpfMechanismKind.Include : SpfMechanismKind.Exists;
                if (!rest.StartsWith(':') || !SpfMacro.IsValidDomainSpec(rest[1..], out error))
                {
                    error = rest.StartsWith(':') ? $"'{term}': {ErrorOf(rest[1..])}" : $"'{term}': '{name}' needs ':' and a domain";
                    return false;
                }

                domainSpec = rest[1..];
                break;
            case "ptr":
                kind = SpfMechanismKind.Ptr;
                if (rest.Length > 0)
                {
                    if (!rest.StartsWith(':') || !SpfMacro.IsValidDomainSpec(rest[1..], out _))
                    {
                        error = rest.StartsWith(':') ? $"'{term}': {ErrorOf(rest[1..])}" : $"'{term}': 'ptr' takes no prefix length";
                        return false;
                    }

                    domainSpec = rest[1..];
                }

                break;
            case "a" or "mx":
                kind = name == "a" ? SpfMechanismKind.A : SpfMechanismKind.Mx;
                if (!TrySplitDualCidr(rest, out domainSpec, out cidr4, out cidr6, out error))
                {
                    error = $"'{term}': {error}";
                    return false;
                }

                break;
            case "ip4" or "ip6":
                kind = name == "ip4" ? SpfMechanismKind.Ip4 : SpfMechanismKind.Ip6;
                if (!TryParseNetwork(kind, rest, out network, out var prefix, out error))
                {
                    error = $"'{term}': {error}";
                    return false;
                }

                if (kind == SpfMechanismKind.Ip4)
                {
                    cidr4 = prefix;
                }
                else
                {
                    cidr6 = prefix;
                }

                break;
            default:
                error = $"unknown mechanism '{term}'";
                return false;
        }

        mechanism = new SpfMechanism(qualifier, kind, domainSpec, network, cidr4, cidr6, term);
        error = string.Empty;
        return true;
    }

    private static string ErrorOf(string spec) => SpfMacro.IsValidDomainSpec(spec, out var e) ? string.Empty : e;

    // [ ":" domain-spec ] [ dual-cidr-length ], dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ].
    // A domain-spec may itself contain '/', so the CIDR suffix is taken from the end.
    private static bool TrySplitDualCidr(string rest, out string? domainSpec, out int? cidr4, out int? cidr6, out string error)
    {
        domainSpec = null;
        cidr4 = cidr6 = null;
        var cidrText = rest;
        if (rest.StartsWith(':'))
        {
            var spec = rest[1..];
            var cut = CidrSuffixStart(spec);
            domainSpec = spec[..cut];
            cidrText = spec[cut..];
            if (!SpfMacro.IsValidDomainSpec(domainSpec, out error))
            {
                return false;
            }
        }

        if (cidrText.Length == 0)
        {
            error = string.Empty;
            return true;
        }

        var v6 = cidrText.IndexOf("//", StringComparison.Ordinal);
        var v4Text = v6 < 0 ? cidrText : cidrText[..v6];
        var v6Text = v6 < 0 ? string.Empty : cidrText[(v6 + 2)..];
        if (v4Text.Length > 0)
        {
            if (!v4Text.StartsWith('/') || !TryCidr(v4Text[1..], 32, out var p4))
            {
                error = $"'{cidrText}' is not a valid prefix length (/0-/32 for IPv4, //0-//128 for IPv6)";
                return false;
            }

            cidr4 = p4;
        }

        if (v6 >= 0)
        {
            if (!TryCidr(v6Text, 128, out var p6))
            {
                error = $"'{cidrText}' is not a valid prefix length (/0-/32 for IPv4, //0-//128 for IPv6)";
                return false;
            }

            cidr6 = p6;
        }

        error = string.Empty;
        return true;
    }

    /// <summary>Where a trailing <c>/n</c>, <c>//n</c> or <c>/n//n</c> starts (the length when there is none).</summary>
    private static int CidrSuffixStart(string spec)
    {
        var end = spec.Length;
        var start = end;
        for (var round = 0; round < 2; round++)
        {
            var i = start;
            while (i > 0 && char.IsAsciiDigit(spec[i - 1]))
            {
                i--;
            }

            if (i == start || i == 0 || spec[i - 1] != '/')
            {
                break;
            }

            i--;
            var isV6 = i > 0 && spec[i - 1] == '/';
            if (isV6)
            {
                if (round == 1)
                {
                    break;
                }

                start = i - 1;
                continue;
            }

            start = i;
            break;
        }

        return start;
    }

    // ip4-cidr-length = "/" ( "0" / %x31-39 0*1DIGIT ); ip6-cidr-length = "/" ( "0" / %x31-39 0*2DIGIT ): no leading zeros.
    private static bool TryCidr(string digits, int max, out int value)
    {
        value = 0;
        if (digits.Length == 0 || digits.Length > 3 || !digits.All(char.IsAsciiDigit) || (digits.Length > 1 && digits[0] == '0'))
        {
            return false;
        }

        value = int.Parse(digits, NumberStyles.None, CultureInfo.InvariantCulture);
        return value <= max;
    }

    private static bool TryParseNetwork(SpfMechanismKind kind, string rest, [NotNullWhen(true)] out IPAddress? network, out int? prefix, out string error)
    {
        network = null;
        prefix = null;
        if (!rest.StartsWith(':') || rest.Length == 1)
        {
            error = $"'{(kind == SpfMechanismKind.Ip4 ? "ip4" : "ip6")}' needs ':' and an address";
            return false;
        }

        var text = rest[1..];
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            if (!TryCidr(text[(slash + 1)..], kind == SpfMechanismKind.Ip4 ? 32 : 128, out var p))
            {
                error = $"'{text[slash..]}' is not a valid prefix length";
                return false;
            }

            prefix = p;
            text = text[..slash];
        }

        if (kind == SpfMechanismKind.Ip4)
        {
            // ip4-network: four decimal octets without leading zeros (§5.6).
            if (text.Contains(':', StringComparison.Ordinal) || !IpAddressText.TryParseSingle(text, out var v4, out _) || v4.AddressFamily != AddressFamily.InterNetwork)
            {
                error = $"'{text}' is not an IPv4 address";
                return false;
            }

            network = v4;
        }
        else
        {
            if (!text.Contains(':', StringComparison.Ordinal) || text.Contains('%', StringComparison.Ordinal) ||
                !IPAddress.TryParse(text, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                error = $"'{text}' is not an IPv6 address";
                return false;
            }

            network = v6;
        }

        error = string.Empty;
        return true;
    }
}
