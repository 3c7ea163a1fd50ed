using Gateway.ControlPlane.Application;
using Grpc.Core;

namespace Gateway.ControlPlane.Grpc;

/// <summary>The authenticated caller of an RPC, put into <see cref="ServerCallContext.UserState"/> by <see cref="AuthInterceptor"/>.</summary>
public static class Caller
{
    /// <summary>Metadata entry by which the operator key acts for one tenant on tenant-scoped services.</summary>
    public const string CompanyIdHeader = "x-company-id";

    private static readonly object Key = new();

    internal static void Set(ServerCallContext context, Principal principal) => context.UserState[Key] = principal;

    public static Principal Get(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.UserState.TryGetValue(Key, out var p) && p is Principal principal
            ? principal
            : throw new RpcException(new Status(StatusCode.Unauthenticated, "Missing or invalid API key."));
    }

    /// <summary>Operator-only services.</summary>
    public static void RequireOperator(ServerCallContext context)
    {
        if (!Get(context).IsOperator)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, "This RPC needs the operator key."));
        }
    }

    /// <summary>
    /// The tenant a tenant-scoped RPC acts for: the key's tenant, or for the operator key the tenant
    /// named by the <c>x-company-id</c> metadata entry.
    /// </summary>
    public static string TenantOf(ServerCallContext context)
    {
        var principal = Get(context);
        if (!principal.IsOperator)
        {
            return principal.CompanyId!;
        }

        var named = context.RequestHeaders.GetValue(CompanyIdHeader);
        if (string.IsNullOrWhiteSpace(named))
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied,
                $"The operator key acts on a tenant's objects only with the '{CompanyIdHeader}' metadata entry naming the tenant; or use the tenant's API key."));
        }

        return TenantManager.NormalizeCompanyId(named);
    }
}
