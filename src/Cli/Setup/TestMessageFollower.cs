using Gateway.Api.V1;
using Grpc.Core;

namespace Gateway.Cli.Setup;

/// <summary>What became of the test message while <c>setup</c> watched.</summary>
internal enum TestMessageFate
{
    /// <summary>It left the queue: every recipient got a final answer (delivered, or refused for good).</summary>
    LeftQueue,

    /// <summary>Still queued when the wait ended (deferred: the server refused or could not be reached).</summary>
    StillQueued,
}

internal sealed record TestMessageReport(TestMessageFate Fate, QueuedMessage? LastSeen);

/// <summary>
/// Follows the test message until it is delivered. The one place that knows how: today through QueueService
/// (a message leaves the queue once delivered; while it waits, GetQueuedMessage shows attempts and the last reply).
/// When the message log RPC exists (SPEC §7, MessageLogService), this class switches to following the domain's log
/// by message id, which also tells a delivery from a permanent refusal; nothing else in <c>setup</c> changes.
/// </summary>
internal static class TestMessageFollower
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);

    public static async Task<TestMessageReport> FollowAsync(CallInvoker invoker, string domain, string messageId, TimeSpan wait,
        Action<QueuedMessage> changed, CancellationToken cancellationToken)
    {
        var queue = new QueueService.QueueServiceClient(invoker);
        var deadline = DateTimeOffset.UtcNow + wait;
        QueuedMessage? last = null;
        while (true)
        {
            QueuedMessage current;
            try
            {
                current = await queue.GetQueuedMessageAsync(new GetQueuedMessageRequest { Domain = domain, MessageId = messageId }, cancellationToken: cancellationToken)
                    .ConfigureAwait(false);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
            {
                return new TestMessageReport(TestMessageFate.LeftQueue, last);
            }

            if (last is null || current.Attempts != last.Attempts || current.LastError != last.LastError)
            {
                changed(current);
            }

            last = current;
            if (DateTimeOffset.UtcNow >= deadline)
            {
                return new TestMessageReport(TestMessageFate.StillQueued, last);
            }

            await Task.Delay(Poll, cancellationToken).ConfigureAwait(false);
        }
    }
}
