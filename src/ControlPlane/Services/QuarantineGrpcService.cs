using Gateway.ControlPlane.Grpc;
using Gateway.Core.Quarantine;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using V1 = Gateway.Api.V1;
using Gateway.ControlPlane.Application;
using Gateway.Core.Mail;

namespace Gateway.ControlPlane.Services;

/// <summary>gateway.v1.QuarantineService: thin; tenant scoping and the operations live in <see cref="QuarantineAdmin"/>.</summary>
public sealed class QuarantineGrpcService(QuarantineAdmin admin, QuarantineOptions options) : V1.QuarantineService.QuarantineServiceBase
{
    public override async Task<V1.ListQuarantineResponse> ListQuarantine(V1.ListQuarantineRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var (items, next) = await admin.ListAsync(Caller.TenantOf(context), request.Domain, request.Sender, request.Recipient,
            request.StartTime?.ToDateTimeOffset(), request.EndTime?.ToDateTimeOffset(), request.PageSize, request.PageToken, context.CancellationToken)
            .ConfigureAwait(false);
        var response = new V1.ListQuarantineResponse { NextPageToken = next };
        response.Messages.AddRange(items.Select(ToApi));
        return response;
    }

    public override async Task<V1.QuarantinedMessage> GetQuarantined(V1.GetQuarantinedRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        return ToApi(await admin.GetAsync(Caller.TenantOf(context), request.Domain, request.MessageId).ConfigureAwait(false));
    }

    public override async Task<V1.ReleaseMessageResponse> ReleaseMessage(V1.ReleaseMessageRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var message = await admin.ReleaseAsync(Caller.TenantOf(context), request.Domain, request.MessageId, context.CancellationToken).ConfigureAwait(false);
        return new V1.ReleaseMessageResponse { Message = ToApi(message), QueueMessageId = message.Id };
    }

    public override async Task<V1.DeleteQuarantinedResponse> DeleteQuarantined(V1.DeleteQuarantinedRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var message = await admin.DeleteAsync(Caller.TenantOf(context), request.Domain, request.MessageId).ConfigureAwait(false);
        return new V1.DeleteQuarantinedResponse { Message = ToApi(message) };
    }

    private V1.QuarantinedMessage ToApi(QuarantinedMessage m)
    {
        var api = new V1.QuarantinedMessage
        {
            MessageId = m.Id,
            Domain = m.Domain,
            Direction = DirectionText.Of(m.Direction),
            Sender = m.Sender,
            QuarantineTime = Timestamp.FromDateTimeOffset(m.QuarantineTime),
            ExpireTime = Timestamp.FromDateTimeOffset(m.QuarantineTime + options.Retention),
            RuleId = m.RuleId,
            RuleDescription = m.RuleDescription ?? string.Empty,
            Subject = m.Subject ?? string.Empty,
            SizeBytes = m.Size,
            ClientAddress = m.ClientAddress ?? string.Empty,
        };
        api.Recipients.AddRange(m.Recipients);
        return api;
    }
}
