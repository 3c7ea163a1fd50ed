using System.Globalization;
using Gateway.Core.Domains;
using Gateway.Core.Tls;

namespace Gateway.Core.MtaSts;

/// <summary>RFC 8461 §5: enforce (deliver only to matching MX hosts over verified TLS), testing (report only), none.</summary>
public enum MtaStsMode
{
    None = 0,
    Testing = 1,
    Enforce = 2,
}

/// <summary>A recipient domain's MTA-STS policy as fetched (RFC 8461 §3.2) and cached for the fleet.</summary>
/// <param name="Id">The <c>id</c> of the TXT record it was fetched for (a new id means a new policy).</param>
/// <param name="Mx">MX patterns: host names, or <c>*.example.net</c> for one leftmost label.</param>
/// <param name="MaxAge">How long the policy may be cached, in seconds (at most 31557600).</param>
public sealed record MtaStsPolicy(string Id, MtaStsMode Mode, IReadOnlyList<string> Mx, long MaxAge, DateTimeOffset Fetched)
{
    /// <summary>RFC 8461 §3.2: max_age up to 31557600 seconds (about a year).</summary>
    public const long MaxMaxAge = 31_557_600;

    public DateTimeOffset Expires => Fetched + TimeSpan.FromSeconds(MaxAge);
}

/// <summary>How one MX host may be used under a policy.</summary>
/// <param name="Allowed">False: enforce mode and the host matches no <c>mx</c> pattern (RFC 8461 §4.1): never delivered to.</param>
public sealed record MtaStsHostPlan(string Host, bool Allowed, TlsRequirement Tls);

/// <summary>
/// MTA-STS (RFC 8461) as pure functions: the <c>_mta-sts</c> TXT record (§3.1), the policy file (§3.2), MX matching (§4.1)
/// and what each MX host of a delivery may get (§5): in enforce mode only matching hosts, over TLS verified for the MX host
/// name; in testing mode every host as usual, with what enforcement would have refused reported in the message log.
/// </summary>
public static class MtaStsRules
{
    /// <summary>RFC 8461 §3.3: senders should limit the policy's size; 64 KiB is far above any real one.</summary>
    public const int MaxPolicyBytes = 64 * 1024;

    /// <summary>
    /// The policy id from the TXT records at <c>_mta-sts.&lt;domain&gt;</c>, or null when there is no usable record: records not
    /// starting with <c>v=STSv1;</c> are ignored, and not exactly one remaining (or a malformed one) means no policy (§3.1).
    /// </summary>
    public static string? ParseTxt(IEnumerable<string> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        var sts = records.Select(r => r.Trim()).Where(r => r.StartsWith("v=STSv1", StringComparison.Ordinal)).ToList();
        if (sts.Count != 1)
        {
            return null;
        }

        string? id = null;
        var fields = sts[0].Split(';');
        if (fields[0].Trim() != "v=STSv1")
        {
            return null;
        }

        foreach (var field in fields.Skip(1))
        {
            var f = field.Trim();
            if (f.Length == 0)
            {
                continue;
            }

            var eq = f.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                return null;
            }

            if (f[..eq].Trim() == "id")
            {
                var value = f[(eq + 1)..].Trim();
                if (value.Length is 0 or > 32 || !value.All(char.IsAsciiLetterOrDigit) || id is not null)
                {
                    return null;
                }

                id = value;
            }
        }

        return id;
    }

    /// <summary>The policy file (§3.2: <c>key: value</c> lines, CRLF or LF), or null with the reason when it is not a valid policy.</summary>
    public static MtaStsPolicy? ParsePolicy(string text, string id, DateTimeOffset fetched, out string? error)
    {
        ArgumentNullException.ThrowIfNull(text);
        string? version = null, mode = null, maxAge = null;
        var mx = new List<string>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0)
            {
                continue;
            }

            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                error = $"line '{Cut(line)}' is not 'key: value'";
                return null;
            }

            var key = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            switch (key)
            {
                case "version":
                    version ??= value;
                    break;
                case "mode":
                    mode ??= value;
                    break;
                case "max_age":
                    maxAge ??= value;
                    break;
                case "mx":
                    mx.Add(value.TrimEnd('.').ToLowerInvariant());
                    break;
                // Other keys are extensions: ignored (§3.2).
            }
        }

        if (version != "STSv1")
        {
            error = "version is not STSv1";
            return null;
        }

        var parsedMode = mode switch
        {
            "enforce" => MtaStsMode.Enforce,
            "testing" => MtaStsMode.Testing,
            "none" => MtaStsMode.None,
            _ => (MtaStsMode?)null,
        };
        if (parsedMode is null)
        {
            error = $"mode '{Cut(mode ?? string.Empty)}' is not enforce, testing or none";
            return null;
        }

        if (maxAge is null || maxAge.Length > 10 || !long.TryParse(maxAge, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || seconds > MtaStsPolicy.MaxMaxAge)
        {
            error = "max_age is missing or not 0-31557600";
            return null;
        }

        if (parsedMode != MtaStsMode.None && (mx.Count == 0 || mx.Any(m => !IsPattern(m))))
        {
            error = "mx patterns are missing or malformed";
            return null;
        }

        error = null;
        return new MtaStsPolicy(id, parsedMode.Value, mx, seconds, fetched);
    }

    /// <summary>§4.1: an exact host name, or <c>*.</c> plus a name matching exactly one more leftmost label; case-insensitive.</summary>
    public static bool Matches(string pattern, string host)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        ArgumentNullException.ThrowIfNull(host);
        host = host.TrimEnd('.');
        if (pattern.StartsWith("*.", StringComparison.Ordinal))
        {
            var dot = host.IndexOf('.', StringComparison.Ordinal);
            return dot > 0 && string.Equals(host[(dot + 1)..], pattern[2..], StringComparison.OrdinalIgnoreCase);
        }

        return string.Equals(pattern, host, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>How each MX host of <paramref name="domain"/> may be used under <paramref name="policy"/> (null: no policy).</summary>
    public static IReadOnlyList<MtaStsHostPlan> Plan(string domain, MtaStsPolicy? policy, IReadOnlyList<string> mxHosts)
    {
        ArgumentNullException.ThrowIfNull(mxHosts);
        if (policy is null || policy.Mode == MtaStsMode.None)
        {
            return mxHosts.Select(h => new MtaStsHostPlan(h, true, TlsRequirement.Opportunistic)).ToList();
        }

        var source = $"MTA-STS policy of {domain}, mode {(policy.Mode == MtaStsMode.Enforce ? "enforce" : "testing")}, id {policy.Id}";
        return mxHosts.Select(h =>
        {
            var listed = policy.Mx.Any(p => Matches(p, h));
            return policy.Mode == MtaStsMode.Enforce
                ? new MtaStsHostPlan(h, listed, new TlsRequirement(TlsMode.Verify, h, source))
                // testing: delivered as without a policy; Name null marks a host enforcement would skip.
                : new MtaStsHostPlan(h, true, new TlsRequirement(TlsMode.Opportunistic, listed ? h : null, source, Report: true));
        }).ToList();
    }

    /// <summary>The deferral reason when enforcement leaves no MX host (the message log's reply; a temporary failure, §5).</summary>
    public static string NoMatchingMx(string domain, MtaStsPolicy policy, IReadOnlyList<string> mxHosts)
    {
        ArgumentNullException.ThrowIfNull(policy);
        return $"MTA-STS policy of {domain} (enforce, id {policy.Id}) allows MX {string.Join(", ", policy.Mx)}; " +
               $"the domain's MX host{(mxHosts.Count == 1 ? string.Empty : "s")} {string.Join(", ", mxHosts)} match{(mxHosts.Count == 1 ? "es" : string.Empty)} none: not delivered";
    }

    /// <summary>For testing mode: what enforcement would have refused on this connection, or null.</summary>
    public static string? WouldFail(TlsRequirement requirement, TlsObservation observed)
    {
        ArgumentNullException.ThrowIfNull(requirement);
        if (!requirement.Report)
        {
            return null;
        }

        if (requirement.Name is null)
        {
            return $"MTA-STS testing: this MX host is not listed ({requirement.Source}); enforce mode would not deliver here";
        }

        return TlsPolicy.Unmet(requirement with { Mode = TlsMode.Verify }, observed) is { } unmet ? "MTA-STS testing, enforce would fail: " + unmet : null;
    }

    private static bool IsPattern(string mx) =>
        (mx.StartsWith("*.", StringComparison.Ordinal) ? mx[2..] : mx) is { Length: > 0 } name &&
        name.Split('.').All(l => l.Length is > 0 and <= 63 && l.All(c => char.IsAsciiLetterOrDigit(c) || c == '-' || c == '_'));

    private static string Cut(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
