using Gateway.Api.V1;
using Gateway.Testing;
using Grpc.Core;

namespace ControlPlane.Tests;

/// <summary>
/// Per-tenant limits over the real API (docs/reliability.md "Hostile tenant"): a ControlPlane on Kestrel with
/// deliberately small limits and a real redis-server; each limit answers RESOURCE_EXHAUSTED naming its setting.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class TenantLimitsTests : IAsyncLifetime
{
    private RedisServer _redis = null!;
    private ControlPlaneHost _host = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _host = await ControlPlaneHost.StartAsync(_redis.ConnectionString,
            "--Gateway:Limits:DomainsPerTenant", "2",
            "--Gateway:Limits:RulesPerDomain", "3",
            "--Gateway:Limits:RuleBytesPerDomain", "1024",
            "--Gateway:Limits:FollowStreamsPerTenant", "1",
            "--Gateway:Limits:ChangesPerMinute", "12",
            "--Gateway:Limits:ChecksPerMinute", "2");
    }

    public async Task DisposeAsync()
    {
        await _host.DisposeAsync();
        await _redis.DisposeAsync();
    }

    [Fact]
    public async Task CreateDomain_OverDomainsPerTenant_ResourceExhaustedNamingTheLimit_OtherTenantsUnaffected()
    {
        var (_, key) = await _host.NewTenantAsync();
        var domains = new DomainService.DomainServiceClient(_host.WithKey(key));
        await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName() } });
        var second = await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName() } });
        await RpcAssert.LimitAsync("Gateway:Limits:DomainsPerTenant",
            domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName() } }));
        Assert.Equal(2, (await domains.ListDomainsAsync(new ListDomainsRequest())).Domains.Count);

        // Deleting one makes room again; another tenant never noticed.
        await domains.DeleteDomainAsync(new DeleteDomainRequest { Name = second.Name });
        await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName() } });
        var (_, otherKey) = await _host.NewTenantAsync();
        await new DomainService.DomainServiceClient(_host.WithKey(otherKey)).CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName() } });
    }

    [Fact]
    public async Task CreateRule_OverRulesPerDomainOrRuleBytes_ResourceExhausted_ShrinkingStillAllowed()
    {
        var (_, key) = await _host.NewTenantAsync();
        var d = (await new DomainService.DomainServiceClient(_host.WithKey(key)).CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName() } })).Name;
        var rules = new PolicyRuleService.PolicyRuleServiceClient(_host.WithKey(key));
        var big = new PolicyRule { Action = RuleAction.Reject, Senders = { Enumerable.Range(0, 4).Select(i => new string('a', 200) + i + "@x.org") } };
        var first = await rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = big }); // ~810 characters
        await RpcAssert.LimitAsync("Gateway:Limits:RuleBytesPerDomain", rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = big }));

        await rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = new PolicyRule { Action = RuleAction.Reject, Senders = { "b@x.org" } } });
        await rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = new PolicyRule { Action = RuleAction.Reject, Senders = { "c@x.org" } } });
        await RpcAssert.LimitAsync("Gateway:Limits:RulesPerDomain",
            rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = new PolicyRule { Action = RuleAction.Reject, Senders = { "d@x.org" } } }));
        await rules.DeleteRuleAsync(new DeleteRuleRequest { Domain = d, RuleId = first.Id });
        Assert.Equal(2, (await rules.ListRulesAsync(new ListRulesRequest { Domain = d })).Rules.Count);
    }

    [Fact]
    public async Task Changes_OverChangesPerMinute_ResourceExhausted_OperatorNotLimited()
    {
        var (company, key) = await _host.NewTenantAsync();
        var domains = new DomainService.DomainServiceClient(_host.WithKey(key));
        var d = (await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName() } })).Name;
        var rules = new PolicyRuleService.PolicyRuleServiceClient(_host.WithKey(key));
        RpcException? refused = null;
        for (var i = 0; i < 20 && refused is null; i++)
        {
            try
            {
                var r = await rules.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = new PolicyRule { Action = RuleAction.Reject, Senders = { $"s{i}@x.org" } } });
                await rules.DeleteRuleAsync(new DeleteRuleRequest { Domain = d, RuleId = r.Id });
            }
            catch (RpcException e)
            {
                refused = e;
            }
        }

        Assert.NotNull(refused);
        Assert.Equal(StatusCode.ResourceExhausted, refused!.StatusCode);
        Assert.Contains("Gateway:Limits:ChangesPerMinute", refused.Status.Detail, StringComparison.Ordinal);

        // The operator acting for the tenant is the administrator: not rate limited.
        var op = new PolicyRuleService.PolicyRuleServiceClient(_host.WithKey(ControlPlaneHost.OperatorKey, company));
        var added = await op.CreateRuleAsync(new CreateRuleRequest { Domain = d, Rule = new PolicyRule { Action = RuleAction.Reject, Senders = { "op@x.org" } } });
        await op.DeleteRuleAsync(new DeleteRuleRequest { Domain = d, RuleId = added.Id });
    }

    [Fact]
    public async Task TestConnection_OverChecksPerMinute_ResourceExhausted()
    {
        var (_, key) = await _host.NewTenantAsync();
        var domains = new DomainService.DomainServiceClient(_host.WithKey(key));
        var d = (await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName() } })).Name;
        var request = new TestConnectionRequest { Name = d, InboundServers = { new InboundServer { Recipient = "*@" + d, Host = "127.0.0.1", Port = FreePort.Get() } } };
        await domains.TestConnectionAsync(request);
        await domains.TestConnectionAsync(request);
        await RpcAssert.LimitAsync("Gateway:Limits:ChecksPerMinute", domains.TestConnectionAsync(request));
    }

    [Fact]
    public async Task FollowLog_SecondStream_ResourceExhausted_FreedWhenTheFirstEnds()
    {
        var (_, key) = await _host.NewTenantAsync();
        var d = (await new DomainService.DomainServiceClient(_host.WithKey(key)).CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName() } })).Name;
        var log = new MessageLogService.MessageLogServiceClient(_host.WithKey(key));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        using var firstCts = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        var first = log.FollowLog(new FollowLogRequest { Domain = d }, cancellationToken: firstCts.Token);
        await first.ResponseHeadersAsync; // established and counted on the server before the second starts
        var firstRead = first.ResponseStream.MoveNext(firstCts.Token);

        // The first stream is open once the server counts it: a second is refused.
        RpcException? refused = null;
        await Eventually.WaitAsync(async () =>
        {
            try
            {
                using var second = log.FollowLog(new FollowLogRequest { Domain = d }, cancellationToken: cts.Token);
                using var quick = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
                quick.CancelAfter(TimeSpan.FromSeconds(5));
                await second.ResponseStream.MoveNext(quick.Token);
                return false;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted)
            {
                refused = e;
                return true;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(40), "a second FollowLog stream is refused");
        Assert.Contains("Gateway:Limits:FollowStreamsPerTenant", refused!.Status.Detail, StringComparison.Ordinal);

        await firstCts.CancelAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => firstRead);
        first.Dispose();
        await Eventually.WaitAsync(async () =>
        {
            using var again = log.FollowLog(new FollowLogRequest { Domain = d, StartTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-1)) }, cancellationToken: cts.Token);
            using var quick = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
            quick.CancelAfter(TimeSpan.FromSeconds(5));
            try
            {
                await again.ResponseStream.MoveNext(quick.Token);
                return true;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
            {
                return true; // open and waiting for events: not refused
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(40), "a stream is allowed again once the first ended");
    }

    [Fact]
    public async Task FollowLog_StreamOnOneControlPlane_CountsOnAnother_ADeadControlPlanesPlaceExpires()
    {
        var (company, key) = await _host.NewTenantAsync();
        var d = (await new DomainService.DomainServiceClient(_host.WithKey(key)).CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName() } })).Name;
        await using var other = await ControlPlaneHost.StartAsync(_redis.ConnectionString, "--Gateway:Limits:FollowStreamsPerTenant", "1");
        var here = new MessageLogService.MessageLogServiceClient(_host.WithKey(key));
        var there = new MessageLogService.MessageLogServiceClient(other.WithKey(key));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));

        // One stream on the first ControlPlane: the second refuses the tenant's next one (the limit is fleet-wide).
        using (var firstCts = CancellationTokenSource.CreateLinkedTokenSource(cts.Token))
        {
            var first = here.FollowLog(new FollowLogRequest { Domain = d }, cancellationToken: firstCts.Token);
            await first.ResponseHeadersAsync;
            var refused = await Assert.ThrowsAsync<RpcException>(() => FollowBrieflyAsync(there, d, cts.Token));
            Assert.Equal(StatusCode.ResourceExhausted, refused.StatusCode);
            Assert.Contains("Gateway:Limits:FollowStreamsPerTenant", refused.Status.Detail, StringComparison.Ordinal);
            await firstCts.CancelAsync();
            first.Dispose();
        }

        await Eventually.WaitAsync(async () => await FollowBrieflyAsync(there, d, cts.Token), TimeSpan.FromSeconds(30), "the place is free once the stream ended");

        // A ControlPlane that died with a stream open renews its place no more: it counts until its lease runs out.
        using var redis = await _redis.ConnectAsync();
        var db = redis.GetDatabase();
        var time = (StackExchange.Redis.RedisResult[])(await db.ExecuteAsync("TIME"))!;
        var nowMs = (long)time[0] * 1000 + (long)time[1] / 1000;
        await db.SortedSetAddAsync(Gateway.Core.Storage.RedisKeys.TenantFollows(company), "stream-of-a-dead-controlplane", nowMs + 3000);
        var blocked = await Assert.ThrowsAsync<RpcException>(() => FollowBrieflyAsync(there, d, cts.Token));
        Assert.Equal(StatusCode.ResourceExhausted, blocked.StatusCode);
        await Eventually.WaitAsync(async () =>
        {
            try
            {
                return await FollowBrieflyAsync(there, d, cts.Token);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), "the dead ControlPlane's place expired");
    }

    /// <summary>Opens a stream and waits a moment: true when it was open and waiting (not refused); throws what refused it.</summary>
    private static async Task<bool> FollowBrieflyAsync(MessageLogService.MessageLogServiceClient client, string domain, CancellationToken token)
    {
        using var quick = CancellationTokenSource.CreateLinkedTokenSource(token);
        using var call = client.FollowLog(new FollowLogRequest { Domain = domain }, cancellationToken: quick.Token);
        quick.CancelAfter(TimeSpan.FromSeconds(2));
        try
        {
            await call.ResponseStream.MoveNext(quick.Token);
            return true;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
        {
            return true;
        }
    }
}
