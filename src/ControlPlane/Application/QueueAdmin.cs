using Gateway.Core.Domains;
using Gateway.Core.Errors;
using Gateway.Core.MessageLog;
using Gateway.Core.Storage;
using Gateway.Core.Delivery;
using Gateway.Core;
using Gateway.Core.Mail;

namespace Gateway.ControlPlane.Application;

/// <summary>
/// Operator use cases on the queue (requirements §6): list per domain, retry now, bounce, delete. Tenant-scoped:
/// the domain must belong to the caller's tenant, else NOT_FOUND, and so is a message of another domain.
/// </summary>
public sealed class QueueAdmin(DomainManager domains, DomainStore store, MessageQueue queue, MessageLogWriter log, TimeProvider clock)
{
    public async Task<(IReadOnlyList<QueuedMessage> Items, string NextPageToken)> ListAsync(string companyId, string? domain, int pageSize, string? pageToken)
    {
        var violations = new List<FieldViolation>();
        var size = Paging.ResolvePageSize(pageSize, violations);
        var after = DecodeCursor(Paging.Decode(pageToken, violations), violations);
        if (violations.Count > 0)
        {
            GatewayException.ThrowInvalid(violations);
        }

        var owned = await domains.GetAsync(companyId, domain).ConfigureAwait(false);
        var (items, last) = await queue.ListAsync(owned.Name, after, size).ConfigureAwait(false);
        return (items, Paging.Encode(last is { } l ? $"{l.Score.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}|{l.Id}" : null));
    }

    public async Task<QueuedMessage> GetAsync(string companyId, string? domain, string? id)
    {
        var (owned, messageId) = await ResolveAsync(companyId, domain, id).ConfigureAwait(false);
        return await queue.GetAsync(owned, messageId).ConfigureAwait(false) ?? throw MessageNotFound(owned, messageId);
    }

    /// <summary>Makes the message due now; returns it and whether a Deliverer was already attempting it.</summary>
    public async Task<(QueuedMessage Message, bool InFlight)> RetryNowAsync(string companyId, string? domain, string? id)
    {
        var (owned, messageId) = await ResolveAsync(companyId, domain, id).ConfigureAwait(false);
        var outcome = await queue.RetryNowAsync(owned, messageId).ConfigureAwait(false);
        if (outcome == RetryNowOutcome.NotFound)
        {
            throw MessageNotFound(owned, messageId);
        }

        var message = await queue.GetAsync(owned, messageId).ConfigureAwait(false) ?? throw MessageNotFound(owned, messageId);
        await log.AppendManyAsync(message.Pending.Select(r => new MessageLogEvent
        {
            Domain = owned, Event = MessageLogEvents.Retry, Time = clock.GetUtcNow(), MessageId = messageId, Direction = message.Direction,
            Sender = message.Sender, Recipient = r.Address, Program = "controlplane",
            Detail = outcome == RetryNowOutcome.InFlight ? "retry requested by operator; a Deliverer is attempting it already" : "retry requested by operator; due now",
        }).ToList()).ConfigureAwait(false);
        return (message, outcome == RetryNowOutcome.InFlight);
    }

    /// <summary>Removes the message and sends the sender a DSN for every recipient still pending.</summary>
    public async Task<(QueuedMessage Message, string? DsnId)> BounceAsync(string companyId, string? domain, string? id, string? reason, CancellationToken cancellationToken)
    {
        var (owned, messageId) = await ResolveAsync(companyId, domain, id).ConfigureAwait(false);
        var removed = await queue.RemoveAsync(owned, messageId).ConfigureAwait(false) ?? throw MessageNotFound(owned, messageId);
        var (message, body) = removed;
        var now = clock.GetUtcNow();
        var text = "550 5.0.0 " + (string.IsNullOrWhiteSpace(reason) ? "Message bounced by the gateway operator" : reason.Trim().ReplaceLineEndings(" "));
        var failed = message.Pending.Select(r => new DsnRecipient(r.Address, text, null, false)).ToList();

        // Inbound DSN when the sender's own domain is managed with inbound on (read fresh from the store).
        string? senderInbound = null;
        if (DomainName.NormalizeOrNull(EnvelopeAddress.DomainOf(message.Sender)) is { } senderDomain &&
            await store.GetAsync(senderDomain).ConfigureAwait(false) is { Settings.InboundEnabled: true } cfg)
        {
            senderInbound = cfg.Name;
        }

        var dsn = await Bounces.SendDsnAsync(queue, message, body, failed, senderInbound, now, cancellationToken).ConfigureAwait(false);
        await CopyRemovedAsync(message, now).ConfigureAwait(false);
        await log.AppendManyAsync(failed.Select(f => new MessageLogEvent
        {
            Domain = owned, Event = MessageLogEvents.Bounced, Time = now, MessageId = messageId, Direction = message.Direction,
            Sender = message.Sender, Recipient = f.Address, Reply = f.Reply, Program = "controlplane",
            Detail = dsn.Reports(f.Address) ? $"bounced by operator; DSN {dsn.Id}" : "bounced by operator; no DSN (null sender, or NOTIFY without FAILURE)",
        }).ToList()).ConfigureAwait(false);
        return (message, dsn.Id);
    }

    /// <summary>Removes the message without notifying anyone.</summary>
    public async Task<QueuedMessage> DeleteAsync(string companyId, string? domain, string? id)
    {
        var (owned, messageId) = await ResolveAsync(companyId, domain, id).ConfigureAwait(false);
        var removed = await queue.RemoveAsync(owned, messageId).ConfigureAwait(false) ?? throw MessageNotFound(owned, messageId);
        var message = removed.Message;
        var now = clock.GetUtcNow();
        await CopyRemovedAsync(message, now).ConfigureAwait(false);
        var pending = message.Pending.Select(r => (string?)r.Address).DefaultIfEmpty(null);
        await log.AppendManyAsync(pending.Select(r => new MessageLogEvent
        {
            Domain = owned, Event = MessageLogEvents.Deleted, Time = now, MessageId = messageId, Direction = message.Direction,
            Sender = message.Sender, Recipient = r, Program = "controlplane",
            Detail = "deleted from the queue by operator; not delivered to this recipient",
        }).ToList()).ConfigureAwait(false);
        return message;
    }

    /// <summary>A copy of a message to several domains is done: the others' combined failure DSN does not wait for it (FailureDsnRecords).</summary>
    private Task CopyRemovedAsync(QueuedMessage message, DateTimeOffset now) =>
        FailureDsnRecords.CopyRemovedAsync(queue.BodyDatabase, message, queue.Options.MaxLifetime + TimeSpan.FromDays(1), now);

    private async Task<(string Domain, string Id)> ResolveAsync(string companyId, string? domain, string? id)
    {
        if (!MessageId.IsValid(id))
        {
            GatewayException.ThrowInvalid("message_id", "message_id is required and must be an id returned by ListQueue");
        }

        var owned = await domains.GetAsync(companyId, domain).ConfigureAwait(false);
        return (owned.Name, id!);
    }

    private static GatewayException MessageNotFound(string domain, string id) =>
        new(ErrorKind.NotFound, $"Message '{id}' is not in the queue of '{domain}' (delivered, bounced or deleted already?).");

    /// <summary>A (score, id) page cursor as encoded by the list calls (<c>&lt;score&gt;|&lt;id&gt;</c>), shared with the quarantine.</summary>
    internal static (double Score, string Id)? DecodeCursor(string? key, List<FieldViolation> violations)
    {
        if (key is null)
        {
            return null;
        }

        var bar = key.IndexOf('|', StringComparison.Ordinal);
        if (bar > 0 && double.TryParse(key.AsSpan(0, bar), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var score))
        {
            return (score, key[(bar + 1)..]);
        }

        violations.Add(new FieldViolation("page_token", "page_token is not one this server returned"));
        return null;
    }
}
