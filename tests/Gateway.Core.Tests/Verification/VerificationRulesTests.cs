using Gateway.Core.Domains;
using Gateway.Core.Mail;
using Gateway.Core.Relay;
using Gateway.Core.Snapshot;
using Gateway.Core.Verification;

namespace Gateway.Core.Tests.Verification;

/// <summary>The decision table of recipient verification (Postfix's reject_unverified_recipient), without I/O.</summary>
[Trait("Kind", "Unit")]
public sealed class VerificationRulesTests
{
    internal static DomainEntry Domain(bool enabled, string name = "v.example", string host = "127.0.0.5", int port = 25)
    {
        var now = DateTimeOffset.UtcNow;
        return new DomainEntry(new DomainConfig
        {
            Name = name,
            CompanyId = "c1",
            Settings = new DomainSettings(true, [new InboundServer("*@" + name, host, port, 10)], OutboundSettings.Disabled)
            {
                RecipientVerification = RecipientVerificationSettings.Off with { Enabled = enabled },
            },
            Verification = new VerificationState("t", true, VerificationMethod.Txt, now),
            CreateTime = now,
            UpdateTime = now,
        });
    }

    internal static RelayDecision Accept(DomainEntry d) => new()
    {
        Outcome = RelayOutcome.Accept, Reason = RelayReason.Inbound, Direction = Direction.Inbound, Domain = d, RecipientDomain = d,
    };

    [Theory]
    [InlineData(250, VerifyStatus.Deliverable)]
    [InlineData(251, VerifyStatus.Deliverable)]
    [InlineData(550, VerifyStatus.Undeliverable)]
    [InlineData(553, VerifyStatus.Undeliverable)]
    [InlineData(450, VerifyStatus.Unknown)]
    [InlineData(421, VerifyStatus.Unknown)]
    [InlineData(354, VerifyStatus.Unknown)]
    public void Classify_ReplyCodeToRcpt_Status(int code, VerifyStatus expected) => Assert.Equal(expected, VerificationRules.Classify(code));

    [Fact]
    public void Apply_Deliverable_AcceptUnchanged()
    {
        var accept = Accept(Domain(true));
        Assert.Same(accept, VerificationRules.Apply(accept, new VerifyResult(VerifyStatus.Deliverable, "250 2.1.5 Ok")));
    }

    [Fact]
    public void Apply_Undeliverable_550With511AndRemoteReply()
    {
        var d = VerificationRules.Apply(Accept(Domain(true)), new VerifyResult(VerifyStatus.Undeliverable, "550 5.1.1 <bob@v.example>: User unknown", "h[127.0.0.5]:25"));
        Assert.Equal(RelayOutcome.Reject, d.Outcome);
        Assert.Equal(RelayReason.UnverifiedRecipient, d.Reason);
        Assert.Equal("550 5.1.1 <bob@v.example>: Recipient address rejected: undeliverable address: 550 5.1.1 <bob@v.example>: User unknown",
            d.Refusal!.Value.ForRecipient("bob@v.example"));
        Assert.Contains("h[127.0.0.5]:25", d.LogDetail, StringComparison.Ordinal);
    }

    [Fact]
    public void Apply_Unknown_450With411_NeverPermanent()
    {
        var d = VerificationRules.Apply(Accept(Domain(true)), new VerifyResult(VerifyStatus.Unknown, "h: connect timed out"));
        Assert.Equal(RelayOutcome.TryLater, d.Outcome);
        Assert.Equal("450 4.1.1 <x@v.example>: Recipient address rejected: unverified address: h: connect timed out", d.Refusal!.Value.ForRecipient("x@v.example"));
        Assert.False(d.Refusal.Value.IsPermanent);
    }

    [Fact]
    public void Applies_OnlyInboundAcceptsAtDomainsThatTurnedItOn()
    {
        Assert.True(VerificationRules.Applies(Accept(Domain(true))));
        Assert.False(VerificationRules.Applies(Accept(Domain(false))));
        Assert.False(VerificationRules.Applies(Accept(Domain(true)) with { Direction = Direction.Outbound, Reason = RelayReason.Outbound }));
        Assert.False(VerificationRules.Applies(Accept(Domain(true)) with { Outcome = RelayOutcome.Reject, Reason = RelayReason.UnknownRecipient }));
        Assert.False(VerificationRules.Applies(RelayDecision.NotLoaded));
    }

    [Fact]
    public void Settings_OffByDefault_DomainsStoredBeforeItExisted()
    {
        Assert.False(DomainSettings.Empty.RecipientVerification.Enabled);
        // A record as stored before the setting existed: no recipient_verification member.
        var stored = Storage.StoreJson.Serialize(Domain(true).Config);
        var node = System.Text.Json.Nodes.JsonNode.Parse(stored)!;
        Assert.NotNull(node["settings"]!["recipient_verification"]);
        node["settings"]!.AsObject().Remove("recipient_verification");
        var read = Storage.StoreJson.DeserializeDomain(node.ToJsonString(), 1).Settings;
        Assert.False(read.RecipientVerification.Enabled);
        Assert.Equal(TimeSpan.FromDays(7), read.RecipientVerification.EffectivePositiveTtl);
        Assert.Equal(TimeSpan.FromHours(3), read.RecipientVerification.EffectiveNegativeTtl);
        // And a stored "on" survives the round trip.
        Assert.True(Storage.StoreJson.DeserializeDomain(stored, 1).Settings.RecipientVerification.Enabled);
    }

    [Fact]
    public void Lifetime_PositiveNegativeTempfail()
    {
        var o = new VerificationOptions();
        var s = new RecipientVerificationSettings(true, TimeSpan.Zero, TimeSpan.FromMinutes(30));
        Assert.Equal(TimeSpan.FromDays(7), VerificationRules.Lifetime(VerifyStatus.Deliverable, s, o));
        Assert.Equal(TimeSpan.FromMinutes(30), VerificationRules.Lifetime(VerifyStatus.Undeliverable, s, o));
        Assert.Equal(TimeSpan.FromMinutes(1), VerificationRules.Lifetime(VerifyStatus.Unknown, s, o));
    }

    [Fact]
    public void NeedsRefresh_DeliverableOlderThanRefresh_True_YoungerNegativeOrOff_False()
    {
        var now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        var week = TimeSpan.FromDays(7);
        var refresh = TimeSpan.FromHours(12);
        VerifyResult Cached(VerifyStatus status, TimeSpan age) => new(status, "250 ok") { Expires = now - age + week };
        Assert.True(VerificationRules.NeedsRefresh(Cached(VerifyStatus.Deliverable, TimeSpan.FromHours(12)), week, refresh, now));
        Assert.True(VerificationRules.NeedsRefresh(Cached(VerifyStatus.Deliverable, TimeSpan.FromDays(6)), week, refresh, now));
        Assert.False(VerificationRules.NeedsRefresh(Cached(VerifyStatus.Deliverable, TimeSpan.FromHours(11)), week, refresh, now));
        Assert.False(VerificationRules.NeedsRefresh(Cached(VerifyStatus.Undeliverable, TimeSpan.FromDays(1)), week, refresh, now));
        Assert.False(VerificationRules.NeedsRefresh(Cached(VerifyStatus.Deliverable, TimeSpan.FromDays(1)), week, TimeSpan.Zero, now));
        Assert.False(VerificationRules.NeedsRefresh(Cached(VerifyStatus.Deliverable, TimeSpan.FromHours(13)), TimeSpan.FromHours(12), refresh, now));
        Assert.False(VerificationRules.NeedsRefresh(new VerifyResult(VerifyStatus.Deliverable, "250 ok"), week, refresh, now));
    }

    [Fact]
    public void FormatParse_RoundTrip_ExpiredIsNothing()
    {
        var now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        var r = new VerifyResult(VerifyStatus.Undeliverable, "550 5.1.1 no|such user", "mx[127.0.0.5]:25");
        var text = VerificationRules.Format(r, now.AddHours(3));
        Assert.Equal(r with { Expires = now.AddHours(3) }, VerificationRules.Parse(text, now));
        Assert.Null(VerificationRules.Parse(text, now.AddHours(3)));
        Assert.Null(VerificationRules.Parse("X|1|h|r", now));
        Assert.Null(VerificationRules.Parse("garbage", now));
        Assert.Null(VerificationRules.Parse(null, now));
    }

    [Fact]
    public void Clean_LongOrMultiLineReply_OneLineCut()
    {
        var cleaned = VerificationRules.Clean("550-5.1.1 first\n550 5.1.1 " + new string('x', 500));
        Assert.DoesNotContain('\n', cleaned);
        Assert.Equal(VerificationRules.MaxReplyLength, cleaned.Length);
        Assert.EndsWith("...", cleaned, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("250 ok", 250, true)]
    [InlineData("250-PIPELINING", 250, false)]
    [InlineData("550", 550, true)]
    public void SmtpReplyLine_Valid(string line, int code, bool last)
    {
        Assert.True(SmtpReplyLine.TryParse(line, out var c, out var l));
        Assert.Equal(code, c);
        Assert.Equal(last, l);
    }

    [Theory]
    [InlineData("")]
    [InlineData("25")]
    [InlineData("abc def")]
    [InlineData("250x")]
    [InlineData("650 no")]
    [InlineData("HTTP/1.1 200 OK")]
    public void SmtpReplyLine_NotAReply_False(string line) => Assert.False(SmtpReplyLine.TryParse(line, out _, out _));
}
