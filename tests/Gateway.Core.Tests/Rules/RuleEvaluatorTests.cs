using Gateway.Core.Mail;
using Gateway.Core.Errors;
using Gateway.Core.MessageLog;
using Gateway.Core.Relay;
using Gateway.Core.Rules;
using Gateway.Core.Snapshot;
using static Gateway.Core.Tests.RelayTestData;
using Gateway.ControlPlane.Application;

namespace Gateway.Core.Tests.Rules;

/// <summary>The rule matcher as tables: each condition, each action, order, stages (RCPT vs intake), direction.</summary>
[Trait("Kind", "Unit")]
public sealed class RuleEvaluatorTests
{
    private static int _next;

    private static PolicyRule Rule(RuleAction action = RuleAction.Reject, string[]? senders = null, string[]? recipients = null, string[]? ips = null,
        long size = 0, string subject = "", string[]? attachments = null, RuleDirection direction = RuleDirection.Both, bool enabled = true, string text = "") => new()
    {
        Id = "r" + Interlocked.Increment(ref _next),
        Action = action,
        Senders = senders ?? [],
        Recipients = recipients ?? [],
        ClientIps = ips ?? [],
        SizeAbove = size,
        SubjectContains = subject,
        AttachmentNames = attachments ?? [],
        Direction = direction,
        Enabled = enabled,
        RejectText = text,
    };

    private static CompiledRuleSet? Set(params PolicyRule[] rules) => CompiledRuleSet.Compile(new RuleList { Rules = rules });

    private static RuleFacts Envelope(string sender = "alice@sender.example", string recipient = "bob@in.example", string client = "198.51.100.7",
        long? size = null, Direction direction = Direction.Inbound) => new()
    {
        Direction = direction, Sender = sender, Recipient = recipient, ClientAddress = client, Size = size,
    };

    private static RuleFacts Intake(string sender = "alice@sender.example", string recipient = "bob@in.example", string client = "198.51.100.7",
        long size = 1000, string subject = "Hello", string[]? attachments = null, Direction direction = Direction.Inbound) => new()
    {
        Direction = direction, Sender = sender, Recipient = recipient, ClientAddress = client, Size = size, SizeIsFinal = true,
        ContentKnown = true, Subject = subject, AttachmentNames = attachments ?? [],
    };

    private static PolicyRule? Matched(CompiledRuleSet? set, in RuleFacts facts)
    {
        var o = RuleEvaluator.Evaluate(set, facts);
        return o.Verdict == RuleVerdict.Matched ? o.Rule!.Rule : null;
    }

    [Theory]
    [InlineData("*@sender.example", "alice@sender.example", true)]
    [InlineData("*@sender.example", "ALICE@Sender.Example", true)]
    [InlineData("*@sender.example", "alice@sub.sender.example", false)]
    [InlineData("alice@sender.example", "alice@sender.example", true)]
    [InlineData("alice@sender.example", "alice2@sender.example", false)]
    [InlineData("sender.example", "x@sender.example", true)]
    [InlineData("sender.example", "x@sender.example.", true)]
    [InlineData("sender.example", "x@notsender.example", false)]
    [InlineData("*.spam.example", "x@mail.spam.example", true)]
    [InlineData("*.spam.example", "x@spam.example", false)]
    [InlineData("*.spam.example", "x@a.b.spam.example", true)]
    [InlineData("a?c@x.org", "abc@x.org", true)]
    [InlineData("a?c@x.org", "ac@x.org", false)]
    [InlineData("*", "anyone@anywhere.example", true)]
    [InlineData("*", "", false)]
    [InlineData("<>", "", true)]
    [InlineData("<>", "a@b.example", false)]
    [InlineData("bounce-*@lists.example", "bounce-123-x@lists.example", true)]
    [InlineData("*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false)]
    public void Evaluate_SenderPattern_MatchesAsGlob(string pattern, string sender, bool expected)
    {
        var set = Set(Rule(senders: [pattern]));
        Assert.Equal(expected, Matched(set, Envelope(sender: sender)) is not null);
    }

    [Fact]
    public void Evaluate_RecipientPatterns_AnyEntryMatches()
    {
        var set = Set(Rule(recipients: ["ceo@in.example", "*@hr.in.example"]));
        Assert.NotNull(Matched(set, Envelope(recipient: "CEO@in.example")));
        Assert.NotNull(Matched(set, Envelope(recipient: "x@hr.in.example")));
        Assert.Null(Matched(set, Envelope(recipient: "bob@in.example")));
    }

    [Theory]
    [InlineData("198.51.100.0/24", "198.51.100.7", true)]
    [InlineData("198.51.100.0/24", "198.51.101.7", false)]
    [InlineData("198.51.100.7", "198.51.100.7", true)]
    [InlineData("198.51.100.7", "::ffff:198.51.100.7", true)]
    [InlineData("2001:db8::/32", "2001:db8:1::25", true)]
    [InlineData("2001:db8::/32", "2001:db9::25", false)]
    [InlineData("2001:db8::1", "2001:DB8:0:0::1", true)]
    [InlineData("198.51.100.0/24", "unknown", false)]
    [InlineData("198.51.100.0/24", "", false)]
    public void Evaluate_ClientIpOrCidr_IPv4AndIPv6(string network, string client, bool expected)
    {
        var set = Set(Rule(ips: [network]));
        Assert.Equal(expected, Matched(set, Envelope(client: client)) is not null);
    }

    [Fact]
    public void Evaluate_SizeAbove_RealSizeAtIntake_AnnouncedSizeAtRcpt()
    {
        var set = Set(Rule(size: 10_000));
        Assert.NotNull(Matched(set, Intake(size: 10_001)));
        Assert.Null(Matched(set, Intake(size: 10_000)));
        // RCPT: an announced size above the limit decides; none, or a smaller one, leaves it to the intake.
        Assert.NotNull(Matched(set, Envelope(size: 20_000)));
        Assert.Equal(RuleVerdict.Undecided, RuleEvaluator.Evaluate(set, Envelope(size: 5_000)).Verdict);
        Assert.Equal(RuleVerdict.Undecided, RuleEvaluator.Evaluate(set, Envelope(size: null)).Verdict);
        Assert.Equal(RuleVerdict.Undecided, RuleEvaluator.Evaluate(set, Envelope(size: 0)).Verdict);
    }

    [Fact]
    public void Evaluate_SubjectContains_CaseInsensitive_OnlyAtIntake()
    {
        var set = Set(Rule(subject: "Invoice Overdue"));
        Assert.NotNull(Matched(set, Intake(subject: "RE: your INVOICE overdue!!")));
        Assert.Null(Matched(set, Intake(subject: "Invoice paid")));
        Assert.Null(Matched(set, Intake(subject: "")));
        Assert.Equal(RuleVerdict.Undecided, RuleEvaluator.Evaluate(set, Envelope()).Verdict);
    }

    [Theory]
    [InlineData("*.exe", "setup.EXE", true)]
    [InlineData("*.exe", "setup.exe.txt", false)]
    [InlineData("*.exe", "exe", false)]
    [InlineData("invoice*.pdf", "Invoice-2026.PDF", true)]
    [InlineData("*", "anything", true)]
    public void Evaluate_AttachmentName_Glob(string pattern, string name, bool expected)
    {
        var set = Set(Rule(attachments: [pattern]));
        Assert.Equal(expected, Matched(set, Intake(attachments: ["readme.txt", name])) is not null);
        Assert.Null(Matched(set, Intake(attachments: [])));
    }

    [Fact]
    public void Evaluate_AllConditionsMustMatch()
    {
        var set = Set(Rule(senders: ["*@sender.example"], ips: ["198.51.100.0/24"], subject: "win"));
        Assert.NotNull(Matched(set, Intake(subject: "You WIN")));
        Assert.Null(Matched(set, Intake(subject: "You WIN", client: "192.0.2.1")));
        Assert.Null(Matched(set, Intake(subject: "You WIN", sender: "x@other.example")));
        Assert.Null(Matched(set, Intake(subject: "hello")));
    }

    [Fact]
    public void Evaluate_EnvelopeConditionFails_NoMatchEvenIfContentUnknown()
    {
        // At RCPT a rule whose envelope part already fails does not block the rules after it.
        var reject = Rule(senders: ["bad@x.org"]);
        var set = Set(Rule(RuleAction.Deliver, senders: ["friend@x.org"], subject: "urgent"), reject);
        Assert.Same(reject, Matched(set, Envelope(sender: "bad@x.org")));
    }

    [Fact]
    public void Evaluate_ContentRuleBeforeEnvelopeRule_UndecidedAtRcpt_DecidedAtIntake()
    {
        // Rule 1 may DELIVER (stop) depending on the subject, so rule 2 must not reject at RCPT.
        var deliver = Rule(RuleAction.Deliver, subject: "[ticket]");
        var reject = Rule(senders: ["*@x.org"]);
        var set = Set(deliver, reject);
        var rcpt = RuleEvaluator.Evaluate(set, Envelope(sender: "a@x.org"));
        Assert.Equal(RuleVerdict.Undecided, rcpt.Verdict);
        Assert.Same(deliver, rcpt.Rule!.Rule);
        Assert.Same(deliver, Matched(set, Intake(sender: "a@x.org", subject: "[Ticket] 42")));
        Assert.Same(reject, Matched(set, Intake(sender: "a@x.org", subject: "hi")));
    }

    [Fact]
    public void Evaluate_FirstMatchWins_DeliverStopsEvaluation()
    {
        var allow = Rule(RuleAction.Deliver, senders: ["boss@x.org"]);
        var quarantine = Rule(RuleAction.Quarantine, senders: ["*@x.org"]);
        var set = Set(allow, quarantine);
        Assert.Same(allow, Matched(set, Envelope(sender: "boss@x.org")));
        Assert.Same(quarantine, Matched(set, Envelope(sender: "intern@x.org")));

        var reversed = Set(quarantine, allow);
        Assert.Same(quarantine, Matched(reversed, Envelope(sender: "boss@x.org")));
    }

    [Fact]
    public void Evaluate_DisabledRule_Skipped_AllDisabled_NoSet()
    {
        var off = Rule(senders: ["*"], enabled: false);
        var on = Rule(RuleAction.Quarantine, senders: ["*"]);
        Assert.Same(on, Matched(Set(off, on), Envelope()));
        Assert.Null(Set(off));
        Assert.Null(CompiledRuleSet.Compile(RuleList.Empty));
        Assert.Equal(RuleOutcome.None, RuleEvaluator.Evaluate(null, Envelope()));
    }

    [Fact]
    public void Evaluate_Direction_RuleSeesOnlyItsDirection()
    {
        var inbound = Rule(senders: ["*"], direction: RuleDirection.Inbound);
        var outbound = Rule(RuleAction.Quarantine, senders: ["*"], direction: RuleDirection.Outbound);
        var set = Set(inbound, outbound);
        Assert.Same(inbound, Matched(set, Envelope(direction: Direction.Inbound)));
        Assert.Same(outbound, Matched(set, Envelope(direction: Direction.Outbound)));
        Assert.NotNull(Matched(Set(Rule(senders: ["*"])), Envelope(direction: Direction.Outbound)));
    }

    [Fact]
    public void Compile_NeedsMime_OnlyForSubjectOrAttachmentRules()
    {
        Assert.False(Set(Rule(senders: ["*"]), Rule(size: 5))!.NeedsMime);
        Assert.True(Set(Rule(senders: ["*"]), Rule(attachments: ["*.exe"]))!.NeedsMime);
        Assert.True(Set(Rule(subject: "x"))!.NeedsMime);
    }

    [Fact]
    public void EnvelopeCheck_RejectRule_RefusesWithText_QuarantineAndDeliverPass()
    {
        var domain = Domain("in.example", inbound: true);
        var rules = new RuleList
        {
            Rules =
            [
                Rule(RuleAction.Deliver, senders: ["ok@x.org"]),
                Rule(RuleAction.Quarantine, senders: ["q@x.org"]),
                Rule(senders: ["*@x.org"], text: "No mail from x.org"),
                Rule(senders: ["*@y.org"]),
            ],
        };
        var snapshot = new ConfigSnapshot();
        snapshot.Replace([domain], 1, DateTimeOffset.UtcNow, new Dictionary<string, RuleList> { ["in.example"] = rules });
        var engine = new RelayEngine([new RuleEnvelopeCheck()]);

        var refused = engine.Evaluate(Rcpt("spam@x.org", "a@in.example"), snapshot, Providers);
        Assert.Equal(RelayOutcome.Reject, refused.Outcome);
        Assert.Equal(RelayReason.EnvelopeRule, refused.Reason);
        Assert.Equal("No mail from x.org", refused.ReplyText);
        Assert.Contains(rules.Rules[2].Id, refused.LogDetail, StringComparison.Ordinal);
        Assert.Equal(RuleDefaults.RejectText, engine.Evaluate(Rcpt("a@y.org", "a@in.example"), snapshot, Providers).ReplyText);
        Assert.Equal(RelayOutcome.Accept, engine.Evaluate(Rcpt("ok@x.org", "a@in.example"), snapshot, Providers).Outcome);
        Assert.Equal(RelayOutcome.Accept, engine.Evaluate(Rcpt("q@x.org", "a@in.example"), snapshot, Providers).Outcome);
        Assert.Equal(RelayOutcome.Accept, engine.Evaluate(Rcpt("a@z.org", "a@in.example"), snapshot, Providers).Outcome);
        // The relay rules come first: a rule never opens the relay, and NO-DOMAIN stays NO-DOMAIN.
        Assert.Equal(RelayReason.NoDomain, engine.Evaluate(Rcpt("ok@x.org", "a@else.example"), snapshot, Providers).Reason);
    }

    [Fact]
    public void EnvelopeCheck_DomainWithoutRules_NullRules()
    {
        var snapshot = SnapshotOf(Domain("in.example", inbound: true));
        Assert.Null(snapshot.Find("in.example")!.Rules);
        var engine = new RelayEngine([new RuleEnvelopeCheck()]);
        Assert.Equal(RelayOutcome.Accept, engine.Evaluate(Rcpt("a@x.org", "b@in.example"), snapshot, Providers).Outcome);
    }

    [Fact]
    public void Evaluate_EnvelopeRule_DoesNotAllocate()
    {
        var set = Set(Rule(RuleAction.Deliver, senders: ["*@friend.example", "boss@x.org"]), Rule(recipients: ["*@hr.in.example"]),
            Rule(senders: ["*.spam.example"]));
        var facts = Envelope(sender: "a@mail.spam.example");
        Assert.NotNull(Matched(set, facts));
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            _ = RuleEvaluator.Evaluate(set, facts);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}

[Trait("Kind", "Unit")]
public sealed class RuleValidatorTests
{
    private static List<FieldViolation> Violations(PolicyRule rule)
    {
        var v = new List<FieldViolation>();
        RuleValidator.Normalize(rule, "rule", v);
        return v;
    }

    private static PolicyRule Draft(RuleAction action = RuleAction.Reject) => new() { Id = string.Empty, Action = action };

    [Fact]
    public void Normalize_EmptyRule_OneViolationOnRule()
    {
        var v = Assert.Single(Violations(Draft()));
        Assert.Equal("rule", v.Field);
    }

    [Theory]
    [InlineData("10.0.0.0/33")]
    [InlineData("10.1")]
    [InlineData("2001:db8::/129")]
    [InlineData("example.com")]
    [InlineData("10.0.0.1-10.0.0.9")]
    public void Normalize_BadCidr_ViolationOnEntry(string ip)
    {
        var v = Assert.Single(Violations(Draft() with { ClientIps = ["192.0.2.1", ip] }));
        Assert.Equal("rule.client_ips[1]", v.Field);
    }

    [Theory]
    [InlineData("a b@x.org")]
    [InlineData("a@b@x.org")]
    [InlineData("@x.org")]
    [InlineData("x@")]
    [InlineData("x@ex ample.org")]
    [InlineData("x@[192.0.2.1]")]
    [InlineData("x@a..b")]
    [InlineData("<bad@x.org>")]
    public void Normalize_BadPattern_ViolationOnEntry(string pattern)
    {
        var v = Assert.Single(Violations(Draft() with { Senders = [pattern] }));
        Assert.Equal("rule.senders[0]", v.Field);
    }

    [Theory]
    [InlineData("line1\r\nline2")]
    [InlineData("bad\nline")]
    [InlineData("caf\u00e9")]
    public void Normalize_RejectTextNotOneAsciiLine_Violation(string text)
    {
        var v = Assert.Single(Violations(Draft() with { Senders = ["*"], RejectText = text }));
        Assert.Equal("rule.reject_text", v.Field);
    }

    [Fact]
    public void Normalize_RejectTextWithOtherAction_UnsetActionAndDirection_Violations()
    {
        Assert.Equal("rule.reject_text", Assert.Single(Violations(Draft(RuleAction.Quarantine) with { Senders = ["*"], RejectText = "x" })).Field);
        Assert.Equal("rule.action", Assert.Single(Violations(Draft((RuleAction)(-1)) with { Senders = ["*"] })).Field);
        Assert.Equal("rule.direction", Assert.Single(Violations(Draft() with { Senders = ["*"], Direction = (RuleDirection)(-1) })).Field);
        Assert.Equal("rule.size_above", Assert.Single(Violations(Draft() with { SizeAbove = -1, Senders = ["*"] })).Field);
        Assert.Equal("rule.attachment_names[0]", Assert.Single(Violations(Draft() with { AttachmentNames = ["dir/*.exe"] })).Field);
        Assert.Equal("rule.subject_contains", Assert.Single(Violations(Draft() with { SubjectContains = "a\r\nBcc: x" })).Field);
    }

    [Fact]
    public void Normalize_CanonicalForms()
    {
        var v = new List<FieldViolation>();
        var rule = RuleValidator.Normalize(Draft() with
        {
            Senders = [" *@Example.COM ", "*@example.com", "<>"],
            ClientIps = ["192.0.2.7/24", "2001:DB8::1", "::ffff:192.0.2.9"],
            AttachmentNames = ["*.EXE"],
        }, "rule", v);
        Assert.Empty(v);
        Assert.Equal(["*@example.com", "<>"], rule.Senders);
        Assert.Equal(["192.0.2.0/24", "2001:db8::1", "192.0.2.9"], rule.ClientIps);
        Assert.Equal(["*.exe"], rule.AttachmentNames);
    }
}
