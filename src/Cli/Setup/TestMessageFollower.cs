using Gateway.Api.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Gateway.Cli.Setup;

/// <summary>What became of the test message while <c>setup</c> watched.</summary>
internal enum TestMessageFate
{
    /// <summary>The customer's server took it (a <c>delivered</c> event).</summary>
    Delivered,

    /// <summary>Refused for good (<c>bounced</c>, <c>expired</c>) or removed by an operator (<c>deleted</c>).</summary>
    Refused,

    /// <summary>No final event when the wait ended (deferred: the server refused for now or could not be reached).</summary>
    Pending,
}

internal sealed record TestMessageReport(TestMessageFate Fate, LogEvent? Last);

/// <summary>
/// Follows the test message in the domain's message log (MessageLogService.FollowLog, filtered by its id, requirements §7):
/// every event is shown as it is written (intake, each attempt with the host and its reply, deferral) until a final
/// one — delivered, or bounced/expired/deleted — or the wait ends. Unlike watching the queue, the log tells a
/// delivery from a permanent refusal and names the host that answered.
/// </summary>
internal static class TestMessageFollower
{
    public static async Task<TestMessageReport> FollowAsync(CallInvoker invoker, string domain, string messageId, TimeSpan wait,
        Action<LogEvent> seen, CancellationToken cancellationToken)
    {
        var log = new MessageLogService.MessageLogServiceClient(invoker);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(wait);
        LogEvent? last = null;
        try
        {
            // From a while back, not "now": the message was queued (and maybe delivered) before this call, and the
            // client's clock may differ from the server's. The id filter keeps only this message's events.
            using var call = log.FollowLog(new FollowLogRequest
            {
                Domain = domain, MessageId = messageId, StartTime = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(-10)),
            }, cancellationToken: deadline.Token);
            await foreach (var e in call.ResponseStream.ReadAllAsync(deadline.Token).ConfigureAwait(false))
            {
                last = e;
                seen(e);
                switch (e.Event)
                {
                    case "delivered":
                        return new TestMessageReport(TestMessageFate.Delivered, e);
                    case "bounced" or "expired" or "deleted":
                        return new TestMessageReport(TestMessageFate.Refused, e);
                }
            }
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.Cancelled or StatusCode.DeadlineExceeded && !cancellationToken.IsCancellationRequested)
        {
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
        }

        return new TestMessageReport(TestMessageFate.Pending, last);
    }
}
