using Gateway.ControlPlane.Grpc;
using Gateway.Core.Delivery;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using V1 = Gateway.Api.V1;
using Gateway.ControlPlane.Application;
using Gateway.Core.Mail;

namespace Gateway.ControlPlane.Services;

/// <summary>gateway.v1.QueueService: thin; tenant scoping and the queue operations live in <see cref="QueueAdmin"/>.</summary>
public sealed class QueueGrpcService(QueueAdmin admin, QueueOptions options) : V1.QueueService.QueueServiceBase
{
    public override async Task<V1.ListQueueResponse> ListQueue(V1.ListQueueRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (items, next) = await admin.ListAsync(Caller.TenantOf(context), request.Domain, request.PageSize, request.PageToken).ConfigureAwait(false);
        var response = new V1.ListQueueResponse { NextPageToken = next };
        response.Messages.AddRange(items.Select(ToApi));
        return response;
    }

    public override async Task<V1.QueuedMessage> GetQueuedMessage(V1.GetQueuedMessageRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        return ToApi(await admin.GetAsync(Caller.TenantOf(context), request.Domain, request.MessageId).ConfigureAwait(false));
    }

    public override async Task<V1.RetryNowResponse> RetryNow(V1.RetryNowRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (message, inFlight) = await admin.RetryNowAsync(Caller.TenantOf(context), request.Domain, request.MessageId).ConfigureAwait(false);
        return new V1.RetryNowResponse { Message = ToApi(message), InFlight = inFlight };
    }

    public override async Task<V1.BounceMessageResponse> BounceMessage(V1.BounceMessageRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var (message, dsn) = await admin.BounceAsync(Caller.TenantOf(context), request.Domain, request.MessageId, request.Reason, context.CancellationToken)
            .ConfigureAwait(false);
        return new V1.BounceMessageResponse { Message = ToApi(message), DsnMessageId = dsn ?? string.Empty };
    }

    public override async Task<V1.DeleteMessageResponse> DeleteMessage(V1.DeleteMessageRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var message = await admin.DeleteAsync(Caller.TenantOf(context), request.Domain, request.MessageId).ConfigureAwait(false);
        return new V1.DeleteMessageResponse { Message = ToApi(message) };
    }

    private V1.QueuedMessage ToApi(QueuedMessage m)
    {
        var api = new V1.QueuedMessage
        {
            MessageId = m.Id,
            Domain = m.Domain,
            Direction = DirectionText.Of(m.Direction),
            Sender = m.Sender,
            Attempts = m.Attempts,
            LastError = m.LastError ?? string.Empty,
            NextAttemptTime = Timestamp.FromDateTimeOffset(m.NextAttempt),
            CreateTime = Timestamp.FromDateTimeOffset(m.CreateTime),
            ExpireTime = Timestamp.FromDateTimeOffset(RetryPolicy.ExpiresAt(m.CreateTime, options)),
            SizeBytes = m.Size,
            IsDsn = m.IsDsn,
        };
        api.Recipients.AddRange(m.Recipients.Select(r => new V1.QueuedRecipient
        {
            Address = r.Address,
            State = r.State switch
            {
                RecipientState.Pending => V1.RecipientState.Pending,
                RecipientState.Delivered => V1.RecipientState.Delivered,
                _ => V1.RecipientState.Failed,
            },
            LastReply = r.LastReply ?? string.Empty,
            LastHost = r.LastHost ?? string.Empty,
        }));
        return api;
    }
}
