using Gateway.ControlPlane.Grpc;
using Gateway.Core.Domains;
using Gateway.Core.Storage;
using Gateway.ControlPlane.Application;
using Grpc.Core;

namespace Gateway.ControlPlane.Services;

/// <summary>
/// Keeps a live FollowLog stream honest (docs/requirements.md §11, security review M1): at most
/// <see cref="TenantLimits.FollowStreamsPerTenant"/> streams per tenant across the fleet (<see cref="FollowSlots"/>), and every
/// <see cref="TenantLimits.FollowRecheckInterval"/> (1 s) the caller's key is authenticated again and the domain must
/// still belong to the tenant. A revoked key (or a deleted tenant, whose keys go with it) ends the stream with
/// PERMISSION_DENIED, a domain that was deleted or changed owner with NOT_FOUND, within one interval.
/// </summary>
public sealed partial class FollowGuard(TenantManager tenants, DomainStore domains, FollowSlots slots, TenantLimits limits, TimeProvider clock, ILogger<FollowGuard> logger)
{

    /// <summary>Runs <paramref name="follow"/> under the guard; throws the RpcException that ended it, if the guard did.</summary>
    public async Task RunAsync(ServerCallContext context, string company, string? domain, Func<CancellationToken, Task> follow)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(follow);
        var limited = !Caller.Get(context).IsOperator;
        var slot = Guid.NewGuid().ToString("N");
        if (limited && !await slots.TakeAsync(company, slot).ConfigureAwait(false))
        {
            throw TenantLimits.Exceeded(nameof(TenantLimits.FollowStreamsPerTenant), limits.FollowStreamsPerTenant,
                $"tenant '{company}' already follows {limits.FollowStreamsPerTenant} logs (on all ControlPlanes); end one first");
        }

        try
        {
            var key = BearerKey(context);
            DomainName.TryNormalize(domain, out var name, out _);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
            RpcException? ended = null;
            var watch = Task.Run(async () =>
            {
                var renewed = clock.GetTimestamp();
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        await Task.Delay(limits.FollowRecheckInterval, clock, stop.Token).ConfigureAwait(false);
                        ended = await RecheckAsync(key, company, name).ConfigureAwait(false);
                        if (limited && clock.GetElapsedTime(renewed) >= limits.FollowSlotLease / 3)
                        {
                            await slots.RenewAsync(company, slot).ConfigureAwait(false);
                            renewed = clock.GetTimestamp();
                        }
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                    catch (Exception e) when (e is StackExchange.Redis.RedisException or TimeoutException)
                    {
                        // Cannot tell now; the stream's own reads fail the same way. Ask again next interval.
                        LogRecheckFailed(logger, company, e.Message);
                    }

                    if (ended is not null)
                    {
                        LogEnded(logger, company, name, ended.Status.Detail);
                        await stop.CancelAsync().ConfigureAwait(false);
                        return;
                    }
                }
            }, CancellationToken.None);

            try
            {
                await follow(stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ended is not null)
            {
            }
            finally
            {
                await stop.CancelAsync().ConfigureAwait(false);
                await watch.ConfigureAwait(false);
            }

            if (ended is not null)
            {
                throw ended;
            }
        }
        finally
        {
            if (limited)
            {
                try
                {
                    await slots.ReleaseAsync(company, slot).ConfigureAwait(false);
                }
                catch (Exception e) when (e is StackExchange.Redis.RedisException or TimeoutException)
                {
                    // Its lease runs out instead.
                    LogRecheckFailed(logger, company, e.Message);
                }
            }
        }
    }

    private async Task<RpcException?> RecheckAsync(string? key, string company, string domain)
    {
        var principal = await tenants.AuthenticateAsync(key).ConfigureAwait(false);
        if (principal is null || (!principal.IsOperator && principal.CompanyId != company))
        {
            return new RpcException(new Status(StatusCode.PermissionDenied, "The API key of this stream was revoked (or its tenant deleted); the stream ends."));
        }

        var current = await domains.GetAsync(domain).ConfigureAwait(false);
        return current is null || current.CompanyId != company
            ? new RpcException(new Status(StatusCode.NotFound, $"Domain '{domain}' no longer belongs to this tenant (deleted or moved); the stream ends."))
            : null;
    }

    private static string? BearerKey(ServerCallContext context)
    {
        var header = context.RequestHeaders.GetValue("authorization");
        const string Scheme = "Bearer ";
        return header is not null && header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) ? header[Scheme.Length..].Trim() : null;
    }

    [LoggerMessage(EventId = 210, Level = LogLevel.Information, Message = "FollowLog of {Company} for {Domain} ended by the guard: {Reason}")]
    private static partial void LogEnded(ILogger logger, string company, string domain, string reason);

    [LoggerMessage(EventId = 211, Level = LogLevel.Warning, Message = "FollowLog re-check of {Company} failed: {Error}")]
    private static partial void LogRecheckFailed(ILogger logger, string company, string error);
}
