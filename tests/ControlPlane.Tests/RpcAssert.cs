using Google.Rpc;
using Grpc.Core;

namespace ControlPlane.Tests;

internal static class RpcAssert
{
    public static async Task<RpcException> ThrowsAsync(StatusCode code, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(code == e.StatusCode, $"expected {code}, got {e.StatusCode}: {e.Status.Detail}");
        return e;
    }

    public static Task<RpcException> ThrowsAsync<T>(StatusCode code, AsyncUnaryCall<T> call) => ThrowsAsync(code, async () => await call);

    /// <summary>RESOURCE_EXHAUSTED carrying a google.rpc.QuotaFailure that names <paramref name="setting"/> (e.g. <c>Gateway:Limits:DomainsPerTenant</c>).</summary>
    public static async Task<RpcException> LimitAsync(string setting, Func<Task> call)
    {
        var e = await ThrowsAsync(StatusCode.ResourceExhausted, call);
        Assert.Contains(setting, e.Status.Detail, StringComparison.Ordinal);
        var quota = e.GetRpcStatus()?.GetDetail<QuotaFailure>();
        Assert.NotNull(quota);
        Assert.Contains(quota!.Violations, v => v.Subject == setting);
        return e;
    }

    public static Task<RpcException> LimitAsync<T>(string setting, AsyncUnaryCall<T> call) => LimitAsync(setting, async () => await call);

    /// <summary>INVALID_ARGUMENT carrying a google.rpc.BadRequest with a violation of <paramref name="field"/>.</summary>
    public static async Task<BadRequest.Types.FieldViolation> InvalidFieldAsync<T>(string field, AsyncUnaryCall<T> call)
    {
        var e = await ThrowsAsync(StatusCode.InvalidArgument, async () => await call);
        var status = e.GetRpcStatus();
        Assert.NotNull(status);
        var bad = status!.GetDetail<BadRequest>();
        Assert.NotNull(bad);
        var violation = bad!.FieldViolations.FirstOrDefault(v => v.Field == field);
        Assert.True(violation is not null,
            $"no violation for {field}; got: {string.Join("; ", bad.FieldViolations.Select(v => v.Field + ": " + v.Description))}");
        return violation!;
    }
}
