using System.Globalization;
using Gateway.ControlPlane.Onboarding;
using Gateway.Core.Dkim;
using Gateway.Core.Domains;

namespace Gateway.ControlPlane.Dkim;

/// <summary>What DNS showed for the keys of a <see cref="DkimState"/>; null where the lookup failed (nothing is decided on it).</summary>
public sealed record DkimDnsView(DkimRecordMatch? Current, DkimRecordMatch? Next, DkimRecordMatch? Retired);

/// <summary>
/// The DKIM life cycle of requirements §10 as pure functions (docs/outbound.md "DKIM life cycle"): a key is generated
/// in <see cref="DkimPhase.PendingDns"/>; once its record is seen with the same key it becomes <see cref="DkimPhase.Active"/>
/// and mail is signed; a rotation adds a next key (<see cref="DkimPhase.Rotating"/>, still signing with the current one)
/// and switches once the next record is seen, keeping the old record listed as retired for
/// <c>Gateway:Dkim:RetiredKeyKeepTime</c> so that mail signed before the switch stays verifiable (two selectors, no gap).
/// </summary>
public static class DkimLifecycle
{
    public const string FindingPendingDns = "DKIM_PENDING_DNS";
    public const string FindingRecordMissing = "DKIM_RECORD_MISSING";
    public const string FindingRecordMismatch = "DKIM_RECORD_MISMATCH";
    public const string FindingRotationPending = "DKIM_ROTATION_PENDING";
    public const string FindingRetiredKey = "DKIM_RETIRED_KEY";
    public const string FindingActive = "DKIM_ACTIVE";

    /// <summary>The longest selector accepted (a DNS label).</summary>
    public const int MaxSelectorLength = 63;

    /// <summary>A date-based selector (<c>gw20261206</c>); a suffix <c>-2</c>, <c>-3</c>… when the domain already uses that one.</summary>
    public static string NewSelector(DateTimeOffset now, IEnumerable<string> taken)
    {
        ArgumentNullException.ThrowIfNull(taken);
        var used = taken.ToHashSet(StringComparer.OrdinalIgnoreCase);
        var basis = "gw" + now.UtcDateTime.ToString("yyyyMMdd", CultureInfo.InvariantCulture);
        var selector = basis;
        for (var n = 2; used.Contains(selector); n++)
        {
            selector = basis + "-" + n.ToString(CultureInfo.InvariantCulture);
        }

        return selector;
    }

    /// <summary>A selector a customer asked for: one DNS label or dot-separated labels (RFC 6376 §3.1), letters, digits, '-'.</summary>
    public static bool IsValidSelector(string selector, out string why)
    {
        ArgumentNullException.ThrowIfNull(selector);
        if (selector.Length is 0 or > MaxSelectorLength)
        {
            why = $"a selector is 1-{MaxSelectorLength} characters";
            return false;
        }

        foreach (var label in selector.Split('.'))
        {
            if (label.Length == 0 || label.StartsWith('-') || label.EndsWith('-') || !label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            {
                why = "a selector is made of DNS labels: letters, digits and '-' (not at either end), separated by dots";
                return false;
            }
        }

        why = string.Empty;
        return true;
    }

    /// <summary>The state a fresh key starts in.</summary>
    public static DkimState Enabled(DkimKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return new DkimState { Phase = DkimPhase.PendingDns, Current = key };
    }

    /// <summary>The state once a rotation started: the next key waits for DNS while the current one keeps signing.</summary>
    public static DkimState Rotated(DkimState state, DkimKey next)
    {
        ArgumentNullException.ThrowIfNull(state);
        return state with { Phase = DkimPhase.Rotating, Next = next };
    }

    /// <summary>
    /// The next state given what DNS shows, and the selector whose private key is no longer needed (after a switch the
    /// old key never signs again; a retired key that passed its keep time leaves the state), or null.
    /// </summary>
    public static (DkimState State, string? Forget) Advance(DkimState state, DkimDnsView dns, DateTimeOffset now, TimeSpan retiredKeepTime)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(dns);
        switch (state.Phase)
        {
            case DkimPhase.PendingDns when dns.Current == DkimRecordMatch.Matches:
                return (state with { Phase = DkimPhase.Active, ActiveSince = now }, null);
            case DkimPhase.Rotating when dns.Next == DkimRecordMatch.Matches && state.Next is { } next:
                // The switch: the next key signs from now on; the old record stays published (retired) for the keep time.
                return (new DkimState
                {
                    Phase = DkimPhase.Active, Current = next, ActiveSince = now, Retired = state.Current, RetiredUntil = now + retiredKeepTime,
                }, state.Current.Selector);
            case DkimPhase.Active when state.Retired is not null && state.RetiredUntil is { } until && now >= until:
                return (state with { Retired = null, RetiredUntil = null }, null);
            default:
                return (state, null);
        }
    }

    /// <summary>CheckDomain's DKIM findings (docs/onboarding.md lists the codes), each with the exact record to publish.</summary>
    public static IReadOnlyList<Finding> Findings(string domain, DkimState state, DkimDnsView dns)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(dns);
        var findings = new List<Finding>();
        var current = state.Current;
        var currentRecord = Record(domain, current);
        switch (state.Phase)
        {
            case DkimPhase.PendingDns:
                findings.Add(new Finding(FindingPendingDns, FindingSeverity.Warning,
                    $"DKIM is enabled for {domain} but not active yet: {Seen(dns.Current)}. Publish the TXT record {currentRecord.Name} with the text " +
                    $"\"{currentRecord.Value}\". Outbound mail is signed once the gateway sees this record (checked again automatically).", currentRecord));
                break;
            case DkimPhase.Active or DkimPhase.Rotating when dns.Current is DkimRecordMatch.Missing or DkimRecordMatch.Different:
                findings.Add(new Finding(dns.Current == DkimRecordMatch.Missing ? FindingRecordMissing : FindingRecordMismatch, FindingSeverity.Error,
                    $"Outbound mail of {domain} is signed with DKIM selector {current.Selector}, but {Seen(dns.Current)}: receivers cannot verify the " +
                    $"signatures (and DMARC may fail). Publish the TXT record {currentRecord.Name} with the text \"{currentRecord.Value}\".", currentRecord));
                break;
            default:
                findings.Add(new Finding(FindingActive, FindingSeverity.Info,
                    $"Outbound mail of {domain} is signed with DKIM (selector {current.Selector}, {DkimKey.KeyType(current.Algorithm)})" +
                    (dns.Current is null ? "; its record could not be looked up this time." : "; its record is published."), currentRecord));
                break;
        }

        if (state is { Phase: DkimPhase.Rotating, Next: { } next })
        {
            var nextRecord = Record(domain, next);
            findings.Add(new Finding(FindingRotationPending, FindingSeverity.Warning,
                $"DKIM key rotation of {domain}: publish the TXT record {nextRecord.Name} with the text \"{nextRecord.Value}\" and keep " +
                $"{currentRecord.Name} as it is; {Seen(dns.Next)}. The gateway switches to selector {next.Selector} once it sees the record.", nextRecord));
        }

        if (state is { Retired: { } retired, RetiredUntil: { } until })
        {
            findings.Add(new Finding(FindingRetiredKey, FindingSeverity.Info,
                $"The previous DKIM key of {domain} (selector {retired.Selector}) no longer signs. Keep its TXT record {retired.RecordName(domain)} until " +
                $"{until.UtcDateTime:yyyy-MM-dd HH:mm} UTC (mail signed with it may still be queued), then remove it."));
        }

        return findings;
    }

    /// <summary>The record to publish for a key.</summary>
    public static SuggestedRecord Record(string domain, DkimKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return new SuggestedRecord(key.RecordName(domain), "TXT", key.TxtValue);
    }

    private static string Seen(DkimRecordMatch? match) => match switch
    {
        DkimRecordMatch.Missing => "no TXT record is published at the selector's name yet",
        DkimRecordMatch.Different => "the TXT record published at the selector's name carries another key",
        DkimRecordMatch.Matches => "its record is published",
        _ => "DNS could not be read this time",
    };
}
