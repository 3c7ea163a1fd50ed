using Gateway.Core.Delivery;
using Gateway.Core.MessageLog;
using Gateway.Core.Quarantine;
using Gateway.Core.Rules;
using Gateway.Core.Snapshot;
using Gateway.Deliverer.Delivery;
using Gateway.Deliverer.Protection;
using StackExchange.Redis;
using Gateway.Core.Relay;
using Gateway.Core.Mail;
using Gateway.Core.Storage;

namespace Gateway.Deliverer.Intake;

/// <summary>An accepted recipient (canonical address) and the managed domain and direction the relay rule granted it in.</summary>
/// <param name="Domain">The managed domain that owns its copy: the recipient's (inbound) or the sender's (outbound).</param>
/// <param name="Dsn">The RCPT's RFC 3461 NOTIFY/ORCPT, when it had any.</param>
public sealed record IntakeRecipient(string Address, string Domain, Direction Direction, RecipientDsn? Dsn = null);

/// <summary>The MAIL command's RFC 3461 parameters: RET (FULL or HDRS) and ENVID (decoded).</summary>
public readonly record struct MessageDsn(string? Ret, string? EnvelopeId);

/// <summary>What the intake answers to the DATA: the stored ids, or a rule's refusal of every recipient.</summary>
public sealed record IntakeResult(IReadOnlyList<string> Ids, string? RejectReply)
{
    /// <summary>Every stored copy went to the quarantine (none to the queue).</summary>
    public bool Quarantined { get; init; }
}

/// <summary>
/// Puts an accepted message into the queue: one copy per owning managed domain and direction (each in
/// its domain's Redis slot), all durable before the caller answers 250; then logs the intake and hands
/// the copies to this process's workers at once (they hold the leases already). The domains' policy rules
/// decide first (<see cref="IntakeRules"/>): QUARANTINE copies go to the domain's quarantine instead of the
/// queue (as durable), REJECT refuses the DATA with <c>550 5.7.1 &lt;text&gt;</c> when it covers every recipient;
/// rejected recipients of a message others accepted get a DSN instead (one DATA reply serves all recipients).
/// </summary>
public sealed partial class IntakeWriter(MessageQueue queue, QuarantineStore quarantine, ConfigSnapshot snapshot, BufferedMessageLog log, DeliveryScheduler scheduler,
    TimeProvider clock, ILogger<IntakeWriter> logger, DkimSigning dkim, QuarantineOptions quarantineOptions)
{
    /// <summary>The buffer for message <paramref name="id"/> being received: it goes to Redis in pieces once it is big (<see cref="MessageBuffer"/>).</summary>
    /// <param name="quota">The per-client cap on spooled bytes (<see cref="SpoolQuota"/>) that <paramref name="client"/>'s pieces count against.</param>
    public MessageBuffer NewBuffer(string id, SpoolQuota? quota = null, string client = "") => new(queue.BodyDatabase, id) { Quota = quota, Client = client };

    /// <summary>The reply prefix of a rule's refusal at intake.</summary>
    public const string RejectPrefix = RuleDefaults.RejectPrefix;

    /// <param name="client">The original SMTP client: Postfix's XFORWARD ADDR when it sent one, else the connection's peer.</param>
    /// <param name="postfixQueueId">Postfix's queue id (XFORWARD IDENT), logged with the intake to link Postfix's log and the policy decisions.</param>
    /// <param name="dsn">The MAIL command's RFC 3461 RET and ENVID.</param>
    /// <param name="protection">The scan's verdict (docs/protection.md): its holds join the rules', and each copy is stored with its headers.</param>
    /// <param name="spool">
    /// A message received in pieces (<see cref="MessageBuffer.Spilled"/>, requirements §11 bounded memory): <paramref name="body"/>
    /// is then only its head, and the copies share the spool as their body, committed once every copy's id is known: queue and
    /// quarantine copies alike, each with its own prefix (the scan's rewritten header section, or a DKIM-Signature computed over
    /// the pieces) in front of it (docs/architecture.md "Bodies in pieces").
    /// </param>
    public async Task<IntakeResult> EnqueueAsync(string id, string sender, IReadOnlyList<IntakeRecipient> recipients, bool utf8, string client, byte[] body,
        string? postfixQueueId = null, MessageDsn dsn = default, ProtectionResult? protection = null, MessageBuffer? spool = null)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        ArgumentNullException.ThrowIfNull(body);
        var now = clock.GetUtcNow();
        var size = spool?.Length ?? body.LongLength;
        MessageContent? content = null;
        if (spool is not null && IntakeRules.NeedsMime(snapshot, recipients))
        {
            // The rules' subject and attachment names from the pieces in Redis, block by block.
            using var stream = await spool.OpenAsync().ConfigureAwait(false) ?? throw new RedisException($"the pieces of message {id} are gone");
            content = await MessageContent.ParseAsync(stream).ConfigureAwait(false);
        }

        var verdicts = IntakeRules.Evaluate(snapshot, sender, recipients, client, body, size, content);
        verdicts = protection is null ? verdicts : protection.Merge(verdicts, recipients);
        var deliver = verdicts is null ? recipients : verdicts.Where(v => v.Action is null or RuleAction.Deliver).Select(v => v.Recipient).ToList();
        var held = verdicts?.Where(v => v.Action == RuleAction.Quarantine).ToList() ?? [];
        var rejected = verdicts?.Where(v => v.Action == RuleAction.Reject).ToList() ?? [];

        if (deliver.Count == 0 && held.Count == 0)
        {
            var reply = RejectPrefix + rejected[0].Rule!.EffectiveRejectText;
            LogRejects(rejected, id, sender, client, now, reply);
            return new IntakeResult([], reply);
        }

        // One id per stored copy: the first keeps the intake's id (named in the Received header), the others get suffixes.
        var index = 0;
        string NextId() => index++ == 0 ? id : $"{id}-{index - 1}";
        var parts = deliver.GroupBy(r => (r.Domain, r.Direction)).ToList();
        var copies = deliver.Concat(held.Select(v => v.Recipient)).Select(r => (r.Domain, r.Direction));

        // Outbound copies of a domain with an active DKIM key are signed once, here, before they are stored (requirements §10;
        // docs/outbound.md). Throws DkimUnavailableException (the client gets 451) rather than store them unsigned. A message in
        // pieces is signed over its pieces, and the signature is the copy's prefix in front of the shared body.
        var signedOf = spool is null ? await dkim.SignCopiesAsync(snapshot, copies, body).ConfigureAwait(false) : null;
        var signatureOf = spool is not null && DkimSigning.SignsAny(snapshot, copies)
            ? await dkim.SignatureFieldsAsync(snapshot, copies, spool.OpenRequiredAsync).ConfigureAwait(false)
            : null;

        // Protection adds its headers to inbound copies only, DKIM signs outbound copies only: each copy gets one of the two.
        byte[] BodyOf(string domain, Direction direction) =>
            signedOf is null ? body : direction == Direction.Outbound ? signedOf(domain, direction) : protection?.BodyFor(domain, direction) ?? body;

        // The same for a copy of a message in pieces: its prefix, and where it goes on in the shared body.
        (byte[] Prefix, long From) PrefixOf(string domain, Direction direction) =>
            direction == Direction.Outbound ? (signatureOf?.Invoke(domain, direction) ?? [], 0)
            : protection?.PrefixFor(domain, direction) is { } p ? (p.Prefix, p.From) : ([], 0);
        // NOTIFY=SUCCESS/DELAY of inbound mail: honoured in one copy only (DsnNotify.ForInboundCopy), the first inbound one.
        var firstInbound = parts.Select(p => p.Key).Concat(held.Select(v => (v.Recipient.Domain, v.Recipient.Direction)))
            .FirstOrDefault(k => k.Direction == Direction.Inbound);
        var partIds = parts.Select(_ => NextId()).ToList();
        var subject = held.Count > 0 ? content?.Subject ?? MessageContent.Parse(body).Subject : null; // shown in ListQuarantine (a big message's from its head)
        var holds = held.GroupBy(v => (v.Recipient.Domain, v.Recipient.Direction, v.Rule!.Id)).Select(g => new QuarantinedMessage
        {
            Id = NextId(),
            Domain = g.Key.Item1,
            Direction = g.Key.Direction,
            Sender = sender,
            Recipients = g.Select(v => v.Recipient.Address).ToList(),
            QuarantineTime = now,
            RuleId = g.Key.Id,
            RuleDescription = g.First().Rule!.Description,
            Subject = subject,
            Size = size,
            ClientAddress = client,
            Utf8 = utf8,
            DsnRet = dsn.Ret,
            DsnEnvelopeId = dsn.EnvelopeId,
            RecipientDsn = RecipientDsnOf(g.Select(v => v.Recipient), g.Key.Direction == Direction.Outbound || (g.Key.Item1, g.Key.Direction) == firstInbound),
            // A big message's quarantine copy references the shared body as the queue copies do (requirements §11).
            BodyRef = spool?.Id,
            BodyFrom = spool is null ? 0 : PrefixOf(g.Key.Item1, g.Key.Direction).From,
        }).ToList();
        var sharedBody = spool is not null
            ? await CommitSpoolAsync(spool, parts.Select((p, i) => (p.Key.Item1, partIds[i])).ToList(), holds.Select(h => (h.Domain, h.Id)).ToList()).ConfigureAwait(false)
            : await StoreSharedBodiesAsync(parts.Select((p, i) => (p.Key.Item1, partIds[i], BodyOf(p.Key.Item1, p.Key.Direction))).ToList())
                .ConfigureAwait(false);
        var tasks = parts.Select((p, i) => queue.EnqueueLeasedWithMessageAsync(
            new QueueEnvelope(p.Key.Item1, p.Key.Direction, sender, p.Select(r => r.Address).ToList())
            {
                Id = partIds[i],
                ClientAddress = client,
                Utf8 = utf8,
                DsnRet = dsn.Ret,
                DsnEnvelopeId = dsn.EnvelopeId,
                RecipientDsn = RecipientDsnOf(p, p.Key.Direction == Direction.Outbound || p.Key == firstInbound),
                // Copies of one message to several domains: their failures make one DSN (FailureDsnRecords; requirements §11).
                DsnGroup = parts.Count > 1 && sender.Length > 0 ? id : null,
                DsnGroupSize = parts.Count,
            }, BodyOf(p.Key.Item1, p.Key.Direction), sharedBody: sharedBody[i], size: size,
            prefix: spool is null ? default : PrefixOf(p.Key.Item1, p.Key.Direction).Prefix, bodyFrom: spool is null ? 0 : PrefixOf(p.Key.Item1, p.Key.Direction).From)).ToList();
        var held2 = quarantine.AddManyAsync(holds.Select(h => (h, (ReadOnlyMemory<byte>)(spool is null ? BodyOf(h.Domain, h.Direction) : PrefixOf(h.Domain, h.Direction).Prefix)))
            .ToList());
        try
        {
            await Task.WhenAll(tasks.Cast<Task>().Append(held2)).ConfigureAwait(false);
        }
        catch (DomainDeletedException) when (held2.IsCompletedSuccessfully && tasks.All(t => t.IsCompletedSuccessfully || t.Exception?.InnerException is DomainDeletedException))
        {
            // A domain deleted between RCPT and the end of DATA: its copy is discarded as a forced
            // DeleteDomain discards queued mail. Nothing left at all: the caller refuses the message.
            tasks = tasks.Where(t => t.IsCompletedSuccessfully).ToList();
            if (tasks.Count == 0 && held2.Result.Count == 0)
            {
                throw;
            }
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException or DomainDeletedException)
        {
            // The client is told 451 and sends the whole message again: take back the copies that were stored.
            foreach (var t in tasks.Where(t => t.IsCompletedSuccessfully))
            {
                await UndoAsync(() => queue.RemoveAsync(t.Result.Message.Domain, t.Result.Message.Id), t.Result.Message.Id).ConfigureAwait(false);
            }

            foreach (var h in holds)
            {
                await UndoAsync(() => quarantine.RemoveAsync(h.Domain, h.Id), h.Id).ConfigureAwait(false);
                await ReleaseHeldAsync(h).ConfigureAwait(false); // a copy never stored still holds its reference
            }

            // References of copies that were never stored: the last one removes the body (a spool committed for nothing).
            for (var i = 0; i < tasks.Count; i++)
            {
                if (!tasks[i].IsCompletedSuccessfully && sharedBody[i] is { } bodyId)
                {
                    var member = SharedBodies.Member(parts[i].Key.Item1, partIds[i]);
                    await UndoAsync(() => SharedBodies.ReleaseAsync(queue.BodyDatabase, bodyId, member), partIds[i]).ConfigureAwait(false);
                }
            }

            throw;
        }

        // Quarantine copies of a domain deleted meanwhile were dropped like its queue copies; nothing stored at all: refused.
        var wanted = holds.Count;
        foreach (var h in holds.Except(held2.Result))
        {
            await ReleaseHeldAsync(h).ConfigureAwait(false);
        }

        holds = [.. held2.Result];
        if (tasks.Count == 0 && holds.Count == 0 && wanted > 0)
        {
            throw new DomainDeletedException(held[0].Recipient.Domain);
        }

        var ids = new List<string>(tasks.Count + holds.Count);
        foreach (var t in tasks)
        {
            var (item, message) = t.Result;
            ids.Add(message.Id);
            foreach (var r in message.Recipients)
            {
                log.Post(IntakeEvent(message.Domain, message.Id, message.Direction, sender, r.Address, client, size, now, postfixQueueId));
                if (protection is not null)
                {
                    log.Post(protection.ScannedEvent(message.Domain, message.Id, message.Direction, sender, r.Address, client, now));
                }
            }

            // A body in pieces is not in memory: the delivery streams it from Redis.
            scheduler.DispatchLocal(item, message, spool is not null ? null : BodyOf(message.Domain, message.Direction));
        }

        foreach (var h in holds)
        {
            ids.Add(h.Id);
            foreach (var r in h.Recipients)
            {
                log.Post(IntakeEvent(h.Domain, h.Id, h.Direction, sender, r, client, size, now, postfixQueueId));
                if (protection is not null)
                {
                    log.Post(protection.ScannedEvent(h.Domain, h.Id, h.Direction, sender, r, client, now));
                }

                log.Post(QuarantineLog.Quarantined(h, r));
            }
        }

        if (rejected.Count > 0)
        {
            await BounceRejectedAsync(id, sender, rejected, body, size, utf8, client, now, dsn).ConfigureAwait(false);
        }

        return new IntakeResult(ids, null) { Quarantined = tasks.Count == 0 && holds.Count > 0 };
    }

    /// <summary>
    /// Stores the body once for the copies that have the same bytes (every inbound copy, and outbound ones not DKIM-signed):
    /// a message to N managed domains costs one body in Redis, not N (requirements §11; <see cref="Gateway.Core.Storage.SharedBodies"/>). Returns
    /// per copy the shared body's id, or null for a copy that keeps its own body (the only copy with these bytes).
    /// </summary>
    private async Task<string?[]> StoreSharedBodiesAsync(IReadOnlyList<(string Domain, string Id, byte[] Body)> copies)
    {
        var result = new string?[copies.Count];
        foreach (var group in Enumerable.Range(0, copies.Count).GroupBy(i => copies[i].Body, ReferenceEqualityComparer.Instance).Where(g => g.Count() > 1))
        {
            var first = group.First();
            var bodyId = copies[first].Id;
            await queue.StoreSharedBodyAsync(bodyId, copies[first].Body, group.Select(i => (copies[i].Domain, copies[i].Id))).ConfigureAwait(false);
            foreach (var i in group)
            {
                result[i] = bodyId;
            }
        }

        return result;
    }

    /// <summary>
    /// Makes the spool of a message received in pieces the shared body of all its copies (one script: complete, renamed,
    /// referenced); a spool that is not all there is a Redis failure (the client gets 451 and sends the message again).
    /// </summary>
    private async Task<string?[]> CommitSpoolAsync(MessageBuffer spool, IReadOnlyList<(string Domain, string Id)> copies, IReadOnlyList<(string Domain, string Id)> held)
    {
        if (!await queue.CommitSpoolAsync(spool.Id, spool.Length, copies, held, quarantineOptions.Retention).ConfigureAwait(false))
        {
            throw new RedisException($"the pieces of message {spool.Id} are incomplete");
        }

        spool.Committed();
        return copies.Select(_ => (string?)spool.Id).ToArray();
    }

    /// <summary>Releases the body reference of a quarantine copy that was not stored (no-op for one with its own bytes).</summary>
    private Task ReleaseHeldAsync(QuarantinedMessage h) => h.BodyRef is { } bodyId
        ? UndoAsync(() => SharedBodies.ReleaseAsync(queue.BodyDatabase, bodyId, SharedBodies.QuarantineMember(h.Domain, h.Id)), h.Id)
        : Task.CompletedTask;

    private static MessageLogEvent IntakeEvent(string domain, string id, Direction direction, string sender, string recipient, string client, long size, DateTimeOffset now,
        string? postfixQueueId) => new()
    {
        Domain = domain, Event = MessageLogEvents.Intake, Time = now, MessageId = id, Direction = direction,
        Sender = sender, Recipient = recipient, ClientAddress = client, Program = "deliverer", PostfixQueueId = postfixQueueId, Detail = $"size={size}",
    };

    private void LogRejects(IEnumerable<IntakeVerdict> rejected, string id, string sender, string client, DateTimeOffset now, string? reply = null)
    {
        foreach (var v in rejected)
        {
            log.Post(new MessageLogEvent
            {
                Domain = v.Recipient.Domain, Event = MessageLogEvents.PolicyReject, Time = now, MessageId = id, Direction = v.Recipient.Direction,
                Sender = sender, Recipient = v.Recipient.Address, ClientAddress = client, Program = "deliverer",
                Reply = reply ?? RejectPrefix + v.Rule!.EffectiveRejectText, Detail = RuleEnvelopeCheck.Describe(v.Rule!) + " at intake",
            });
        }
    }

    /// <summary>Recipients a rule refused in a message others accepted: a DSN to the sender (RFC 3464), since the DATA reply was 250.</summary>
    /// <param name="body">The message, or its head when it was received in pieces (the DSN returns at most 50 kB of it).</param>
    private async Task BounceRejectedAsync(string id, string sender, List<IntakeVerdict> rejected, byte[] body, long size, bool utf8, string client, DateTimeOffset now,
        MessageDsn dsn)
    {
        LogRejects(rejected, id, sender, client, now);
        try
        {
            foreach (var group in rejected.GroupBy(v => (v.Recipient.Domain, v.Recipient.Direction)))
            {
                var original = new QueuedMessage
                {
                    Id = id, Domain = group.Key.Item1, Direction = group.Key.Direction, Sender = sender, CreateTime = now, NextAttempt = now,
                    Recipients = group.Select(v => new QueuedRecipient
                    {
                        Address = v.Recipient.Address, Notify = v.Recipient.Dsn?.Notify, OriginalRecipient = v.Recipient.Dsn?.OriginalRecipient,
                    }).ToList(),
                    Size = size, Utf8 = utf8, DsnRet = dsn.Ret, DsnEnvelopeId = dsn.EnvelopeId,
                };
                var failed = group.Select(v => new DsnRecipient(v.Recipient.Address, RejectPrefix + v.Rule!.EffectiveRejectText, null, false)).ToList();
                var senderDomain = snapshot.FindEnvelopeDomain(EnvelopeAddress.DomainOf(sender));
                await Bounces.SendDsnAsync(queue, original, body, failed, senderDomain is { InboundEnabled: true } s ? s.Name : null, now, CancellationToken.None)
                    .ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
        {
            LogDsnFailed(logger, id, e.Message);
        }
    }

    private async Task UndoAsync(Func<Task> undo, string id)
    {
        try
        {
            await undo().ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
        {
            LogUndoFailed(logger, id, e.Message);
        }
    }

    /// <summary>The recipients' RFC 3461 parameters by address, or null when none had any.</summary>
    /// <param name="keepsNotify">False for an inbound copy other than the first: its NOTIFY loses SUCCESS and DELAY.</param>
    private static Dictionary<string, RecipientDsn>? RecipientDsnOf(IEnumerable<IntakeRecipient> recipients, bool keepsNotify)
    {
        var map = recipients.Where(r => r.Dsn is not null).ToDictionary(r => r.Address,
            r => keepsNotify ? r.Dsn! : r.Dsn! with { Notify = DsnNotify.ForInboundCopy(r.Dsn!.Notify, firstInboundCopy: false) }, StringComparer.Ordinal);
        return map.Count == 0 ? null : map;
    }

    [LoggerMessage(EventId = 1010, Level = LogLevel.Warning, Message = "Intake: could not take back stored copy {Id} after a failed enqueue (it may be delivered twice): {Reason}")]
    private static partial void LogUndoFailed(ILogger logger, string id, string reason);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Warning, Message = "Intake: DSN for recipients refused by a rule in message {Id} could not be queued: {Reason}")]
    private static partial void LogDsnFailed(ILogger logger, string id, string reason);
}
