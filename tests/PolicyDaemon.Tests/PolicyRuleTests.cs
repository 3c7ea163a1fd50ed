using Gateway.Api.V1;
using Gateway.Core.Storage;
using Gateway.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core.Interceptors;

namespace PolicyDaemon.Tests;

/// <summary>
/// Envelope policy rules at RCPT (requirements §4.4, §7): over the daemon's real policy socket and through a real
/// Postfix; rules saved through gRPC govern the answer within a second.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class PolicyRuleTests(GatewayFixture gw) : IClassFixture<GatewayFixture>
{
    private static readonly TimeSpan OneSecond = TimeSpan.FromSeconds(1);

    private PolicyRuleService.PolicyRuleServiceClient Rules => new(gw.Channel.Intercept(m =>
    {
        m.Add("authorization", "Bearer " + GatewayFixture.OperatorKey);
        m.Add("x-company-id", gw.CompanyId);
        return m;
    }));

    [Fact]
    public async Task PolicySocket_RejectRule_550WithText_WithinOneSecond_DisableAndOrder()
    {
        var domain = await gw.CreateInboundDomainAsync("rule");
        await using var wire = await PolicyWire.ConnectAsync(gw.Daemon.Policy);
        var spam = PolicyWire.Request($"u@{domain}", sender: "x@spam.example");
        await Eventually.WaitAsync(async () => await wire.AskAsync(spam) == "OK", TimeSpan.FromSeconds(5), "domain accepted");

        var rule = await Rules.CreateRuleAsync(new CreateRuleRequest
        {
            Domain = domain, Rule = new PolicyRule { Senders = { "*@spam.example" }, Action = RuleAction.Reject, RejectText = "No spam please" },
        });
        var took = await Eventually.WaitAsync(async () => await wire.AskAsync(spam) == "550 5.7.1 No spam please", OneSecond, "rule reject");
        Assert.True(took < OneSecond, took.ToString());
        Assert.Equal("OK", await wire.AskAsync(PolicyWire.Request($"u@{domain}", sender: "x@friend.example")));
        await Eventually.WaitAsync(async () => (await gw.RedisClient.GetDatabase().StreamRangeAsync(RedisKeys.DomainLog(domain)))
            .Any(e => e["event"] == "policy_reject" && ((string?)e["detail"] ?? string.Empty).Contains(rule.Id, StringComparison.Ordinal)), TimeSpan.FromSeconds(5), "rule reject logged");

        // A content rule ahead of it that might DELIVER: RCPT cannot know, so it accepts and the intake decides.
        await Rules.CreateRuleAsync(new CreateRuleRequest
        {
            Domain = domain, Position = 1, Rule = new PolicyRule { SubjectContains = "[ticket]", Action = RuleAction.Deliver },
        });
        await Eventually.WaitAsync(async () => await wire.AskAsync(spam) == "OK", OneSecond, "undecided at RCPT: accepted");

        // Disabled: no effect; QUARANTINE is accepted at RCPT (held at intake).
        await Rules.DeleteRuleAsync(new DeleteRuleRequest { Domain = domain, RuleId = (await Rules.ListRulesAsync(new ListRulesRequest { Domain = domain })).Rules[0].Id });
        await Eventually.WaitAsync(async () => await wire.AskAsync(spam) == "550 5.7.1 No spam please", OneSecond, "reject again");
        await Rules.UpdateRuleAsync(new UpdateRuleRequest
        {
            Domain = domain, Rule = new PolicyRule { Id = rule.Id, Action = RuleAction.Quarantine }, UpdateMask = FieldMask.FromString("action"),
        });
        await Eventually.WaitAsync(async () => await wire.AskAsync(spam) == "OK", OneSecond, "quarantine accepted at RCPT");
        await Rules.UpdateRuleAsync(new UpdateRuleRequest
        {
            Domain = domain, Rule = new PolicyRule { Id = rule.Id, Action = RuleAction.Reject, Disabled = true }, UpdateMask = FieldMask.FromString("action,disabled"),
        });
        await Eventually.WaitAsync(() => gw.Daemon.Snapshot.Find(domain) is { Rules: null }, OneSecond, "no enabled rules in the snapshot");
        Assert.Equal("OK", await wire.AskAsync(spam));
    }

    [Fact]
    public async Task PolicySocket_ClientCidrAndAnnouncedSize()
    {
        var domain = await gw.CreateInboundDomainAsync("rule");
        await using var wire = await PolicyWire.ConnectAsync(gw.Daemon.Policy);
        await Rules.CreateRuleAsync(new CreateRuleRequest { Domain = domain, Rule = new PolicyRule { ClientIps = { "2001:db8:bad::/48" }, Action = RuleAction.Reject } });
        await Rules.CreateRuleAsync(new CreateRuleRequest { Domain = domain, Rule = new PolicyRule { SizeAbove = 1_000_000, Action = RuleAction.Reject, RejectText = "Too large" } });
        await Eventually.WaitAsync(() => gw.Daemon.Snapshot.Find(domain)?.Rules?.Rules.Length == 2, OneSecond, "rules in the snapshot");

        Assert.Equal("550 5.7.1 " + Gateway.Core.Rules.RuleDefaults.RejectText,
            await wire.AskAsync(PolicyWire.Request($"u@{domain}", client: "2001:db8:bad:1::9")));
        Assert.Equal("OK", await wire.AskAsync(PolicyWire.Request($"u@{domain}", client: "2001:db8:beef::9")));
        var big = PolicyWire.Request($"u@{domain}").Replace("size=0\n", "size=2000000\n", StringComparison.Ordinal);
        Assert.Equal("550 5.7.1 Too large", await wire.AskAsync(big));
        var small = PolicyWire.Request($"u@{domain}").Replace("size=0\n", "size=2000\n", StringComparison.Ordinal);
        Assert.Equal("OK", await wire.AskAsync(small));
    }

    [Fact]
    public async Task Postfix_EnvelopeRejectRule_ClientGets550At5_7_1AtRcpt()
    {
        var domain = await gw.CreateInboundDomainAsync("prule");
        var recipient = $"dave@{domain}";
        await Eventually.WaitAsync(async () => (await gw.RcptAsync("x@blocked.example", recipient)).Code == 250, TimeSpan.FromSeconds(5), "domain accepted");
        await Rules.CreateRuleAsync(new CreateRuleRequest
        {
            Domain = domain, Rule = new PolicyRule { Senders = { "blocked.example" }, Action = RuleAction.Reject, RejectText = "Sender blocked by policy" },
        });

        var expected = $"550 5.7.1 <{recipient}>: Recipient address rejected: Sender blocked by policy";
        await Eventually.WaitAsync(async () => (await gw.RcptAsync("x@blocked.example", recipient)).ToString() == expected, OneSecond, "550 5.7.1 through Postfix");
        Assert.Equal(250, (await gw.RcptAsync("x@fine.example", recipient)).Code);
    }
}
