using Gateway.Api.V1;
using Gateway.Testing;
using Grpc.Core;

namespace ControlPlane.Tests;

/// <summary>
/// A live FollowLog stream checks its caller and the domain's owner every second (security review M1): over the real
/// API a revoked key ends the stream with PERMISSION_DENIED, a domain that changed owner with NOT_FOUND, and the old
/// tenant never sees the new owner's events.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class FollowLogGuardTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    [Fact]
    public async Task FollowLog_KeyRevoked_EndsWithPermissionDeniedWithinSeconds()
    {
        var (company, key, domains) = await fx.NewTenantAsync();
        var d = (await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName() } })).Name;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var call = new MessageLogService.MessageLogServiceClient(fx.WithKey(key)).FollowLog(new FollowLogRequest { Domain = d }, cancellationToken: cts.Token);
        var read = call.ResponseStream.MoveNext(cts.Token);
        await Task.Delay(1500, cts.Token); // the stream is open and polling
        Assert.False(read.IsCompleted);

        var keys = await fx.Operator.ListApiKeysAsync(new ListApiKeysRequest { CompanyId = company });
        await fx.Operator.RevokeApiKeyAsync(new RevokeApiKeyRequest { KeyId = Assert.Single(keys.ApiKeys).KeyId });
        var revoked = DateTime.UtcNow;
        var e = await Assert.ThrowsAsync<RpcException>(() => read);
        Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
        Assert.True(DateTime.UtcNow - revoked < TimeSpan.FromSeconds(5), $"ended after {DateTime.UtcNow - revoked}");
    }

    [Fact]
    public async Task FollowLog_DomainMovedToAnotherTenant_EndsWithNotFound_NoEventOfTheNewOwnerSeen()
    {
        var (_, key, domains) = await fx.NewTenantAsync("a");
        var d = (await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName() } })).Name;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var call = new MessageLogService.MessageLogServiceClient(fx.WithKey(key)).FollowLog(new FollowLogRequest { Domain = d }, cancellationToken: cts.Token);
        var read = call.ResponseStream.MoveNext(cts.Token);
        await Task.Delay(1500, cts.Token);

        // Tenant A deletes the domain and tenant B registers it and gets mail: A's stream must end, never show B's events.
        await domains.DeleteDomainAsync(new DeleteDomainRequest { Name = d, Force = true });
        var (_, _, bDomains) = await fx.NewTenantAsync("b");
        await bDomains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = d } });
        var writer = new Gateway.Core.MessageLog.MessageLogWriter(fx.RedisClient, new Gateway.Core.GatewayOptions(), TimeProvider.System);
        await writer.AppendAsync(new Gateway.Core.MessageLog.MessageLogEvent { Domain = d, Event = "intake", MessageId = "b-secret", Sender = "ceo@b.example" });

        var e = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await read)
            {
                Assert.NotEqual("b-secret", call.ResponseStream.Current.MessageId);
                read = call.ResponseStream.MoveNext(cts.Token);
            }
        });
        Assert.True(e.StatusCode == StatusCode.NotFound, $"{e.StatusCode}: {e.Status.Detail}");
    }
}
