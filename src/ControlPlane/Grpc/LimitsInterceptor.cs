using Gateway.Core.Storage;
using Gateway.ControlPlane.Application;
using Grpc.Core;
using Grpc.Core.Interceptors;
using StackExchange.Redis;

namespace Gateway.ControlPlane.Grpc;

/// <summary>
/// The rate limits of <see cref="TenantLimits"/> (docs/requirements.md §11): configuration changes and on-demand checks
/// per tenant and minute, counted fleet-wide in Redis (one fixed one-minute window per tenant and kind). Runs after
/// <see cref="AuthInterceptor"/>; the operator key is not limited.
/// </summary>
public sealed class LimitsInterceptor(TenantRateLimiter limiter) : Interceptor
{
    private static readonly HashSet<string> Changes = new(StringComparer.Ordinal)
    {
        "/gateway.v1.DomainService/CreateDomain", "/gateway.v1.DomainService/UpdateDomain", "/gateway.v1.DomainService/DeleteDomain",
        "/gateway.v1.PolicyRuleService/CreateRule", "/gateway.v1.PolicyRuleService/UpdateRule", "/gateway.v1.PolicyRuleService/DeleteRule",
        "/gateway.v1.PolicyRuleService/MoveRule",
    };

    private static readonly HashSet<string> Checks = new(StringComparer.Ordinal)
    {
        "/gateway.v1.DomainService/VerifyDomain", "/gateway.v1.DomainService/CheckDomain", "/gateway.v1.DomainService/TestConnection",
        "/gateway.v1.DomainService/SendTestMessage",
    };

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(continuation);
        var kind = Changes.Contains(context.Method) ? TenantRateLimiter.ChangesKind : Checks.Contains(context.Method) ? TenantRateLimiter.ChecksKind : null;
        if (kind is not null && Caller.Get(context) is { IsOperator: false, CompanyId: { } company })
        {
            await limiter.CountAsync(company, kind).ConfigureAwait(false);
        }

        return await continuation(request, context).ConfigureAwait(false);
    }
}

/// <summary>Counts a tenant's requests of one kind per minute in Redis and refuses those over the limit.</summary>
public sealed class TenantRateLimiter(IConnectionMultiplexer redis, TenantLimits limits, TimeProvider clock)
{
    public const string ChangesKind = "changes";
    public const string ChecksKind = "checks";

    // KEYS: the window's counter. ARGV: window length (ms). The counter expires with its window.
    private const string CountScript = """
        local n = redis.call('INCR', KEYS[1])
        if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
        return n
        """;

    /// <summary>Counts one request; throws RESOURCE_EXHAUSTED (naming the setting) when the tenant is over its limit this minute.</summary>
    public async Task CountAsync(string company, string kind)
    {
        var minute = clock.GetUtcNow().ToUnixTimeSeconds() / 60;
        var n = (long)await redis.GetDatabase().ScriptEvaluateAsync(CountScript, [RedisKeys.TenantRate(company, kind, minute)], [120_000])
            .ConfigureAwait(false);
        var (setting, limit) = kind == ChangesKind ? (nameof(TenantLimits.ChangesPerMinute), limits.ChangesPerMinute) : (nameof(TenantLimits.ChecksPerMinute), limits.ChecksPerMinute);
        if (n > limit)
        {
            throw TenantLimits.Exceeded(setting, limit, $"tenant '{company}' made {limit} requests of this kind ({kind}) this minute; try again in a minute");
        }
    }
}
