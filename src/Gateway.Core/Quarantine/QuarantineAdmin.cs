using System.Globalization;
using Gateway.Core.Delivery;
using Gateway.Core.Domains;
using Gateway.Core.Errors;
using Gateway.Core.MessageLog;
using Gateway.Core.Rules;

namespace Gateway.Core.Quarantine;

/// <summary>Quarantine settings (<c>Gateway:Quarantine</c>).</summary>
public sealed class QuarantineOptions
{
    public const string Section = "Gateway:Quarantine";

    /// <summary>How long a message stays in quarantine before it is deleted (SPEC §7: 30 days by default).</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How often the ControlPlane looks for expired messages.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>A release that did not finish within this time (its ControlPlane died) may be taken over by another.</summary>
    public TimeSpan ReleaseClaimTimeout { get; set; } = TimeSpan.FromMinutes(2);

    public static bool IsValid(QuarantineOptions o) =>
        o is not null && o.Retention > TimeSpan.Zero && o.SweepInterval > TimeSpan.Zero && o.ReleaseClaimTimeout > TimeSpan.Zero;
}

/// <summary>
/// Quarantine use cases (SPEC §7): list with filters and paging, release into the delivery queue (delivered
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

        var queued = await queue.EnqueueAsync(new QueueEnvelope(message.Domain, message.Direction, message.Sender, message.Recipients)
        {
            Id = message.Id,
            ClientAddress = message.ClientAddress,
            Utf8 = message.Utf8,
            DsnRet = message.DsnRet,
            DsnEnvelopeId = message.DsnEnvelopeId,
            RecipientDsn = message.RecipientDsn,
        }, body, cancellationToken).ConfigureAwait(false);
        await store.RemoveAsync(owned, messageId).ConfigureAwait(false);
        await log.AppendManyAsync(message.Recipients.Select(r => Event(message, r, MessageLogEvents.Released, now,
            $"released from quarantine (held by {RuleText(message)}); queued as {queued}")).ToList()).ConfigureAwait(false);
        return message;
    }

    public async Task<QuarantinedMessage> DeleteAsync(string companyId, string? domain, string? id)
    {
        var (owned, messageId) = await ResolveAsync(companyId, domain, id).ConfigureAwait(false);
        var removed = await store.RemoveAsync(owned, messageId).ConfigureAwait(false) ?? throw NotFound(owned, messageId);
        var message = removed.Message;
        await log.AppendManyAsync(message.Recipients.Select(r => Event(message, r, MessageLogEvents.Deleted, clock.GetUtcNow(),
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
                    await log.AppendManyAsync(m.Recipients.Select(r => Event(m, r, MessageLogEvents.Expired, now,
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
    public static MessageLogEvent QuarantinedEvent(QuarantinedMessage message, string recipient) =>
        Event(message, recipient, MessageLogEvents.Quarantined, message.QuarantineTime, $"held by {RuleText(message)}");

    private static string RuleText(QuarantinedMessage m) =>
        string.IsNullOrEmpty(m.RuleDescription) ? $"rule {m.RuleId}" : $"rule {m.RuleId} ({m.RuleDescription})";

    private static MessageLogEvent Event(QuarantinedMessage m, string recipient, string name, DateTimeOffset time, string detail) => new()
    {
        Domain = m.Domain, Event = name, Time = time, MessageId = m.Id, Direction = m.Direction, Sender = m.Sender, Recipient = recipient,
        ClientAddress = m.ClientAddress, Program = name == MessageLogEvents.Quarantined ? "deliverer" : "controlplane", Detail = detail,
    };

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
