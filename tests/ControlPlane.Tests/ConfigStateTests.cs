using Gateway.Api.V1;
using Gateway.Core.Storage;
using Gateway.Testing;
using Grpc.Core;

namespace ControlPlane.Tests;

/// <summary>
/// ConfigStateService and <c>gatewayctl config</c> (requirements §4 rule 5, §8): the operator lists the programs holding
/// their last good snapshot after suspected data loss and accepts the stored state; tenants cannot.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class ConfigStateTests
{
    [Fact]
    public async Task Cli_ConfigStatusAndAccept_ShowsHeldPrograms_AcceptsWithNewLineage()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var host = await ControlPlaneHost.StartAsync(redis.ConnectionString);
        var (_, tenantKey) = await host.NewTenantAsync("cfg");
        using var mux = await redis.ConnectAsync();
        var states = new ConfigStateStore(mux);
        await states.ReportHeldAsync("host:1:PolicyDaemon:abc", DateTimeOffset.UtcNow, "the config version went back from 7 to 0", DateTimeOffset.UtcNow);
        var env = new Dictionary<string, string> { ["GATEWAY_ENDPOINT"] = host.Address, ["GATEWAY_KEY"] = ControlPlaneHost.OperatorKey };

        var status = await GatewayCtl.RunAsync(env, ["config", "status"]);
        Assert.True(status.ExitCode == 0, status.ToString());
        Assert.Contains("host:1:PolicyDaemon:abc", status.Out, StringComparison.Ordinal);
        Assert.Contains("went back from 7 to 0", status.Out, StringComparison.Ordinal);

        var missingReason = await GatewayCtl.RunAsync(env, ["config", "accept"]);
        Assert.Equal(2, missingReason.ExitCode);

        var before = (await states.GetLineageAsync()).Epoch;
        var accept = await GatewayCtl.RunAsync(env, ["config", "accept", "--reason", "restored from backup, checked"]);
        Assert.True(accept.ExitCode == 0, accept.ToString());
        Assert.Contains("Accepted config version", accept.Out, StringComparison.Ordinal);
        var after = await states.GetLineageAsync();
        Assert.NotNull(after.Epoch);
        Assert.NotEqual(before, after.Epoch);
        var acceptance = await states.GetAcceptanceAsync();
        Assert.Equal(after.Epoch, acceptance!.Epoch);
        Assert.Equal("restored from backup, checked", acceptance.Reason);
        Assert.Empty(await states.ListHeldAsync(DateTimeOffset.UtcNow, TimeSpan.FromSeconds(30)));

        var config = new ConfigStateService.ConfigStateServiceClient(host.WithKey(ControlPlaneHost.OperatorKey));
        var blank = await Assert.ThrowsAsync<RpcException>(async () => await config.AcceptConfigStateAsync(new AcceptConfigStateRequest { Reason = " " }));
        Assert.Equal(StatusCode.InvalidArgument, blank.StatusCode);
        var asTenant = new ConfigStateService.ConfigStateServiceClient(host.WithKey(tenantKey));
        var denied = await Assert.ThrowsAsync<RpcException>(async () => await asTenant.AcceptConfigStateAsync(new AcceptConfigStateRequest { Reason = "mine" }));
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
    }
}
