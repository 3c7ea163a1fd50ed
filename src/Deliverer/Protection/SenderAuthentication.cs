using System.Text;

namespace Gateway.Deliverer.Protection;

/// <summary>One DKIM signature's result (RFC 8601 §2.7.1): the signing domain and pass, fail, temperror or permerror.</summary>
public sealed record DkimResult(string Domain, string Result);

/// <summary>
/// SPF, DKIM, DMARC and ARC results as rspamd found them (its symbols, the names lua_auth_results.lua uses), in
/// RFC 8601's result words; and the gateway's <c>Authentication-Results</c> header built from them.
/// </summary>
/// <param name="DmarcPolicy">The sender domain's DMARC policy when the check failed against it: <c>reject</c>, <c>quarantine</c>, or null.</param>
/// <param name="Arc">Null when rspamd reported nothing about ARC.</param>
public sealed record AuthResults(string Spf, IReadOnlyList<DkimResult> Dkim, string Dmarc, string? DmarcPolicy, string? Arc)
{
    public const string Pass = "pass";
    public const string Fail = "fail";
    public const string None = "none";
    public const string TempError = "temperror";
    public const string PermError = "permerror";

    /// <summary>Nothing checked (rspamd gave no verdict).</summary>
    public static readonly AuthResults Unknown = new(None, [], None, null, null);

    private static readonly (string Symbol, string Result)[] SpfSymbols =
    [
        ("R_SPF_ALLOW", Pass), ("R_SPF_FAIL", Fail), ("R_SPF_SOFTFAIL", "softfail"), ("R_SPF_NEUTRAL", "neutral"),
        ("R_SPF_DNSFAIL", TempError), ("R_SPF_PERMFAIL", PermError), ("R_SPF_NA", None),
    ];

    private static readonly (string Symbol, string Result, string? Policy)[] DmarcSymbols =
    [
        ("DMARC_POLICY_ALLOW", Pass, null), ("DMARC_POLICY_ALLOW_WITH_FAILURES", Pass, null),
        ("DMARC_POLICY_REJECT", Fail, "reject"), ("DMARC_POLICY_QUARANTINE", Fail, "quarantine"), ("DMARC_POLICY_SOFTFAIL", Fail, null),
        ("DMARC_DNSFAIL", TempError, null), ("DMARC_BAD_POLICY", PermError, null), ("DMARC_NA", None, null),
    ];

    private static readonly (string Symbol, string Result)[] ArcSymbols =
    [
        ("ARC_ALLOW", Pass), ("ARC_REJECT", Fail), ("ARC_DNSFAIL", TempError), ("ARC_INVALID", PermError), ("ARC_NA", None),
    ];

    public static AuthResults From(RspamdResult r)
    {
        ArgumentNullException.ThrowIfNull(r);
        var spf = SpfSymbols.FirstOrDefault(s => r.Has(s.Symbol)).Result ?? None;
        var dmarc = DmarcSymbols.FirstOrDefault(s => r.Has(s.Symbol));
        var arc = ArcSymbols.FirstOrDefault(s => r.Has(s.Symbol)).Result;
        // DKIM_TRACE options are "domain:+" (pass), "domain:-" (fail), "domain:?" (temperror), "domain:~" (permerror).
        var dkim = new List<DkimResult>();
        foreach (var option in r.Symbol("DKIM_TRACE")?.Options ?? [])
        {
            if (option.Length > 2 && option[^2] == ':')
            {
                var result = option[^1] switch { '+' => Pass, '-' => Fail, '?' => TempError, '~' => PermError, _ => null };
                if (result is not null)
                {
                    dkim.Add(new DkimResult(option[..^2].ToLowerInvariant(), result));
                }
            }
        }

        return new AuthResults(spf, dkim, dmarc.Result ?? None, dmarc.Policy, arc);
    }

    /// <summary>
    /// Whether the header From domain is authenticated (DMARC's identifier alignment, RFC 7489 §3.1, relaxed): DMARC
    /// passed, or SPF passed for an envelope domain aligned with it, or a DKIM signature of an aligned domain verified.
    /// Without the public suffix list "aligned" means the same domain or one a subdomain of the other.
    /// </summary>
    public bool Authenticates(string fromDomain, string? envelopeDomain) =>
        Dmarc == Pass ||
        (Spf == Pass && envelopeDomain is not null && Aligned(envelopeDomain, fromDomain)) ||
        Dkim.Any(d => d.Result == Pass && Aligned(d.Domain, fromDomain));

    /// <summary>A check could not be finished for a temporary reason: no conclusion about spoofing can be drawn (RFC 7489 §6.6.2).</summary>
    public bool TemporaryError => Spf == TempError || Dmarc == TempError || Dkim.Any(d => d.Result == TempError);

    public static bool Aligned(string a, string b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        a = a.TrimEnd('.');
        b = b.TrimEnd('.');
        return string.Equals(a, b, StringComparison.OrdinalIgnoreCase) ||
               a.EndsWith("." + b, StringComparison.OrdinalIgnoreCase) ||
               b.EndsWith("." + a, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// The <c>Authentication-Results</c> field (RFC 8601 §2.2), folded, ending in CRLF:
    /// <c>Authentication-Results: gw.example; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=a@example.com; dmarc=pass header.from=example.com</c>.
    /// </summary>
    /// <param name="envelopeSender">MAIL FROM; empty for the null sender (SPF then names <c>smtp.helo</c>).</param>
    public string Header(string authServId, string envelopeSender, string? helo, string? fromDomain)
    {
        ArgumentNullException.ThrowIfNull(authServId);
        ArgumentNullException.ThrowIfNull(envelopeSender);
        var parts = new List<string>();
        if (Dkim.Count == 0)
        {
            parts.Add("dkim=none");
        }

        foreach (var d in Dkim)
        {
            parts.Add($"dkim={d.Result} header.d={Value(d.Domain)}");
        }

        parts.Add(envelopeSender.Length > 0
            ? $"spf={Spf} smtp.mailfrom={Value(envelopeSender)}"
            : $"spf={Spf}" + (string.IsNullOrEmpty(helo) ? string.Empty : $" smtp.helo={Value(helo)}"));
        parts.Add($"dmarc={Dmarc}" + (DmarcPolicy is null ? string.Empty : $" (policy={DmarcPolicy})") +
                  (string.IsNullOrEmpty(fromDomain) ? string.Empty : $" header.from={Value(fromDomain)}"));
        if (Arc is not null)
        {
            parts.Add($"arc={Arc}");
        }

        var b = new StringBuilder("Authentication-Results: ").Append(authServId);
        foreach (var p in parts)
        {
            b.Append(";\r\n\t").Append(p);
        }

        return b.Append("\r\n").ToString();
    }

    /// <summary>An RFC 8601 pvalue: as is when it is a dot-atom address or domain, else a quoted-string.</summary>
    internal static string Value(string v)
    {
        var plain = v.Length > 0 && v.All(c => c < 0x7f && (char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-/=?^_`{|}~.@".Contains(c, StringComparison.Ordinal)));
        return plain ? v : "\"" + new string(v.Where(c => !char.IsControl(c)).ToArray()).Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
    }
}
