using System.Globalization;
using Gateway.Core.Domains;
using Gateway.Core.Mail;

namespace Gateway.Deliverer.Protection;

/// <summary>What happens to one domain's copy of a scanned message.</summary>
public enum ScanAction
{
    Deliver,
    Tag,
    Quarantine,
    Reject,

    /// <summary>A scanner failed and the domain does not pass unscanned mail: the whole message gets 451.</summary>
    TempFail,
}

/// <summary>Why (metric tag <c>reason</c>, message log <c>reason=</c>).</summary>
public static class ScanReasons
{
    public const string Clean = "clean";
    public const string Spam = "spam";
    public const string Malware = "malware";
    public const string Dmarc = "dmarc";
    public const string Spoofing = "spoofing";
    public const string ScannerFailure = "scanner_failure";

    /// <summary>rspamd answered "soft reject" before running its rules (greylisting, rate limits): no verdict yet.</summary>
    public const string SoftReject = "soft_reject";
}

/// <summary>Everything the engines found about one message, and the facts about its sender the decision needs.</summary>
public sealed record ScanFacts
{
    /// <summary>rspamd's verdict; null when it failed (<see cref="SpamFailure"/>).</summary>
    public RspamdResult? Spam { get; init; }

    public ScannerException? SpamFailure { get; init; }

    /// <summary>The malware clamd (or rspamd's antivirus module) named; null: none found or not scanned.</summary>
    public string? Malware { get; init; }

    /// <summary>Set when no malware verdict was obtained.</summary>
    public ScannerException? MalwareFailure { get; init; }

    public AuthResults Auth { get; init; } = AuthResults.Unknown;

    /// <summary>The header From's domain (lower case), when there is one.</summary>
    public string? FromDomain { get; init; }

    /// <summary>The header From's domain is a managed domain (of any tenant).</summary>
    public bool FromManaged { get; init; }

    /// <summary>The client is one of the From domain's own sending sources (the relay rule's outbound test): authenticated by the gateway itself.</summary>
    public bool FromSourceAuthorised { get; init; }

    /// <summary>The envelope sender's domain (SPF's identity), null for the null sender.</summary>
    public string? EnvelopeDomain { get; init; }
}

/// <summary>One owning domain's copy: the domain, the direction relative to it, its policy and whether it is verified.</summary>
public sealed record ScanCopy(string Domain, Direction Direction, ProtectionSettings Policy, bool Verified);

/// <summary>The decision for one copy.</summary>
/// <param name="Text">Why, in words: the SMTP reply text of a refusal, the quarantine description of a hold.</param>
/// <param name="Unscanned">What was not checked because an engine failed and the domain passes unscanned mail (null: everything was).</param>
public sealed record CopyVerdict(ScanCopy Copy, ScanAction Action, string Reason, string Text, string? Unscanned = null);

/// <summary>The decision for the message: each copy's, and the DATA reply when the whole message is refused or deferred.</summary>
public sealed record ScanDecision(IReadOnlyList<CopyVerdict> Copies, string? Reply);

/// <summary>
/// The verdict → per-domain action rule of requirements §9, pure (no I/O), tested as a table. Per copy:
/// <list type="number">
/// <item>malware found → the domain's malware action (reject for an unverified domain; always reject outbound);</item>
/// <item>a scanner failed → 451 (TempFail), unless the domain passes unscanned mail (never the malware check of an
/// unverified domain): then delivered with <c>X-Gateway-Unscanned</c>;</item>
/// <item>inbound: the strongest of DMARC (<c>p=reject</c> → reject, <c>p=quarantine</c> → quarantine, when enforced),
/// spoofing (header From a managed domain, not authenticated → the domain's spoofing action) and the spam thresholds;
/// outbound: the optional outbound reject threshold.</item>
/// </list>
/// For the message: any TempFail → <c>451 4.7.1</c> for all (one DATA reply serves every recipient, and the sender
/// retries); every copy Reject → <c>550 5.7.1</c>; otherwise accepted, and the copies of rejecting domains are held in
/// their quarantines instead (no bounce: a DSN for spam or a virus would go to a forged sender).
/// </summary>
public static class ProtectionDecider
{
    public const string TempFailReply = "451 4.7.1 Message could not be scanned now; try again later";

    public static ScanDecision Decide(ScanFacts facts, IReadOnlyList<ScanCopy> copies)
    {
        ArgumentNullException.ThrowIfNull(facts);
        ArgumentNullException.ThrowIfNull(copies);
        var verdicts = copies.Select(c => Evaluate(facts, c)).ToList();
        if (verdicts.Count == 0)
        {
            return new ScanDecision(verdicts, null);
        }

        if (verdicts.Any(v => v.Action == ScanAction.TempFail))
        {
            return new ScanDecision(verdicts, TempFailReply);
        }

        if (verdicts.All(v => v.Action == ScanAction.Reject))
        {
            var first = verdicts.OrderBy(v => Priority(v.Reason)).First();
            return new ScanDecision(verdicts, "550 5.7.1 " + Ascii(first.Text));
        }

        return new ScanDecision(
            verdicts.Select(v => v.Action == ScanAction.Reject
                ? v with { Action = ScanAction.Quarantine, Text = v.Text + " (held: another recipient domain accepted the message)" }
                : v).ToList(),
            null);
    }

    public static CopyVerdict Evaluate(ScanFacts facts, ScanCopy copy)
    {
        ArgumentNullException.ThrowIfNull(facts);
        ArgumentNullException.ThrowIfNull(copy);
        var policy = copy.Policy;
        var outbound = copy.Direction == Direction.Outbound;
        var pass = policy.OnScannerFailure == ScannerFailureAction.Pass;

        if (facts.Malware is { } virus)
        {
            // requirements §9: an unverified domain always gets malware scanning with reject; outbound malware is always refused.
            var action = outbound || !copy.Verified || policy.Malware != ProtectionAction.Quarantine ? ScanAction.Reject : ScanAction.Quarantine;
            return new CopyVerdict(copy, action, ScanReasons.Malware, $"Message refused: it contains malware ({Clean(virus)})");
        }

        var unscanned = new List<string>();
        if (facts.MalwareFailure is { } mf)
        {
            if (!pass || !copy.Verified)
            {
                return new CopyVerdict(copy, ScanAction.TempFail, ScanReasons.ScannerFailure, "malware scan failed: " + mf.Message);
            }

            unscanned.Add($"malware ({mf.Message})");
        }

        if (facts.SpamFailure is { } sf || facts.Spam is null)
        {
            var why = facts.SpamFailure?.Message ?? "rspamd: no verdict";
            if (!pass)
            {
                return new CopyVerdict(copy, ScanAction.TempFail, ScanReasons.ScannerFailure, "spam scan failed: " + why);
            }

            unscanned.Add($"spam and sender authentication ({why})");
            return new CopyVerdict(copy, ScanAction.Deliver, ScanReasons.ScannerFailure, "not scanned: " + string.Join("; ", unscanned), string.Join("; ", unscanned));
        }

        var spam = facts.Spam;
        if (spam is { Action: "soft reject", Skipped: true })
        {
            // A module such as greylist or ratelimit answered before the rules ran: no verdict to deliver on (requirements §9:
            // never a silent pass). A soft reject forced after the rules ran is ignored: the rules' results decide below.
            return new CopyVerdict(copy, ScanAction.TempFail, ScanReasons.SoftReject, "rspamd asked to try again later (soft reject)");
        }

        var best = new CopyVerdict(copy, ScanAction.Deliver, ScanReasons.Clean, "clean");
        if (outbound)
        {
            var limit = policy.Spam.OutboundRejectScore;
            if (limit > 0 && spam.Score >= limit)
            {
                best = new CopyVerdict(copy, ScanAction.Reject, ScanReasons.Spam,
                    $"Message refused as spam (outbound score {Score(spam.Score)}, limit {Score(limit)})");
            }
        }
        else
        {
            best = Stronger(best, Dmarc(facts, copy));
            best = Stronger(best, Spoofing(facts, copy));
            best = Stronger(best, Spam(spam.Score, copy));
        }

        return unscanned.Count == 0 ? best : best with { Unscanned = string.Join("; ", unscanned) };
    }

    private static CopyVerdict? Dmarc(ScanFacts facts, ScanCopy copy)
    {
        if (!copy.Policy.DmarcEnforce || facts.Auth.Dmarc != AuthResults.Fail || facts.Auth.DmarcPolicy is not { } p)
        {
            return null;
        }

        var domain = facts.FromDomain ?? "the sender's domain";
        return p == "reject"
            ? new CopyVerdict(copy, ScanAction.Reject, ScanReasons.Dmarc, $"Message refused: DMARC policy of {domain} rejects unauthenticated mail")
            : new CopyVerdict(copy, ScanAction.Quarantine, ScanReasons.Dmarc, $"DMARC policy of {domain} quarantines unauthenticated mail");
    }

    private static CopyVerdict? Spoofing(ScanFacts facts, ScanCopy copy)
    {
        if (facts.FromDomain is not { } from || !facts.FromManaged || facts.FromSourceAuthorised ||
            facts.Auth.Authenticates(from, facts.EnvelopeDomain) || facts.Auth.TemporaryError)
        {
            return null;
        }

        return Act(copy, copy.Policy.Spoofing, ScanReasons.Spoofing,
            $"Message refused: the sender {from} is a domain protected by this gateway and the message is not authenticated (spf={facts.Auth.Spf}, dkim={(facts.Auth.Dkim.Count == 0 ? "none" : string.Join(",", facts.Auth.Dkim.Select(d => d.Result)))})");
    }

    private static CopyVerdict? Spam(double score, ScanCopy copy)
    {
        var s = copy.Policy.Spam;
        if (s.RejectScore > 0 && score >= s.RejectScore)
        {
            return new CopyVerdict(copy, ScanAction.Reject, ScanReasons.Spam, "Message refused as spam");
        }

        if (s.QuarantineScore > 0 && score >= s.QuarantineScore)
        {
            return new CopyVerdict(copy, ScanAction.Quarantine, ScanReasons.Spam, $"spam score {Score(score)} (quarantine at {Score(s.QuarantineScore)})");
        }

        return s.TagScore > 0 && score >= s.TagScore
            ? new CopyVerdict(copy, ScanAction.Tag, ScanReasons.Spam, $"spam score {Score(score)} (tag at {Score(s.TagScore)})")
            : null;
    }

    private static CopyVerdict? Act(ScanCopy copy, ProtectionAction action, string reason, string text) => action switch
    {
        ProtectionAction.Reject => new CopyVerdict(copy, ScanAction.Reject, reason, text),
        ProtectionAction.Quarantine => new CopyVerdict(copy, ScanAction.Quarantine, reason, text.Replace("Message refused: ", string.Empty, StringComparison.Ordinal)),
        ProtectionAction.Tag => new CopyVerdict(copy, ScanAction.Tag, reason, text.Replace("Message refused: ", string.Empty, StringComparison.Ordinal)),
        _ => null,
    };

    /// <summary>The stronger action wins; on a tie the one found first (DMARC, then spoofing, then spam).</summary>
    private static CopyVerdict Stronger(CopyVerdict current, CopyVerdict? candidate) =>
        candidate is not null && candidate.Action > current.Action ? candidate : current;

    /// <summary>Which refusal the sender is told about when several domains refuse for different reasons.</summary>
    private static int Priority(string reason) => reason switch
    {
        ScanReasons.Malware => 0,
        ScanReasons.Dmarc => 1,
        ScanReasons.Spoofing => 2,
        _ => 3,
    };

    private static string Score(double s) => s.ToString("0.00", CultureInfo.InvariantCulture);

    /// <summary>An SMTP reply is one line of ASCII (an internationalised From domain would not be).</summary>
    private static string Ascii(string text) => new(text.Select(c => c is >= ' ' and < (char)0x7f ? c : '?').ToArray());

    /// <summary>A virus name as clamd reports it, safe for a one-line SMTP reply.</summary>
    private static string Clean(string name) => new(name.Where(c => c is >= ' ' and < (char)0x7f).Take(100).ToArray());
}
