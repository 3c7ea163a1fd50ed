using Gateway.Api.V1;
using Gateway.Core.Storage;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace ControlPlane.Tests;

/// <summary>gateway.v1.PolicyRuleService over real gRPC and Redis: CRUD, order, validation, tenant isolation, etags, change feed.</summary>
[Trait("Kind", "Integration")]
public sealed class PolicyRuleServiceTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    private async Task<(string Domain, PolicyRuleService.PolicyRuleServiceClient Rules, string Key)> DomainAsync()
    {
        var (_, key, domains) = await fx.NewTenantAsync("r");
        var name = ControlPlaneFixture.NewDomainName("r");
        await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        return (name, new PolicyRuleService.PolicyRuleServiceClient(fx.WithKey(key)), key);
    }

    private static PolicyRule Reject(string sender, string text = "") => new() { Senders = { sender }, Action = RuleAction.Reject, RejectText = text };

    [Fact]
    public async Task CreateRule_AppendAndInsert_ListInOrderWithPositions()
    {
        var (d, rules, _) = await DomainAsync();
        var a = await rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = Reject("a@x.org", "Go away") });
        var b = await rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = new PolicyRule { AttachmentNames = { "*.EXE" }, Action = RuleAction.Quarantine } });
        var c = await rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = new PolicyRule { ClientIps = { "2001:db8::/32" }, Action = RuleAction.Deliver }, Position = 1 });

        Assert.Equal(1, a.Position);
        Assert.Equal(1, c.Position);
        Assert.Equal("1", a.Etag);
        Assert.False(a.Disabled);
        Assert.False(a.ContentRule);
        Assert.True(b.ContentRule);
        Assert.Equal(["*.exe"], b.AttachmentNames);
        Assert.Equal("Go away", a.RejectText);
        Assert.NotEqual(a.Id, b.Id);

        var list = await rules.ListRulesAsync(new ListRulesRequest { Domain = d });
        Assert.Equal([c.Id, a.Id, b.Id], list.Rules.Select(r => r.Id));
        Assert.Equal([1, 2, 3], list.Rules.Select(r => r.Position));
        Assert.Empty(list.NextPageToken);

        var page1 = await rules.ListRulesAsync(new ListRulesRequest { Domain = d, PageSize = 2 });
        var page2 = await rules.ListRulesAsync(new ListRulesRequest { Domain = d, PageSize = 2, PageToken = page1.NextPageToken });
        Assert.Equal([c.Id, a.Id, b.Id], page1.Rules.Concat(page2.Rules).Select(r => r.Id));
        Assert.Empty(page2.NextPageToken);

        var got = await rules.GetRuleAsync(new GetRuleRequest { Domain = d.ToUpperInvariant(), RuleId = a.Id });
        Assert.Equal(2, got.Position);
        Assert.Equal(["a@x.org"], got.Senders);
    }

    [Fact]
    public async Task MoveRule_ReordersAndDeleteRule_Removes()
    {
        var (d, rules, _) = await DomainAsync();
        var ids = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            ids.Add((await rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = Reject($"s{i}@x.org") })).Id);
        }

        var moved = await rules.MoveRuleAsync(new MoveRuleRequest { Domain = d, RuleId = ids[3], Position = 1 });
        Assert.Equal(1, moved.Position);
        var last = await rules.MoveRuleAsync(new MoveRuleRequest { Domain = d, RuleId = ids[1], Position = 99 });
        Assert.Equal(4, last.Position);
        Assert.Equal([ids[3], ids[0], ids[2], ids[1]], (await rules.ListRulesAsync(new ListRulesRequest { Domain = d })).Rules.Select(r => r.Id));

        var deleted = await rules.DeleteRuleAsync(new DeleteRuleRequest { Domain = d, RuleId = ids[0] });
        Assert.Equal(ids[0], deleted.Rule.Id);
        Assert.Equal([ids[3], ids[2], ids[1]], (await rules.ListRulesAsync(new ListRulesRequest { Domain = d })).Rules.Select(r => r.Id));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, rules.GetRuleAsync(new GetRuleRequest { Domain = d, RuleId = ids[0] }));
        await RpcAssert.InvalidFieldAsync("position", rules.MoveRuleAsync(new MoveRuleRequest { Domain = d, RuleId = ids[1], Position = 0 }));
    }

    [Fact]
    public async Task UpdateRule_MaskedFields_EtagBumped_StaleEtagAborted()
    {
        var (d, rules, _) = await DomainAsync();
        var rule = await rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = Reject("a@x.org", "No") });

        var patch = new PolicyRule { Id = rule.Id, Etag = rule.Etag, SubjectContains = "lottery", Senders = { "ignored@x.org" }, Disabled = true };
        var updated = await rules.UpdateRuleAsync(new UpdateRuleRequest { Domain = d, Rule = patch, UpdateMask = FieldMask.FromString("subject_contains,disabled") });
        Assert.Equal("lottery", updated.SubjectContains);
        Assert.True(updated.Disabled);
        Assert.Equal(["a@x.org"], updated.Senders);
        Assert.Equal("No", updated.RejectText);
        Assert.Equal("2", updated.Etag);
        Assert.True(updated.ContentRule);

        await RpcAssert.ThrowsAsync(StatusCode.Aborted, rules.UpdateRuleAsync(new UpdateRuleRequest
        {
            Domain = d, Rule = new PolicyRule { Id = rule.Id, Etag = rule.Etag, Description = "stale" }, UpdateMask = FieldMask.FromString("description"),
        }));
        await RpcAssert.ThrowsAsync(StatusCode.Aborted, rules.DeleteRuleAsync(new DeleteRuleRequest { Domain = d, RuleId = rule.Id, Etag = rule.Etag }));
        await RpcAssert.InvalidFieldAsync("update_mask", rules.UpdateRuleAsync(new UpdateRuleRequest
        {
            Domain = d, Rule = new PolicyRule { Id = rule.Id }, UpdateMask = FieldMask.FromString("position"),
        }));

        // Changing the action away from REJECT drops the text; the whole rule with an empty mask replaces everything.
        var quarantine = await rules.UpdateRuleAsync(new UpdateRuleRequest
        {
            Domain = d, Rule = new PolicyRule { Id = rule.Id, Action = RuleAction.Quarantine }, UpdateMask = FieldMask.FromString("action"),
        });
        Assert.Equal(RuleAction.Quarantine, quarantine.Action);
        Assert.Empty(quarantine.RejectText);
        var replaced = await rules.UpdateRuleAsync(new UpdateRuleRequest { Domain = d, Rule = new PolicyRule { Id = rule.Id, Recipients = { "*@" + d }, Action = RuleAction.Deliver } });
        Assert.Empty(replaced.Senders);
        Assert.Empty(replaced.SubjectContains);
        Assert.False(replaced.Disabled);
        Assert.Equal(["*@" + d], replaced.Recipients);
    }

    [Fact]
    public async Task CreateRule_InvalidInput_FieldViolations()
    {
        var (d, rules, _) = await DomainAsync();
        await RpcAssert.InvalidFieldAsync("rule", rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = new PolicyRule { Action = RuleAction.Reject } }));
        await RpcAssert.InvalidFieldAsync("rule.action", rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = new PolicyRule { Senders = { "*" } } }));
        await RpcAssert.InvalidFieldAsync("rule.client_ips[0]", rules.CreateRuleAsync(new CreateRuleRequest
        {
            Domain = d, Rule = new PolicyRule { ClientIps = { "192.0.2.0/40" }, Action = RuleAction.Reject },
        }));
        await RpcAssert.InvalidFieldAsync("rule.reject_text", rules.CreateRuleAsync(new CreateRuleRequest
        {
            Domain = d, Rule = Reject("*@x.org", "two\r\nlines"),
        }));
        await RpcAssert.InvalidFieldAsync("rule.senders[0]", rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = Reject("a@@x.org") }));
        await RpcAssert.InvalidFieldAsync("position", rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = Reject("a@x.org"), Position = -1 }));
        await RpcAssert.InvalidFieldAsync("rule_id", rules.GetRuleAsync(new GetRuleRequest { Domain = d }));
        await RpcAssert.InvalidFieldAsync("name", rules.ListRulesAsync(new ListRulesRequest { Domain = "not a domain" }));
        Assert.Empty((await rules.ListRulesAsync(new ListRulesRequest { Domain = d })).Rules);
    }

    [Fact]
    public async Task CreateRule_MoreThanCap_Refused()
    {
        var (d, rules, _) = await DomainAsync();
        // Fill the list directly (one write), then the API refuses the 1001st.
        var list = Enumerable.Range(0, new Gateway.ControlPlane.Application.TenantLimits().RulesPerDomain)
            .Select(i => new Gateway.Core.Rules.PolicyRule { Id = $"r{i:x12}", Senders = [$"s{i}@x.org"], Action = Gateway.Core.Rules.RuleAction.Reject })
            .ToList();
        var company = (string)(await fx.RedisClient.GetDatabase().HashGetAsync(RedisKeys.Domain(d), "company"))!;
        var store = new Gateway.Core.Rules.RuleStore(fx.RedisClient, new ConfigChangeFeed(fx.RedisClient, new Gateway.Core.GatewayOptions()));
        Assert.Equal(Gateway.Core.Rules.SaveRulesOutcome.Done, (await store.SaveAsync(company, d, 0, list)).Outcome);

        var v = await RpcAssert.LimitAsync("Gateway:Limits:RulesPerDomain", rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = Reject("one-more@x.org") }));
        Assert.Contains("1000", v.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(1000, (await rules.ListRulesAsync(new ListRulesRequest { Domain = d, PageSize = 1000 })).Rules.Count);
    }

    [Fact]
    public async Task Rules_OtherTenantsDomain_NotFound_OperatorActsWithCompanyHeader()
    {
        var (d, rules, _) = await DomainAsync();
        var rule = await rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = Reject("a@x.org") });
        var (otherCompany, otherKey, _) = await fx.NewTenantAsync("o");
        var other = new PolicyRuleService.PolicyRuleServiceClient(fx.WithKey(otherKey));

        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.ListRulesAsync(new ListRulesRequest { Domain = d }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.GetRuleAsync(new GetRuleRequest { Domain = d, RuleId = rule.Id }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = Reject("b@x.org") }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.DeleteRuleAsync(new DeleteRuleRequest { Domain = d, RuleId = rule.Id }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.UpdateRuleAsync(new UpdateRuleRequest { Domain = d, Rule = new PolicyRule { Id = rule.Id, Description = "x" } }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.MoveRuleAsync(new MoveRuleRequest { Domain = d, RuleId = rule.Id, Position = 1 }));
        await RpcAssert.ThrowsAsync(StatusCode.Unauthenticated, new PolicyRuleService.PolicyRuleServiceClient(fx.WithKey(null)).ListRulesAsync(new ListRulesRequest { Domain = d }));
        await RpcAssert.ThrowsAsync(StatusCode.PermissionDenied,
            new PolicyRuleService.PolicyRuleServiceClient(fx.WithKey(ControlPlaneFixture.OperatorKey)).ListRulesAsync(new ListRulesRequest { Domain = d }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound,
            new PolicyRuleService.PolicyRuleServiceClient(fx.WithKey(ControlPlaneFixture.OperatorKey, otherCompany)).ListRulesAsync(new ListRulesRequest { Domain = d }));

        Assert.Equal([rule.Id], (await rules.ListRulesAsync(new ListRulesRequest { Domain = d })).Rules.Select(r => r.Id));
    }

    [Fact]
    public async Task CreateRule_AnnouncedOnChangeFeed_StoredUnderDomainTag()
    {
        var (d, rules, _) = await DomainAsync();
        var db = fx.RedisClient.GetDatabase();
        var before = (long)await db.StringGetAsync(RedisKeys.ConfigVersion);
        await rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = Reject("a@x.org") });

        var after = (long)await db.StringGetAsync(RedisKeys.ConfigVersion);
        Assert.True(after > before);
        var entries = await db.StreamRangeAsync(RedisKeys.ConfigChanges, $"{before + 1}-0", "+");
        Assert.Contains(entries, e => e["d"] == d && e["op"] == "rules");
        Assert.Equal($"gw:{{d:{d}}}:rules", RedisKeys.DomainRules(d).ToString());
        Assert.Equal("1", (string?)await db.HashGetAsync(RedisKeys.DomainRules(d), "rev"));
    }
}
