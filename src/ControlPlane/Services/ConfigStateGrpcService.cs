using Gateway.ControlPlane.Grpc;
using Gateway.Core.Errors;
using Gateway.Core.Storage;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using V1 = Gateway.Api.V1;

namespace Gateway.ControlPlane.Services;

/// <summary>
/// gateway.v1.ConfigStateService, operator key only: the stored configuration as a whole and the operator's acceptance
/// of it after suspected data loss (requirements §4 rule 5, §8; docs/operations.md "When Redis lost data").
/// </summary>
public sealed partial class ConfigStateGrpcService(ConfigStateStore states, TimeProvider clock, ILogger<ConfigStateGrpcService> logger)
    : V1.ConfigStateService.ConfigStateServiceBase
{
    /// <summary>A held program reports every reconcile interval; older reports are of programs that stopped.</summary>
    public static readonly TimeSpan HeldReportFresh = TimeSpan.FromSeconds(30);

    public override async Task<V1.ConfigState> GetConfigState(V1.GetConfigStateRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.RequireOperator(context);
        return await ReadAsync().ConfigureAwait(false);
    }

    public override async Task<V1.ConfigState> AcceptConfigState(V1.AcceptConfigStateRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.RequireOperator(context);
        var reason = request.Reason.Trim();
        if (reason.Length == 0 || reason.Length > 500)
        {
            GatewayException.ThrowInvalid([new FieldViolation("reason", "say why the stored state is accepted (1 to 500 characters)")]);
        }

        var accepted = await states.AcceptAsync("operator", reason, clock.GetUtcNow()).ConfigureAwait(false);
        LogAccepted(logger, accepted.Version, accepted.Domains, reason);
        return await ReadAsync().ConfigureAwait(false);
    }

    private async Task<V1.ConfigState> ReadAsync()
    {
        var lineageTask = states.GetLineageAsync();
        var countTask = states.CountDomainsAsync();
        var acceptedTask = states.GetAcceptanceAsync();
        var heldTask = states.ListHeldAsync(clock.GetUtcNow(), HeldReportFresh);
        var lineage = await lineageTask.ConfigureAwait(false);
        var state = new V1.ConfigState
        {
            Version = lineage.Version,
            Epoch = lineage.Epoch ?? string.Empty,
            DomainCount = await countTask.ConfigureAwait(false),
        };
        if (await acceptedTask.ConfigureAwait(false) is { } a)
        {
            state.LastAcceptance = new V1.ConfigAcceptance
            {
                Epoch = a.Epoch,
                Version = a.Version,
                DomainCount = a.Domains,
                AcceptTime = Timestamp.FromDateTimeOffset(a.At),
                AcceptedBy = a.By,
                Reason = a.Reason,
            };
        }

        state.Held.AddRange((await heldTask.ConfigureAwait(false)).Select(h => new V1.HeldSnapshot
        {
            Instance = h.Instance,
            Reason = h.Reason,
            Since = Timestamp.FromDateTimeOffset(h.Since),
            LastReport = Timestamp.FromDateTimeOffset(h.Seen),
        }));
        return state;
    }

    [LoggerMessage(EventId = 580, Level = LogLevel.Warning, Message = "The operator accepted the stored configuration (version {Version}, {Domains} domains): {Reason}")]
    private static partial void LogAccepted(ILogger logger, long version, long domains, string reason);
}
