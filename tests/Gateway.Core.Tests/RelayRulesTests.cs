using Gateway.Core.Mail;
using Gateway.Core.Domains;
using Gateway.Core.MessageLog;
using Gateway.Core.Relay;
using Gateway.Core.Snapshot;
using static Gateway.Core.Tests.RelayTestData;

namespace Gateway.Core.Tests;

/// <summary>The relay decision of requirements §4 as a table: each case, IPv6, case, subdomains, verification, providers.</summary>
[Trait("Kind", "Unit")]
public sealed class RelayRulesTests
{
    private static readonly ConfigSnapshot Table = SnapshotOf(
        Domain("in.example", inbound: true),
        Domain("off.example", inbound: false),
        Domain("out.example", verified: true, outbound: Custom("192.0.2.10", "2001:db8::5")),
        Domain("unverified.example", verified: false, outbound: Custom("192.0.2.10")),
        Domain("disabled.example", verified: true, outbound: new OutboundSettings(false, true, true, ["192.0.2.10"])),
        Domain("nosource.example", verified: true, outbound: new OutboundSettings(true, false, false, [])),
        Domain("o365.example", verified: true, outbound: new OutboundSettings(true, true, false, [])),
        Domain("google.example", verified: true, outbound: new OutboundSettings(true, false, true, [])),
        Domain("both.example", inbound: true, verified: true, outbound: Custom("192.0.2.10")),
        Domain("sub.parent.example", inbound: true),
        Domain("xn--bcher-kva.example", inbound: true));

    private static RelayDecision Evaluate(RelayRequest r, ConfigSnapshot? snapshot = null) => RelayRules.Evaluate(r, snapshot ?? Table, Providers);

    [Theory]
    [InlineData(SmtpStage.Connect)]
    [InlineData(SmtpStage.Helo)]
    [InlineData(SmtpStage.Mail)]
    [InlineData(SmtpStage.Data)]
    [InlineData(SmtpStage.EndOfMessage)]
    [InlineData(SmtpStage.Other)]
    public void Evaluate_NotRcptStage_NotApplicable(SmtpStage stage)
    {
        var d = Evaluate(Rcpt("x@unmanaged.example", "a@in.example") with { Stage = stage });
        Assert.Equal(RelayOutcome.NotApplicable, d.Outcome);
    }

    [Theory]
    [InlineData("\"odd@local\"@in.example")]
    [InlineData("victim%evil.test@in.example")]
    [InlineData("evil.test!victim@in.example")]
    [InlineData("victim%evil.test@unmanaged.example")]
    public void Evaluate_RoutingSyntaxInRecipient_RejectedWhateverTheDomain(string recipient)
    {
        var d = Evaluate(Rcpt("x@out.example", recipient, "192.0.2.10"));
        Assert.Equal(RelayOutcome.Reject, d.Outcome);
        Assert.Equal(RelayReason.SenderRouting, d.Reason);
        Assert.Equal(new SmtpRefusal(550, "5.7.1", RelayDecision.SenderRoutingText), d.Refusal);
    }

    [Theory]
    [InlineData(EnvelopeProblem.BadSender, "5.1.7")]
    [InlineData(EnvelopeProblem.BadRecipient, "5.1.3")]
    public void Evaluate_AddressNotValid_Rejected(EnvelopeProblem problem, string status)
    {
        var d = Evaluate(Rcpt("x@unmanaged.example", "a@in.example") with { Problem = problem });
        Assert.Equal(RelayReason.BadAddress, d.Reason);
        Assert.Equal(status, d.Refusal!.Value.Status);
    }

    [Fact]
    public void Evaluate_SnapshotNotLoaded_TryLaterNeverAcceptOrReject()
    {
        var d = Evaluate(Rcpt("x@out.example", "a@in.example", "192.0.2.10"), new ConfigSnapshot());
        Assert.Equal(RelayOutcome.TryLater, d.Outcome);
        Assert.Equal(RelayReason.NotLoaded, d.Reason);
    }

    [Theory]
    [InlineData("a@in.example")]
    [InlineData("A@IN.EXAMPLE")]
    [InlineData("a@In.Example.")]
    public void Evaluate_RecipientDomainManagedInbound_AcceptInbound(string recipient)
    {
        var d = Evaluate(Rcpt("x@unmanaged.example", recipient));
        Assert.Equal(RelayOutcome.Accept, d.Outcome);
        Assert.Equal(RelayReason.Inbound, d.Reason);
        Assert.Equal(Direction.Inbound, d.Direction);
        Assert.Equal("in.example", d.Domain!.Name);
    }

    [Fact]
    public void Evaluate_NullSenderToManagedInbound_Accept()
    {
        Assert.Equal(RelayOutcome.Accept, Evaluate(Rcpt(string.Empty, "a@in.example")).Outcome);
    }

    [Fact]
    public void Evaluate_IdnRecipientDomain_MatchedByALabel()
    {
        var d = Evaluate(Rcpt("x@unmanaged.example", "a@bücher.example"));
        Assert.Equal(RelayOutcome.Accept, d.Outcome);
        Assert.Equal("xn--bcher-kva.example", d.Domain!.Name);
    }

    [Theory]
    [InlineData("a@sub.in.example")]          // subdomain of a managed domain: not covered
    [InlineData("a@parent.example")]          // parent of a managed subdomain: not covered
    [InlineData("a@example")]
    [InlineData("a@[192.0.2.1]")]
    [InlineData("no-at-sign")]
    [InlineData("")]
    public void Evaluate_RecipientNotManaged_NoDomainWithoutLogTarget(string recipient)
    {
        var d = Evaluate(Rcpt("x@unmanaged.example", recipient));
        Assert.Equal(RelayOutcome.Reject, d.Outcome);
        Assert.Equal(RelayReason.NoDomain, d.Reason);
        Assert.Same(RelayDecision.NoDomainUnmanaged, d);
    }

    [Fact]
    public void Evaluate_ManagedSubdomainItself_Accepted()
    {
        Assert.Equal(RelayOutcome.Accept, Evaluate(Rcpt("x@unmanaged.example", "a@SUB.parent.example")).Outcome);
    }

    [Fact]
    public void Evaluate_InboundDisabled_RejectExplainedToThatDomain()
    {
        var d = Evaluate(Rcpt("x@unmanaged.example", "a@off.example"));
        Assert.Equal(RelayOutcome.Reject, d.Outcome);
        Assert.Equal(RelayReason.NoDomain, d.Reason);
        Assert.Equal("off.example", d.RecipientDomain!.Name);
        Assert.Equal(RelayRules.InboundDisabled, d.InboundRefusal);
    }

    [Theory]
    [InlineData("192.0.2.10")]
    [InlineData("2001:db8::5")]
    [InlineData("2001:DB8:0:0:0:0:0:5")]
    [InlineData("::ffff:192.0.2.10")]
    public void Evaluate_OutboundFromCustomIp_AcceptOutbound(string client)
    {
        var d = Evaluate(Rcpt("Alice@OUT.example", "bob@gmail.example", client));
        Assert.Equal(RelayOutcome.Accept, d.Outcome);
        Assert.Equal(RelayReason.Outbound, d.Reason);
        Assert.Equal(Direction.Outbound, d.Direction);
        Assert.Equal("out.example", d.Domain!.Name);
    }

    [Theory]
    [InlineData("192.0.2.11")]
    [InlineData("2001:db8::6")]
    [InlineData("unknown")]
    [InlineData("")]
    public void Evaluate_OutboundFromOtherAddress_RejectExplained(string client)
    {
        var d = Evaluate(Rcpt("alice@out.example", "bob@gmail.example", client));
        Assert.Equal(RelayOutcome.Reject, d.Outcome);
        Assert.Equal(RelayReason.NoDomain, d.Reason);
        Assert.Equal("out.example", d.SenderDomain!.Name);
        Assert.NotNull(d.OutboundRefusal);
    }

    [Theory]
    [InlineData("alice@unverified.example", RelayRules.NotVerified)]
    [InlineData("alice@disabled.example", RelayRules.OutboundDisabled)]
    [InlineData("alice@nosource.example", RelayRules.NoSendingSource)]
    public void Evaluate_OutboundNotAllowed_RejectWithReason(string sender, string reason)
    {
        var d = Evaluate(Rcpt(sender, "bob@gmail.example", "192.0.2.10"));
        Assert.Equal(RelayOutcome.Reject, d.Outcome);
        Assert.Equal(reason, d.OutboundRefusal);
    }

    [Theory]
    [InlineData("alice@o365.example", "40.93.1.2", RelayOutcome.Accept)]
    [InlineData("alice@o365.example", "2a01:111:f400:1::25", RelayOutcome.Accept)]
    [InlineData("alice@o365.example", "209.85.128.5", RelayOutcome.Reject)]      // Google's range, provider not enabled
    [InlineData("alice@google.example", "209.85.200.1", RelayOutcome.Accept)]
    [InlineData("alice@google.example", "2607:f8b0:4001::1", RelayOutcome.Accept)]
    [InlineData("alice@google.example", "40.92.0.1", RelayOutcome.Reject)]
    [InlineData("alice@google.example", "40.94.0.1", RelayOutcome.Reject)]
    public void Evaluate_ProviderRanges_OnlyEnabledProvidersAllow(string sender, string client, RelayOutcome expected)
    {
        Assert.Equal(expected, Evaluate(Rcpt(sender, "bob@gmail.example", client)).Outcome);
    }

    [Fact]
    public void Evaluate_BothDirectionsPossible_InboundWins()
    {
        var d = Evaluate(Rcpt("alice@out.example", "a@in.example", "192.0.2.10"));
        Assert.Equal(RelayReason.Inbound, d.Reason);
        Assert.Equal("in.example", d.Domain!.Name);
    }

    [Fact]
    public void Evaluate_ManagedRecipientInboundOff_FallsBackToOutboundRule()
    {
        var d = Evaluate(Rcpt("alice@out.example", "a@off.example", "192.0.2.10"));
        Assert.Equal(RelayOutcome.Accept, d.Outcome);
        Assert.Equal(RelayReason.Outbound, d.Reason);
    }

    [Fact]
    public void Evaluate_InboundScope_OutboundNotGranted()
    {
        var d = Evaluate(Rcpt("alice@out.example", "bob@gmail.example", "192.0.2.10", RelayScope.Inbound));
        Assert.Equal(RelayOutcome.Reject, d.Outcome);
        Assert.Equal(RelayRules.OutboundNotOnListener, d.OutboundRefusal);
        Assert.Equal(RelayOutcome.Accept, Evaluate(Rcpt("x@unmanaged.example", "a@in.example", scope: RelayScope.Inbound)).Outcome);
    }

    [Fact]
    public void Evaluate_OutboundScope_InboundNotGranted()
    {
        var d = Evaluate(Rcpt("x@unmanaged.example", "a@in.example", scope: RelayScope.Outbound));
        Assert.Equal(RelayOutcome.Reject, d.Outcome);
        Assert.Equal(RelayRules.InboundNotOnListener, d.InboundRefusal);
        Assert.Equal(RelayOutcome.Accept, Evaluate(Rcpt("alice@out.example", "bob@gmail.example", "192.0.2.10", RelayScope.Outbound)).Outcome);
    }

    [Fact]
    public void Evaluate_UnknownScope_TryLater()
    {
        var d = Evaluate(Rcpt("x@unmanaged.example", "a@in.example", scope: RelayScope.Unknown));
        Assert.Equal(RelayOutcome.TryLater, d.Outcome);
        Assert.Equal(RelayReason.UnknownScope, d.Reason);
    }

    [Fact]
    public void Evaluate_HundredThousandDomains_SameAnswersAsTen()
    {
        var many = Enumerable.Range(0, 100_000).Select(i => Domain($"d{i}.bulk.example", inbound: i % 2 == 0)).ToList();
        many.Add(Domain("in.example", inbound: true));
        var snapshot = SnapshotOf([.. many]);

        Assert.Equal(RelayOutcome.Accept, Evaluate(Rcpt("x@u.example", "a@d99998.bulk.example"), snapshot).Outcome);
        Assert.Equal(RelayOutcome.Reject, Evaluate(Rcpt("x@u.example", "a@d99999.bulk.example"), snapshot).Outcome);
        Assert.Equal(RelayOutcome.Accept, Evaluate(Rcpt("x@u.example", "a@IN.example"), snapshot).Outcome);
        Assert.Same(RelayDecision.NoDomainUnmanaged, Evaluate(Rcpt("x@u.example", "a@d100000.bulk.example"), snapshot));
    }

    [Fact]
    public void Engine_CheckRefusesAccepted_RejectByRule_NeverConsultedForRejects()
    {
        var check = new RefuseSender("spammer@unmanaged.example");
        var engine = new RelayEngine([check]);

        var refused = engine.Evaluate(Rcpt("spammer@unmanaged.example", "a@in.example"), Table, Providers);
        var passed = engine.Evaluate(Rcpt("friend@unmanaged.example", "a@in.example"), Table, Providers);
        var rejected = engine.Evaluate(Rcpt("spammer@unmanaged.example", "a@nowhere.example"), Table, Providers);

        Assert.Equal(RelayOutcome.Reject, refused.Outcome);
        Assert.Equal(RelayReason.EnvelopeRule, refused.Reason);
        Assert.Equal("in.example", refused.Domain!.Name);
        Assert.Equal("Sender refused", refused.ReplyText);
        Assert.Equal(RelayOutcome.Accept, passed.Outcome);
        Assert.Same(RelayDecision.NoDomainUnmanaged, rejected);
        Assert.Equal(2, check.Calls);
    }

    [Fact]
    public void Engine_TemporaryRefusal_TryLater()
    {
        var engine = new RelayEngine([new RefuseSender("x@unmanaged.example", temporary: true)]);
        var d = engine.Evaluate(Rcpt("x@unmanaged.example", "a@in.example"), Table, Providers);
        Assert.Equal(RelayOutcome.TryLater, d.Outcome);
        Assert.Equal(RelayReason.EnvelopeRule, d.Reason);
    }

    [Fact]
    public void RelayLog_NoDomainWithManagedDomains_OneEventPerDomainWithReason()
    {
        var now = DateTimeOffset.UtcNow;
        var request = Rcpt("alice@unverified.example", "a@off.example", "192.0.2.10");
        var events = RelayLog.Events(request, Evaluate(request), "REJECT NO-DOMAIN", "test", includeAccepts: true, now);

        Assert.Equal(2, events.Count);
        var inbound = events.Single(e => e.Domain == "off.example");
        Assert.Equal(MessageLogEvents.PolicyReject, inbound.Event);
        Assert.Equal(Direction.Inbound, inbound.Direction);
        Assert.Equal(RelayRules.InboundDisabled, inbound.Detail);
        Assert.Equal("REJECT NO-DOMAIN", inbound.Reply);
        Assert.Equal("192.0.2.10", inbound.ClientAddress);
        var outbound = events.Single(e => e.Domain == "unverified.example");
        Assert.Equal(Direction.Outbound, outbound.Direction);
        Assert.Equal(RelayRules.NotVerified, outbound.Detail);
    }

    [Fact]
    public void RelayLog_SameDomainBothSides_OneEvent()
    {
        var snapshot = SnapshotOf(Domain("self.example", inbound: false, verified: false, outbound: Custom("192.0.2.10")));
        var request = Rcpt("a@self.example", "b@self.example", "192.0.2.10");
        var events = RelayLog.Events(request, Evaluate(request, snapshot), "REJECT NO-DOMAIN", "test", includeAccepts: true, DateTimeOffset.UtcNow);

        var e = Assert.Single(events);
        Assert.Contains(RelayRules.InboundDisabled, e.Detail, StringComparison.Ordinal);
        Assert.Contains(RelayRules.NotVerified, e.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public void RelayLog_UnmanagedNoDomain_NoEvents_AcceptsOnlyWhenAsked()
    {
        var unmanaged = Rcpt("x@u.example", "a@v.example");
        Assert.Empty(RelayLog.Events(unmanaged, Evaluate(unmanaged), "REJECT NO-DOMAIN", "test", true, DateTimeOffset.UtcNow));

        var accepted = Rcpt("x@u.example", "a@in.example");
        var decision = Evaluate(accepted);
        Assert.Empty(RelayLog.Events(accepted, decision, "OK", "test", includeAccepts: false, DateTimeOffset.UtcNow));
        var e = Assert.Single(RelayLog.Events(accepted, decision, "OK", "test", includeAccepts: true, DateTimeOffset.UtcNow));
        Assert.Equal(MessageLogEvents.PolicyAccept, e.Event);
        Assert.Equal("in.example", e.Domain);
    }

    private sealed class RefuseSender(string sender, bool temporary = false) : IEnvelopeCheck
    {
        public int Calls { get; private set; }

        public EnvelopeRefusal? Check(RelayRequest request, RelayDecision accepted)
        {
            Calls++;
            Assert.Equal(RelayOutcome.Accept, accepted.Outcome);
            return string.Equals(request.Sender, sender, StringComparison.OrdinalIgnoreCase)
                ? new EnvelopeRefusal(temporary, "Sender refused", "rule 1: sender " + sender)
                : null;
        }
    }
}

/// <summary>Recipient validation at RCPT (requirements §3.6): a recipient of an inbound domain that no row routes is refused.</summary>
[Trait("Kind", "Unit")]
public sealed class RecipientValidationTests
{
    private static readonly ConfigSnapshot Table = SnapshotOf(
        Domain("exact.example", inbound: true, servers: [new InboundServer("ann@exact.example", "192.0.2.1", 25, 10), new InboundServer("bob@exact.example", "192.0.2.2", 25, 10)]),
        Domain("all.example", inbound: true),
        Domain("both.example", inbound: true, verified: true, outbound: Custom("192.0.2.10"), servers: [new InboundServer("ann@both.example", "192.0.2.1", 25, 10)]));

    [Theory]
    // recipient, sender, client → outcome, reason
    [InlineData("ann@exact.example", "x@remote.example", "198.51.100.7", RelayOutcome.Accept, RelayReason.Inbound)]
    [InlineData("ANN@Exact.Example", "x@remote.example", "198.51.100.7", RelayOutcome.Accept, RelayReason.Inbound)]
    [InlineData("carol@exact.example", "x@remote.example", "198.51.100.7", RelayOutcome.Reject, RelayReason.UnknownRecipient)]
    [InlineData("anyone@all.example", "x@remote.example", "198.51.100.7", RelayOutcome.Accept, RelayReason.Inbound)]
    // A customer's own server sending to an unknown colleague: still refused (the gateway would only bounce it later).
    [InlineData("carol@both.example", "ann@both.example", "192.0.2.10", RelayOutcome.Reject, RelayReason.UnknownRecipient)]
    [InlineData("ann@both.example", "x@remote.example", "198.51.100.7", RelayOutcome.Accept, RelayReason.Inbound)]
    public void Evaluate_InboundRecipient_AcceptedOnlyWithARow(string recipient, string sender, string client, RelayOutcome outcome, RelayReason reason)
    {
        var d = RelayRules.Evaluate(Rcpt(sender, recipient, client), Table, Providers);
        Assert.Equal(outcome, d.Outcome);
        Assert.Equal(reason, d.Reason);
    }

    [Fact]
    public void Refusal_UnknownRecipient_WordedAsPostfix()
    {
        var d = RelayRules.Evaluate(Rcpt("x@remote.example", "carol@exact.example"), Table, Providers);
        Assert.Equal("550 5.1.1 <carol@exact.example>: Recipient address rejected: unknown recipient", d.Refusal!.Value.ForRecipient("carol@exact.example"));
        var e = Assert.Single(RelayLog.Events(Rcpt("x@remote.example", "carol@exact.example"), d, "550 5.1.1 unknown recipient", "test", false, DateTimeOffset.UnixEpoch));
        Assert.Equal("exact.example", e.Domain);
        Assert.Equal(MessageLogEvents.PolicyReject, e.Event);
    }
}

/// <summary>The optional grace period for unverified inbound relay (Gateway:UnverifiedInboundGracePeriod, off by default).</summary>
[Trait("Kind", "Unit")]
public sealed class UnverifiedInboundGraceTests
{
    private static readonly DateTimeOffset Registered = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(0, false, 1000, RelayOutcome.Accept)] // off: unverified gets inbound for as long as it is registered
    [InlineData(72, false, 71, RelayOutcome.Accept)] // within the grace period
    [InlineData(72, false, 73, RelayOutcome.Reject)] // after it: NO-DOMAIN until verified
    [InlineData(72, true, 73, RelayOutcome.Accept)] // verified: the period does not apply
    public void Evaluate_UnverifiedInbound_GracePeriod(int graceHours, bool verified, int hoursLater, RelayOutcome expected)
    {
        var domain = RelayTestData.Domain("grace.example", inbound: true, verified: verified) with { CreateTime = Registered };
        var snapshot = new ConfigSnapshot { UnverifiedInboundGrace = TimeSpan.FromHours(graceHours) };
        snapshot.Replace([domain], 1, Registered);
        var request = RelayTestData.Rcpt("someone@internet.example", "bob@grace.example") with { Time = Registered.AddHours(hoursLater) };
        var d = RelayRules.Evaluate(request, snapshot, RelayTestData.Providers);
        Assert.Equal(expected, d.Outcome);
        if (expected == RelayOutcome.Reject)
        {
            Assert.Equal(RelayReason.NoDomain, d.Reason);
            Assert.Equal(RelayRules.GraceEnded, d.InboundRefusal);
        }

        // Without a time (a front end that does not say when) no time limit applies.
        Assert.Equal(RelayOutcome.Accept, RelayRules.Evaluate(request with { Time = null }, snapshot, RelayTestData.Providers).Outcome);
    }
}
