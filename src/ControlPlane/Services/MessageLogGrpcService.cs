using Gateway.ControlPlane.Grpc;
using Gateway.Core.MessageLog;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using V1 = Gateway.Api.V1;
using Gateway.ControlPlane.Application;
using Gateway.Core.Mail;

namespace Gateway.ControlPlane.Services;

/// <summary>gateway.v1.MessageLogService: thin; validation, tenant scoping and paging live in <see cref="MessageLogQueries"/>.</summary>
public sealed class MessageLogGrpcService(MessageLogQueries queries, FollowGuard guard) : V1.MessageLogService.MessageLogServiceBase
{
    public override async Task<V1.QueryLogResponse> QueryLog(V1.QueryLogRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var query = new LogQuery
        {
            Domain = request.Domain, Direction = request.Direction, Sender = request.Sender, Recipient = request.Recipient,
            MessageId = request.MessageId, PostfixQueueId = request.PostfixQueueId, Events = request.Events,
            Start = request.StartTime?.ToDateTimeOffset(), End = request.EndTime?.ToDateTimeOffset(),
            PageSize = request.PageSize, PageToken = request.PageToken, OldestFirst = request.Order == V1.LogOrder.OldestFirst,
        };
        var (events, next) = await queries.QueryAsync(Caller.TenantOf(context), query, context.CancellationToken).ConfigureAwait(false);
        var response = new V1.QueryLogResponse { NextPageToken = next };
        response.Events.AddRange(events.Select(ToApi));
        return response;
    }

    public override async Task FollowLog(V1.FollowLogRequest request, IServerStreamWriter<V1.LogEvent> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        var query = new LogQuery
        {
            Domain = request.Domain, Direction = request.Direction, Sender = request.Sender, Recipient = request.Recipient,
            MessageId = request.MessageId, PostfixQueueId = request.PostfixQueueId, Events = request.Events,
            Start = request.StartTime?.ToDateTimeOffset(),
        };
        var company = Caller.TenantOf(context);
        await guard.RunAsync(context, company, request.Domain, async ct =>
        {
            var events = await queries.FollowAsync(company, query, ct).ConfigureAwait(false);

            // The follow is established (counted, authorised, the domain found): say so with the response headers, so a
            // client can tell "following, nothing happened yet" from "not started" (ResponseHeadersAsync completes).
            await context.WriteResponseHeadersAsync(new Metadata()).ConfigureAwait(false);
            try
            {
                await foreach (var e in events.WithCancellation(ct).ConfigureAwait(false))
                {
                    await responseStream.WriteAsync(ToApi(e), ct).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested && context.CancellationToken.IsCancellationRequested)
            {
                // The client went away: the normal end of a follow.
            }
        }).ConfigureAwait(false);
    }

    private static V1.LogEvent ToApi(MessageLogEvent e) => new()
    {
        Id = e.Id ?? string.Empty,
        Time = Timestamp.FromDateTimeOffset(e.Time),
        Event = e.Event,
        Domain = e.Domain,
        MessageId = e.MessageId ?? string.Empty,
        Direction = DirectionText.Of(e.Direction) ?? string.Empty,
        Sender = e.Sender ?? string.Empty,
        Recipient = e.Recipient ?? string.Empty,
        ClientAddress = e.ClientAddress ?? string.Empty,
        Host = e.Host ?? string.Empty,
        Reply = e.Reply ?? string.Empty,
        Detail = e.Detail ?? string.Empty,
        Program = e.Program ?? string.Empty,
        PostfixQueueId = e.PostfixQueueId ?? string.Empty,
        Tls = e.Tls ?? string.Empty,
    };
}
