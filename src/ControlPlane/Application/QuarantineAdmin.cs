using System.Globalization;
using Gateway.Core.Delivery;
using Gateway.Core.Domains;
using Gateway.Core.Errors;
using Gateway.Core.MessageLog;
using Gateway.Core.Quarantine;
using Gateway.Core.Rules;
using Gateway.Core;
using Gateway.Core.Mail;

namespace Gateway.ControlPlane.Application;

/// <summary>
/// Quarantine use cases (requirements §7): list with filters and paging, release into the delivery queue (delivered
/// through the domain's current routes), delete, expire. Tenant-scoped like <see cref="QueueAdmin"/>: another
/// tenant's domain, or a message not held for the named domain, is NOT_FOUND.
/// </summary>
public sealed class QuarantineAdmin(DomainManager domains, QuarantineStore store, MessageQueue queue, MessageLogWriter log, QuarantineOptions options, TimeProvider clock)
{
    public async Task<(IReadOnlyList<QuarantinedMessage> Items, string NextPageToken)> ListAsync(string companyId, string? domain, string? sender, string? recipient,
        DateTimeOffset? since, DateTimeOffset? until, int pageSize, string? pageToken, CancellationToken cancellationToken = default)
    {
        var violations = new List<FieldViolation>();
        var size = Paging.ResolvePageSize(pageSize, violations);
        var after = QueueAdmin.DecodeCursor(Paging.Decode(pageToken, violations), violations);
        var filter = new QuarantineFilter
        {
            Sender = Pattern(sender, "sender", violations),
            Recipient = Pattern(recipient, "recipient", violations),
            Since = since,
            Until = until,
        };
        if (since is { } s && until is { } u && s > u)
        {
            violations.Add(new FieldViolation("end_time", "end_time must not be before start_time"));
        }

        if (violations.Count > 0)
        {
            GatewayException.ThrowInvalid(violations);
        }

        var owned = await domains.GetAsync(companyId, domain).ConfigureAwait(false);
        var (items, last) = await store.ListAsync(owned.Name, filter, after, size, cancellationToken).ConfigureAwait(false);
        return (items, Paging.Encode(last is { } l ? $"{QuarantineStore.ScoreText(l.Score)}|{l.Id}" : null));
    }

    public async Task<QuarantinedMessage> GetAsync(string companyId, string? domain, string? id)
    {
        var (owned, messageId) = await ResolveAsync(companyId, domain, id).ConfigureAwait(false);
        return await store.GetAsync(owned, messageId).ConfigureAwait(false) ?? throw NotFound(owned, messageId);
    }

    /// <summary>
    /// Puts the message into the delivery queue under its own id (due now; a Deliverer delivers it through the
    /// domain's current route or the recipients' MX), then removes it from quarantine and logs <c>released</c>.
    /// A crash in between leaves it in both; releasing it again writes the same queue entry (same id), no duplicate.
    /// </summary>
    public async Task<QuarantinedMessage> ReleaseAsync(string companyId, string? domain, string? id, CancellationToken cancellationToken = default)
    {
        var (owned, messageId) = await ResolveAsync(companyId, domain, id).ConfigureAwait(false);
        var now = clock.GetUtcNow();
        var (busy, message, body) = await store.ClaimAsync(owned, messageId, now, options.ReleaseClaimTimeout).ConfigureAwait(false);
        if (busy)
        {
            GatewayException.ThrowAborted($"Message '{messageId}' is being released already.");
        }

        if (message is null)
        {
            throw NotFound(owned, messageId);
        }

        var envelope = new QueueEnvelope(message.Domain, message.Direction, message.Sender, message.Recipients)
        {
            Id = message.Id,
            ClientAddress = message.ClientAddress,
            Utf8 = message.Utf8,
            DsnRet = message.DsnRet,
            DsnEnvelopeId = message.DsnEnvelopeId,
            RecipientDsn = message.RecipientDsn,
        };
        string queued;
        if (message.BodyRef is { } bodyId)
        {
            // A big message: the queue entry references the same shared body (its reference is added before the quarantine's
            // goes), with the same prefix (docs/architecture.md "Bodies in pieces").
            if (!await queue.EnqueueSharedAsync(envelope, bodyId, body, message.BodyFrom, message.Size, cancellationToken).ConfigureAwait(false))
            {
                throw new GatewayException(ErrorKind.FailedPrecondition, $"Message '{messageId}' cannot be released: its body is no longer stored.");
            }

            queued = message.Id;
        }
        else
        {
            queued = await queue.EnqueueAsync(envelope, body, cancellationToken).ConfigureAwait(false);
        }

        await store.RemoveAsync(owned, messageId).ConfigureAwait(false);
        await log.AppendManyAsync(message.Recipients.Select(r => QuarantineLog.Event(message, r, MessageLogEvents.Released, now,
            $"released from quarantine (held by {QuarantineLog.RuleText(message)}); queued as {queued}")).ToList()).ConfigureAwait(false);
        return message;
    }

    public async Task<QuarantinedMessage> DeleteAsync(string companyId, string? domain, string? id)
    {
        var (owned, messageId) = await ResolveAsync(companyId, domain, id).ConfigureAwait(false);
        var removed = await store.RemoveAsync(owned, messageId).ConfigureAwait(false) ?? throw NotFound(owned, messageId);
        var message = removed.Message;
        await log.AppendManyAsync(message.Recipients.Select(r => QuarantineLog.Event(message, r, MessageLogEvents.Deleted, clock.GetUtcNow(),
            "deleted from quarantine; not delivered")).ToList()).ConfigureAwait(false);
        return message;
    }

    /// <summary>Deletes a domain's messages held longer than the retention; logs <c>expired</c>. Returns how many.</summary>
    public async Task<int> ExpireAsync(string domain, CancellationToken cancellationToken = default)
    {
        var now = clock.GetUtcNow();
        var cutoff = now - options.Retention;
        var count = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var ids = await store.OlderThanAsync(domain, cutoff, 500).ConfigureAwait(false);
            foreach (var id in ids)
            {
                if (await store.RemoveAsync(domain, id).ConfigureAwait(false) is { } removed)
                {
                    count++;
                    var m = removed.Message;
                    await log.AppendManyAsync(m.Recipients.Select(r => QuarantineLog.Event(m, r, MessageLogEvents.Expired, now,
                        $"deleted from quarantine after {options.Retention.TotalDays:0.##} days; not delivered")).ToList()).ConfigureAwait(false);
                }
            }

            if (ids.Count < 500)
            {
                break;
            }
        }

        return count;
    }

    /// <summary>The <c>quarantined</c> log event of one recipient (the intake writes it).</summary>
    private static AddressPattern? Pattern(string? text, string field, List<FieldViolation> violations)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        var probe = new List<FieldViolation>();
        var normalized = RuleValidator.Normalize(new PolicyRule { Id = string.Empty, Senders = [text] }, field, probe);
        if (normalized.Senders.Count == 0)
        {
            violations.Add(new FieldViolation(field, $"'{text.Trim()}' is not an address pattern (a@x.org, *@x.org, x.org, <>)"));
            return null;
        }

        return new AddressPattern(normalized.Senders[0]);
    }

    private async Task<(string Domain, string Id)> ResolveAsync(string companyId, string? domain, string? id)
    {
        if (!MessageId.IsValid(id))
        {
            GatewayException.ThrowInvalid("message_id", "message_id is required and must be an id returned by ListQuarantine");
        }

        var owned = await domains.GetAsync(companyId, domain).ConfigureAwait(false);
        return (owned.Name, id!);
    }

    private static GatewayException NotFound(string domain, string id) =>
        new(ErrorKind.NotFound, $"Message '{id}' is not in the quarantine of '{domain}' (released, deleted or expired already?).");
}
