using Gateway.Core.Errors;

namespace Gateway.Core.Domains;

/// <summary>What the gateway does with a message a protection check flagged (requirements §9).</summary>
public enum ProtectionAction
{
    /// <summary>Deliver as if nothing was found (the verdict is still logged and in the headers).</summary>
    Deliver,

    /// <summary>Deliver with <c>X-Spam-Flag: YES</c> (and <c>[SPAM]</c> in the subject when the domain asks for it).</summary>
    Tag,

    /// <summary>Hold the domain's copy in its quarantine.</summary>
    Quarantine,

    /// <summary>Refuse with <c>550 5.7.1</c> at the end of DATA (held instead when another recipient domain accepts).</summary>
    Reject,
}

/// <summary>What happens while a scanning engine is down or slower than its timeout.</summary>
public enum ScannerFailureAction
{
    /// <summary>Answer <c>451 4.7.1</c>: the sending MTA keeps the message and retries.</summary>
    TempFail,

    /// <summary>Accept unscanned, with an <c>X-Gateway-Unscanned</c> header saying what was not checked.</summary>
    Pass,
}

/// <summary>Spam score thresholds (rspamd's score); 0 turns a threshold off. The highest threshold reached decides.</summary>
public sealed record SpamProtection
{
    public const double DefaultTagScore = 6;
    public const double DefaultQuarantineScore = 10;
    public const double DefaultRejectScore = 15;

    /// <summary>The largest threshold accepted (rspamd's GTUBE scores 15; real spam rarely exceeds 50).</summary>
    public const double MaxScore = 1000;

    public double TagScore { get; init; } = DefaultTagScore;

    public double QuarantineScore { get; init; } = DefaultQuarantineScore;

    public double RejectScore { get; init; } = DefaultRejectScore;

    /// <summary>Prefix the Subject of tagged mail with <c>[SPAM]</c>.</summary>
    public bool SubjectTag { get; init; }

    /// <summary>Outbound mail of the domain scoring at or above this is refused (protects its sending reputation); 0: off, outbound is only scored and logged.</summary>
    public double OutboundRejectScore { get; init; }
}

/// <summary>
/// A managed domain's inbound protection policy (requirements §9, docs/protection.md). The defaults are what a
/// domain gets when it never set anything: tag at 6, quarantine at 10, reject at 15; malware refused; DMARC
/// <c>p=reject|quarantine</c> honoured; spoofed mail of a managed domain quarantined; 451 while a scanner fails.
/// </summary>
public sealed record ProtectionSettings
{
    public static readonly ProtectionSettings Default = new();

    public SpamProtection Spam { get; init; } = new();

    /// <summary><see cref="ProtectionAction.Reject"/> or <see cref="ProtectionAction.Quarantine"/>; unverified domains always reject.</summary>
    public ProtectionAction Malware { get; init; } = ProtectionAction.Reject;

    /// <summary>Honour the sender domain's DMARC policy: <c>p=reject</c> refused, <c>p=quarantine</c> held.</summary>
    public bool DmarcEnforce { get; init; } = true;

    /// <summary>Inbound mail whose header From is a managed domain and that fails authentication (no aligned SPF or DKIM pass).</summary>
    public ProtectionAction Spoofing { get; init; } = ProtectionAction.Quarantine;

    public ScannerFailureAction OnScannerFailure { get; init; } = ScannerFailureAction.TempFail;
}

/// <summary>The <c>protection.*</c> paths of UpdateDomain's field mask (AIP-134) and how they apply.</summary>
public static class ProtectionMask
{
    public const string Protection = "protection";
    public const string Spam = "protection.spam";
    public const string SpamTagScore = "protection.spam.tag_score";
    public const string SpamQuarantineScore = "protection.spam.quarantine_score";
    public const string SpamRejectScore = "protection.spam.reject_score";
    public const string SpamSubjectTag = "protection.spam.subject_tag";
    public const string SpamOutboundRejectScore = "protection.spam.outbound_reject_score";
    public const string Malware = "protection.malware";
    public const string DmarcEnforce = "protection.dmarc_enforce";
    public const string Spoofing = "protection.spoofing";
    public const string OnScannerFailure = "protection.on_scanner_failure";

    public static readonly IReadOnlyList<string> Paths =
    [
        Protection, Spam, SpamTagScore, SpamQuarantineScore, SpamRejectScore, SpamSubjectTag, SpamOutboundRejectScore,
        Malware, DmarcEnforce, Spoofing, OnScannerFailure,
    ];

    /// <summary>
    /// The masked fields of <paramref name="patch"/> over <paramref name="current"/>. A path names its sub-fields too
    /// (<c>protection.spam</c> sets every spam field); a field the request left unset arrives here as its default.
    /// </summary>
    /// <param name="has">Whether the mask names a path (or <c>*</c>).</param>
    public static ProtectionSettings Apply(ProtectionSettings current, ProtectionSettings patch, Func<string, bool> has)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(patch);
        ArgumentNullException.ThrowIfNull(has);
        bool Top(string p) => has(Protection) || has(p);
        bool InSpam(string p) => Top(Spam) || has(p);
        var s = current.Spam;
        var ps = patch.Spam;
        return new ProtectionSettings
        {
            Spam = new SpamProtection
            {
                TagScore = InSpam(SpamTagScore) ? ps.TagScore : s.TagScore,
                QuarantineScore = InSpam(SpamQuarantineScore) ? ps.QuarantineScore : s.QuarantineScore,
                RejectScore = InSpam(SpamRejectScore) ? ps.RejectScore : s.RejectScore,
                SubjectTag = InSpam(SpamSubjectTag) ? ps.SubjectTag : s.SubjectTag,
                OutboundRejectScore = InSpam(SpamOutboundRejectScore) ? ps.OutboundRejectScore : s.OutboundRejectScore,
            },
            Malware = Top(Malware) ? patch.Malware : current.Malware,
            DmarcEnforce = Top(DmarcEnforce) ? patch.DmarcEnforce : current.DmarcEnforce,
            Spoofing = Top(Spoofing) ? patch.Spoofing : current.Spoofing,
            OnScannerFailure = Top(OnScannerFailure) ? patch.OnScannerFailure : current.OnScannerFailure,
        };
    }
}

/// <summary>Validation of a protection policy; field paths under <c>&lt;prefix&gt;.protection</c>.</summary>
public static class ProtectionValidator
{
    public static ProtectionSettings Normalize(ProtectionSettings? input, string field, List<FieldViolation> violations)
    {
        ArgumentNullException.ThrowIfNull(violations);
        input ??= ProtectionSettings.Default;
        var spam = input.Spam ?? new SpamProtection();
        Score(spam.TagScore, $"{field}.spam.tag_score", violations);
        Score(spam.QuarantineScore, $"{field}.spam.quarantine_score", violations);
        Score(spam.RejectScore, $"{field}.spam.reject_score", violations);
        Score(spam.OutboundRejectScore, $"{field}.spam.outbound_reject_score", violations);

        // The thresholds that are on must not decrease: tag <= quarantine <= reject (equal ones: the stronger action wins).
        var below = (Name: "tag_score", Value: spam.TagScore);
        foreach (var (name, value) in new[] { ("quarantine_score", spam.QuarantineScore), ("reject_score", spam.RejectScore) })
        {
            if (value <= 0 || !double.IsFinite(value))
            {
                continue;
            }

            if (below.Value > 0 && double.IsFinite(below.Value) && value < below.Value)
            {
                violations.Add(new FieldViolation($"{field}.spam.{name}",
                    $"must not be below {below.Name} ({Text(below.Value)}): thresholds go tag <= quarantine <= reject; 0 turns one off"));
            }

            below = (name, value);
        }

        if (input.Malware is not (ProtectionAction.Reject or ProtectionAction.Quarantine))
        {
            violations.Add(new FieldViolation($"{field}.malware", "malware can be REJECT or QUARANTINE (it is never delivered)"));
        }

        if (!Enum.IsDefined(input.Spoofing))
        {
            violations.Add(new FieldViolation($"{field}.spoofing", "must be DELIVER, TAG, QUARANTINE or REJECT"));
        }

        if (!Enum.IsDefined(input.OnScannerFailure))
        {
            violations.Add(new FieldViolation($"{field}.on_scanner_failure", "must be TEMPFAIL or PASS"));
        }

        return input with { Spam = spam };
    }

    private static void Score(double value, string field, List<FieldViolation> violations)
    {
        if (!double.IsFinite(value) || value < 0 || value > SpamProtection.MaxScore)
        {
            violations.Add(new FieldViolation(field,
                $"must be a score from 0 (off) to {Text(SpamProtection.MaxScore)}; {Text(value)} given"));
        }
    }

    private static string Text(double v) => v.ToString("0.##", System.Globalization.CultureInfo.InvariantCulture);
}
