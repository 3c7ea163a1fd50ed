using Gateway.Core.Delivery;
using Gateway.Core.MessageLog;
using Gateway.Deliverer.Delivery;
using StackExchange.Redis;

namespace Gateway.Deliverer.Intake;

/// <summary>An accepted recipient and where it goes.</summary>
public sealed record IntakeRecipient(string Address, RecipientClass Class);

/// <summary>
/// Puts an accepted message into the queue: one copy per owning managed domain and direction (each in
/// its domain's Redis slot), all durable before the caller answers 250; then logs the intake and hands
/// the copies to this process's workers at once (they hold the leases already).
/// </summary>
public sealed partial class IntakeWriter(MessageQueue queue, BufferedMessageLog log, DeliveryScheduler scheduler, TimeProvider clock, ILogger<IntakeWriter> logger)
{
    /// <param name="postfixQueueId">Postfix's queue id (XFORWARD IDENT), logged with the intake to link Postfix's log and the policy decisions.</param>
    public async Task<IReadOnlyList<string>> EnqueueAsync(string id, string sender, IReadOnlyList<IntakeRecipient> recipients, bool utf8, string client, byte[] body,
        string? postfixQueueId = null)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        var parts = recipients.GroupBy(r => (r.Class.Domain!, r.Class.Direction)).ToList();
        var tasks = parts.Select((p, i) => queue.EnqueueLeasedWithMessageAsync(
            new QueueEnvelope(p.Key.Item1, p.Key.Direction, sender, p.Select(r => r.Address).ToList())
            {
                Id = i == 0 ? id : $"{id}-{i}",
                ClientAddress = client,
                Utf8 = utf8,
            }, body)).ToList();
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (DomainDeletedException) when (tasks.All(t => t.IsCompletedSuccessfully || t.Exception?.InnerException is DomainDeletedException))
        {
            // A domain deleted between RCPT and the end of DATA: its copy is discarded as a forced
            // DeleteDomain discards queued mail. Nothing left at all: the caller refuses the message.
            tasks = tasks.Where(t => t.IsCompletedSuccessfully).ToList();
            if (tasks.Count == 0)
            {
                throw;
            }
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException or DomainDeletedException)
        {
            // The client is told 451 and sends the whole message again: take back the copies that were stored.
            foreach (var t in tasks.Where(t => t.IsCompletedSuccessfully))
            {
                try
                {
                    await queue.RemoveAsync(t.Result.Message.Domain, t.Result.Message.Id).ConfigureAwait(false);
                }
                catch (Exception undo) when (undo is RedisException or RedisTimeoutException or TimeoutException)
                {
                    LogUndoFailed(logger, t.Result.Message.Id, undo.Message);
                }
            }

            throw;
        }

        var now = clock.GetUtcNow();
        var ids = new List<string>(tasks.Count);
        foreach (var t in tasks)
        {
            var (item, message) = t.Result;
            ids.Add(message.Id);
            foreach (var r in message.Recipients)
            {
                log.Post(new MessageLogEvent
                {
                    Domain = message.Domain, Event = MessageLogEvents.Intake, Time = now, MessageId = message.Id, Direction = message.Direction,
                    Sender = sender, Recipient = r.Address, ClientAddress = client, Program = "deliverer", PostfixQueueId = postfixQueueId,
                    Detail = $"size={body.Length}",
                });
            }

            scheduler.DispatchLocal(item, message, body);
        }

        return ids;
    }

    [LoggerMessage(EventId = 1010, Level = LogLevel.Warning, Message = "Intake: could not take back stored copy {Id} after a failed enqueue (it may be delivered twice): {Reason}")]
    private static partial void LogUndoFailed(ILogger logger, string id, string reason);
}
