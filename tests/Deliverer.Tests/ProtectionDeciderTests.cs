using Gateway.Core.Domains;
using Gateway.Core.Mail;
using Gateway.Core.MessageLog;
using Gateway.Deliverer.Protection;

namespace Deliverer.Tests;

/// <summary>The verdict → per-domain action rule (<see cref="ProtectionDecider"/>) as tables, no engines.</summary>
[Trait("Kind", "Unit")]
public sealed class ProtectionDeciderTests
{
    private static readonly ProtectionSettings Defaults = ProtectionSettings.Default;

    private static RspamdResult Spam(double score, params string[] symbols) =>
        new(score >= 15 ? "reject" : "no action", score, 15, symbols.Select(s => new RspamdSymbol(s.Split(':')[0], 0, s.Contains(':', StringComparison.Ordinal) ? [s[(s.IndexOf(':', StringComparison.Ordinal) + 1)..]] : [])).ToList(), false);

    private static ScanFacts Facts(double score = 0, string? malware = null, params string[] symbols)
    {
        var spam = Spam(score, symbols);
        return new ScanFacts { Spam = spam, Malware = malware, Auth = AuthResults.From(spam), FromDomain = "sender.example", EnvelopeDomain = "sender.example" };
    }

    private static ScanCopy Copy(ProtectionSettings? p = null, bool verified = true, Direction direction = Direction.Inbound, string domain = "a.example") =>
        new(domain, direction, p ?? Defaults, verified);

    private static ProtectionSettings Spam(double tag, double quarantine, double reject, double outbound = 0) =>
        new() { Spam = new SpamProtection { TagScore = tag, QuarantineScore = quarantine, RejectScore = reject, OutboundRejectScore = outbound } };

    public static TheoryData<double, double, double, double, ScanAction> Thresholds => new()
    {
        // score, tag, quarantine, reject → action (the highest threshold reached; 0 = off)
        { 0, 6, 10, 15, ScanAction.Deliver },
        { 5.99, 6, 10, 15, ScanAction.Deliver },
        { 6, 6, 10, 15, ScanAction.Tag },
        { 9.5, 6, 10, 15, ScanAction.Tag },
        { 10, 6, 10, 15, ScanAction.Quarantine },
        { 15, 6, 10, 15, ScanAction.Reject },
        { 40, 6, 10, 15, ScanAction.Reject },
        { 40, 6, 10, 0, ScanAction.Quarantine },
        { 40, 6, 0, 0, ScanAction.Tag },
        { 40, 0, 0, 0, ScanAction.Deliver },
        { 12, 0, 0, 12, ScanAction.Reject },
        { 10, 10, 10, 10, ScanAction.Reject },
        { -3, 6, 10, 15, ScanAction.Deliver },
    };

    [Theory]
    [MemberData(nameof(Thresholds))]
    public void Evaluate_SpamScore_HighestThresholdReachedDecides(double score, double tag, double quarantine, double reject, ScanAction expected)
    {
        var v = ProtectionDecider.Evaluate(Facts(score), Copy(Spam(tag, quarantine, reject)));
        Assert.Equal(expected, v.Action);
        Assert.Equal(expected == ScanAction.Deliver ? ScanReasons.Clean : ScanReasons.Spam, v.Reason);
    }

    public static TheoryData<ProtectionAction, bool, Direction, ScanAction> MalwareCases => new()
    {
        // the domain's malware action, verified, direction → action
        { ProtectionAction.Reject, true, Direction.Inbound, ScanAction.Reject },
        { ProtectionAction.Quarantine, true, Direction.Inbound, ScanAction.Quarantine },
        { ProtectionAction.Quarantine, false, Direction.Inbound, ScanAction.Reject },  // unverified: always reject
        { ProtectionAction.Quarantine, true, Direction.Outbound, ScanAction.Reject },  // outbound: always reject
    };

    [Theory]
    [MemberData(nameof(MalwareCases))]
    public void Evaluate_Malware_DomainsActionButUnverifiedAndOutboundAlwaysReject(ProtectionAction action, bool verified, Direction direction, ScanAction expected)
    {
        var lenient = Spam(0, 0, 0) with { Malware = action, Spoofing = ProtectionAction.Deliver, DmarcEnforce = false };
        var v = ProtectionDecider.Evaluate(Facts(0, "Eicar-Test-Signature"), Copy(lenient, verified, direction));
        Assert.Equal(expected, v.Action);
        Assert.Equal(ScanReasons.Malware, v.Reason);
        Assert.Equal("Message refused: it contains malware (Eicar-Test-Signature)", v.Text);
    }

    private static readonly ScannerException RspamdDown = new("rspamd", ScannerFailureReasons.Unavailable, "connection refused");
    private static readonly ScannerException ClamdDown = new("clamd", ScannerFailureReasons.Timeout, "no answer");

    public static TheoryData<bool, bool, ScannerFailureAction, bool, ScanAction, string?> Failures => new()
    {
        // rspamd failed, clamd failed, on_scanner_failure, verified → action, what the unscanned header names
        { true, false, ScannerFailureAction.TempFail, true, ScanAction.TempFail, null },
        { false, true, ScannerFailureAction.TempFail, true, ScanAction.TempFail, null },
        { true, false, ScannerFailureAction.Pass, true, ScanAction.Deliver, "spam and sender authentication (rspamd: connection refused)" },
        { true, false, ScannerFailureAction.Pass, false, ScanAction.Deliver, "spam and sender authentication (rspamd: connection refused)" },
        { false, true, ScannerFailureAction.Pass, true, ScanAction.Deliver, "malware (clamd: no answer)" },
        { false, true, ScannerFailureAction.Pass, false, ScanAction.TempFail, null }, // unverified: malware scanning always
        { true, true, ScannerFailureAction.Pass, true, ScanAction.Deliver, "malware (clamd: no answer); spam and sender authentication (rspamd: connection refused)" },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public void Evaluate_ScannerFailure_TempFailUnlessTheDomainPasses_NeverSilently(bool rspamdFailed, bool clamdFailed, ScannerFailureAction onFailure, bool verified,
        ScanAction expected, string? unscanned)
    {
        var facts = new ScanFacts
        {
            Spam = rspamdFailed ? null : Spam(1),
            SpamFailure = rspamdFailed ? RspamdDown : null,
            MalwareFailure = clamdFailed ? ClamdDown : null,
        };
        var v = ProtectionDecider.Evaluate(facts, Copy(Defaults with { OnScannerFailure = onFailure }, verified));
        Assert.Equal(expected, v.Action);
        Assert.Equal(unscanned, v.Unscanned);
        if (expected == ScanAction.TempFail)
        {
            Assert.Equal(ScanReasons.ScannerFailure, v.Reason);
        }
    }

    [Fact]
    public void Evaluate_ScannerFailedButMalwareFound_MalwareDecides()
    {
        var facts = new ScanFacts { SpamFailure = RspamdDown, Malware = "Eicar" };
        Assert.Equal(ScanAction.Reject, ProtectionDecider.Evaluate(facts, Copy()).Action);
    }

    public static TheoryData<string[], bool, ProtectionAction, ScanAction, string> Authentication => new()
    {
        // rspamd symbols, DMARC enforced, spoofing action → action, reason (From is a managed domain, sender.example)
        { ["DMARC_POLICY_REJECT", "R_SPF_FAIL"], true, ProtectionAction.Quarantine, ScanAction.Reject, ScanReasons.Dmarc },
        { ["DMARC_POLICY_QUARANTINE", "R_SPF_FAIL"], true, ProtectionAction.Deliver, ScanAction.Quarantine, ScanReasons.Dmarc },
        { ["DMARC_POLICY_REJECT", "R_SPF_FAIL"], false, ProtectionAction.Quarantine, ScanAction.Quarantine, ScanReasons.Spoofing },
        { ["DMARC_POLICY_REJECT", "R_SPF_FAIL"], false, ProtectionAction.Reject, ScanAction.Reject, ScanReasons.Spoofing },
        { ["DMARC_POLICY_REJECT", "R_SPF_FAIL"], false, ProtectionAction.Tag, ScanAction.Tag, ScanReasons.Spoofing },
        { ["DMARC_POLICY_REJECT", "R_SPF_FAIL"], false, ProtectionAction.Deliver, ScanAction.Deliver, ScanReasons.Clean },
        { ["DMARC_NA", "R_SPF_SOFTFAIL"], true, ProtectionAction.Quarantine, ScanAction.Quarantine, ScanReasons.Spoofing },
        { ["DMARC_NA", "R_SPF_NA"], true, ProtectionAction.Reject, ScanAction.Reject, ScanReasons.Spoofing },
        { ["DMARC_NA", "R_SPF_ALLOW"], true, ProtectionAction.Reject, ScanAction.Deliver, ScanReasons.Clean },  // aligned SPF pass
        { ["DMARC_NA", "R_SPF_FAIL", "DKIM_TRACE:sender.example:+"], true, ProtectionAction.Reject, ScanAction.Deliver, ScanReasons.Clean },  // aligned DKIM
        { ["DMARC_NA", "R_SPF_FAIL", "DKIM_TRACE:mail.sender.example:+"], true, ProtectionAction.Reject, ScanAction.Deliver, ScanReasons.Clean },  // relaxed alignment
        { ["DMARC_NA", "R_SPF_FAIL", "DKIM_TRACE:other.example:+"], true, ProtectionAction.Reject, ScanAction.Reject, ScanReasons.Spoofing },  // not aligned
        { ["DMARC_NA", "R_SPF_DNSFAIL"], true, ProtectionAction.Reject, ScanAction.Deliver, ScanReasons.Clean },  // temporary error: no conclusion
        { ["DMARC_POLICY_ALLOW"], true, ProtectionAction.Reject, ScanAction.Deliver, ScanReasons.Clean },
    };

    [Theory]
    [MemberData(nameof(Authentication))]
    public void Evaluate_ManagedFrom_DmarcThenSpoofingPolicy(string[] symbols, bool dmarc, ProtectionAction spoofing, ScanAction expected, string reason)
    {
        var facts = Facts(0, null, symbols) with { FromManaged = true };
        var v = ProtectionDecider.Evaluate(facts, Copy(Defaults with { DmarcEnforce = dmarc, Spoofing = spoofing }));
        Assert.Equal(expected, v.Action);
        Assert.Equal(reason, v.Reason);
    }

    [Fact]
    public void Evaluate_UnmanagedFromOrOwnSendingSource_NeverSpoofing()
    {
        var failing = Facts(0, null, "DMARC_NA", "R_SPF_FAIL");
        var strict = Copy(Defaults with { Spoofing = ProtectionAction.Reject });
        Assert.Equal(ScanAction.Deliver, ProtectionDecider.Evaluate(failing, strict).Action);
        Assert.Equal(ScanAction.Deliver, ProtectionDecider.Evaluate(failing with { FromManaged = true, FromSourceAuthorised = true }, strict).Action);
        Assert.Equal(ScanAction.Reject, ProtectionDecider.Evaluate(failing with { FromManaged = true }, strict).Action);
        // Outbound copies are the domain's own mail: no spoofing or DMARC verdict there.
        Assert.Equal(ScanAction.Deliver, ProtectionDecider.Evaluate(failing with { FromManaged = true }, Copy(Defaults with { Spoofing = ProtectionAction.Reject }, direction: Direction.Outbound)).Action);
    }

    [Fact]
    public void Evaluate_StrongestOfDmarcSpoofingAndSpamWins()
    {
        var facts = Facts(20, null, "DMARC_POLICY_QUARANTINE", "R_SPF_FAIL") with { FromManaged = true };
        var v = ProtectionDecider.Evaluate(facts, Copy());
        Assert.Equal(ScanAction.Reject, v.Action);
        Assert.Equal(ScanReasons.Spam, v.Reason);
    }

    [Theory]
    [InlineData(0, 20, ScanAction.Deliver)]
    [InlineData(10, 9.9, ScanAction.Deliver)]
    [InlineData(10, 10, ScanAction.Reject)]
    public void Evaluate_Outbound_OnlyTheOutboundThresholdRefuses(double limit, double score, ScanAction expected)
    {
        var v = ProtectionDecider.Evaluate(Facts(score), Copy(Spam(1, 2, 3, limit), direction: Direction.Outbound));
        Assert.Equal(expected, v.Action);
    }

    [Fact]
    public void Evaluate_SoftRejectBeforeTheRules_TempFail_AfterTheRules_Ignored()
    {
        var skipped = new ScanFacts { Spam = new RspamdResult("soft reject", 0, 15, [new RspamdSymbol("GREYLIST", 0, ["too early"])], true) };
        var v = ProtectionDecider.Evaluate(skipped, Copy(Defaults with { OnScannerFailure = ScannerFailureAction.Pass }));
        Assert.Equal(ScanAction.TempFail, v.Action);
        Assert.Equal(ScanReasons.SoftReject, v.Reason);

        var ran = new ScanFacts { Spam = new RspamdResult("soft reject", 12, 15, [new RspamdSymbol("BAYES_SPAM", 5, [])], false) };
        Assert.Equal(ScanAction.Quarantine, ProtectionDecider.Evaluate(ran, Copy()).Action);
    }

    [Fact]
    public void Decide_EveryDomainRejects_550WithTheMostImportantReason()
    {
        var facts = Facts(20, "Win.Test") with { };
        var d = ProtectionDecider.Decide(facts, [Copy(domain: "a.example"), Copy(domain: "b.example")]);
        Assert.Equal("550 5.7.1 Message refused: it contains malware (Win.Test)", d.Reply);

        d = ProtectionDecider.Decide(Facts(20), [Copy(domain: "a.example"), Copy(domain: "b.example")]);
        Assert.Equal("550 5.7.1 Message refused as spam", d.Reply);
    }

    [Fact]
    public void Decide_DomainsDisagree_AcceptedAndTheRejectingDomainsCopyHeld()
    {
        var d = ProtectionDecider.Decide(Facts(20), [Copy(domain: "strict.example"), Copy(Spam(6, 0, 0), domain: "tags.example")]);
        Assert.Null(d.Reply);
        Assert.Equal(ScanAction.Quarantine, d.Copies[0].Action);
        Assert.EndsWith("(held: another recipient domain accepted the message)", d.Copies[0].Text, StringComparison.Ordinal);
        Assert.Equal(ScanAction.Tag, d.Copies[1].Action);
    }

    [Fact]
    public void Decide_AnyTempFail_451ForTheWholeMessage()
    {
        var facts = new ScanFacts { SpamFailure = RspamdDown };
        var d = ProtectionDecider.Decide(facts, [Copy(Defaults with { OnScannerFailure = ScannerFailureAction.Pass }, domain: "p.example"), Copy(domain: "t.example")]);
        Assert.Equal("451 4.7.1 Message could not be scanned now; try again later", d.Reply);
    }

    [Fact]
    public void Decide_ReplyIsAscii_EvenForAnInternationalisedFromDomain()
    {
        var facts = Facts(0, null, "DMARC_POLICY_REJECT") with { FromDomain = "bücher.example" };
        var d = ProtectionDecider.Decide(facts, [Copy()]);
        Assert.Equal("550 5.7.1 Message refused: DMARC policy of b?cher.example rejects unauthenticated mail", d.Reply);
    }
}

/// <summary>What a decision means for storing: the bytes per copy and the holds merged with the rules (<see cref="ProtectionResult"/>).</summary>
[Trait("Kind", "Unit")]
public sealed class ProtectionResultTests
{
    private const string Message = "Received: from c ([192.0.2.1])\r\n\tby gateway.test; Sun, 06 Dec 2026 12:00:00 +0000\r\nSubject: offer\r\nX-Spam-Flag: NO\r\n\r\nbody\r\n";

    private static ProtectionResult Result(params CopyVerdict[] copies)
    {
        var bytes = System.Text.Encoding.ASCII.GetBytes(Message);
        return new ProtectionResult(new ScanDecision(copies, null), new ScanFacts(), bytes, ScanHeaders.Parse(bytes), "X-Spam-Score: 7.00\r\n", "gateway.test");
    }

    private static CopyVerdict V(string domain, ScanAction action, bool subjectTag = false, string? unscanned = null, Direction direction = Direction.Inbound) =>
        new(new ScanCopy(domain, direction, new ProtectionSettings { Spam = new SpamProtection { SubjectTag = subjectTag } }, true), action, action == ScanAction.Deliver ? ScanReasons.Clean : ScanReasons.Spam,
            "spam score 7.00", unscanned);

    private static string Text(byte[] b) => System.Text.Encoding.ASCII.GetString(b);

    [Fact]
    public void BodyFor_EachCopyItsVariant_OutboundUnchanged_VariantsMadeOnce()
    {
        var r = Result(V("plain.example", ScanAction.Deliver), V("tag.example", ScanAction.Tag), V("subj.example", ScanAction.Tag, subjectTag: true),
            V("held.example", ScanAction.Quarantine), V("pass.example", ScanAction.Tag, unscanned: "malware (clamd: down)"), V("out.example", ScanAction.Deliver, direction: Direction.Outbound));
        var plain = Text(r.BodyFor("plain.example", Direction.Inbound));
        Assert.Contains("X-Spam-Score: 7.00\r\nSubject: offer\r\n\r\n", plain, StringComparison.Ordinal);
        Assert.DoesNotContain("X-Spam-Flag", plain, StringComparison.Ordinal);
        Assert.Contains("X-Spam-Flag: YES\r\nSubject: offer\r\n", Text(r.BodyFor("tag.example", Direction.Inbound)), StringComparison.Ordinal);
        Assert.Contains("Subject: [SPAM] offer\r\n", Text(r.BodyFor("subj.example", Direction.Inbound)), StringComparison.Ordinal);
        Assert.Same(r.BodyFor("plain.example", Direction.Inbound), r.BodyFor("held.example", Direction.Inbound));
        var passed = Text(r.BodyFor("pass.example", Direction.Inbound));
        Assert.Contains("X-Spam-Flag: YES\r\nX-Gateway-Unscanned: malware (clamd: down)\r\n", passed, StringComparison.Ordinal);
        Assert.Equal(Message, Text(r.BodyFor("out.example", Direction.Outbound)));
    }

    [Fact]
    public void Merge_ProtectionHoldJoinsTheRules_StrongerWins()
    {
        var r = Result(V("a.example", ScanAction.Quarantine), V("b.example", ScanAction.Deliver));
        var recipients = new[]
        {
            new Gateway.Deliverer.Intake.IntakeRecipient("x@a.example", "a.example", Direction.Inbound),
            new Gateway.Deliverer.Intake.IntakeRecipient("y@a.example", "a.example", Direction.Inbound),
            new Gateway.Deliverer.Intake.IntakeRecipient("z@b.example", "b.example", Direction.Inbound),
        };
        var merged = r.Merge(null, recipients)!;
        Assert.Equal(Gateway.Core.Rules.RuleAction.Quarantine, merged[0].Action);
        Assert.Equal("protection:spam", merged[0].Rule!.Id);
        Assert.Null(merged[2].Action);

        var reject = new Gateway.Core.Rules.PolicyRule { Id = "r1", Action = Gateway.Core.Rules.RuleAction.Reject };
        var deliver = new Gateway.Core.Rules.PolicyRule { Id = "r2", Action = Gateway.Core.Rules.RuleAction.Deliver };
        merged = r.Merge([new(recipients[0], reject.Action, reject), new(recipients[1], deliver.Action, deliver), new(recipients[2], null, null)], recipients)!;
        Assert.Equal("r1", merged[0].Rule!.Id); // a rule's REJECT stands
        Assert.Equal("protection:spam", merged[1].Rule!.Id); // a DELIVER rule does not skip protection

        Assert.Null(Result(V("b.example", ScanAction.Tag)).Merge(null, recipients));
    }
}
