using Gateway.Core.MessageLog;

namespace Gateway.Core.Delivery;

/// <summary>Sending DSNs through the queue, shared by the Deliverer (5xx, expiry) and the ControlPlane (operator bounce).</summary>
public static class Bounces
{
    /// <summary>
    /// Enqueues the DSN for <paramref name="failed"/> recipients of <paramref name="original"/> to its
    /// envelope sender, from the null sender. None for the null sender or for a DSN (RFC 3464 §2: a DSN
    /// is never sent about a DSN), and only the recipients whose sender asked for it (RFC 3461 NOTIFY: a failure
    /// unless NOTIFY was given without FAILURE, a relay only with SUCCESS). Goes inbound when the sender's domain is
    /// a managed domain with inbound on (<paramref name="senderInboundDomain"/>), else outbound to the sender's MX.
    /// Returns the DSN's queue id, or null when none is due.
    /// </summary>
    public static async Task<string?> SendDsnAsync(MessageQueue queue, QueuedMessage original, ReadOnlyMemory<byte> body,
        IReadOnlyList<DsnRecipient> failed, string? senderInboundDomain, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(failed);
        var due = Due(original, failed);
        if (original.IsNullSender || original.IsDsn || due.Count == 0)
        {
            return null;
        }

        var dsn = DsnBuilder.Build(original, body.Span, due, queue.Options.EffectiveHostName, now);
        if (senderInboundDomain is not null)
        {
            try
            {
                return await queue.EnqueueAsync(new QueueEnvelope(senderInboundDomain, Directions.Inbound, string.Empty, [original.Sender])
                    { IsDsn = true, Utf8 = original.Utf8 }, dsn, cancellationToken).ConfigureAwait(false);
            }
            catch (DomainDeletedException)
            {
                // The sender's domain was deleted a moment ago: send the DSN to its MX instead.
            }
        }

        try
        {
            return await queue.EnqueueAsync(new QueueEnvelope(original.Domain, Directions.Outbound, string.Empty, [original.Sender])
                { IsDsn = true, Utf8 = original.Utf8 }, dsn, cancellationToken).ConfigureAwait(false);
        }
        catch (DomainDeletedException)
        {
            // The original's own domain is deleted: its mail is discarded (SPEC §3), DSNs included.
            return null;
        }
    }

    /// <summary>The reported recipients the sender asked to hear about (RFC 3461 §4.1 NOTIFY).</summary>
    public static IReadOnlyList<DsnRecipient> Due(QueuedMessage original, IReadOnlyList<DsnRecipient> reported)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(reported);
        return reported.Where(f =>
        {
            var notify = original.Recipients.FirstOrDefault(r => string.Equals(r.Address, f.Address, StringComparison.Ordinal))?.Notify;
            return f.Relayed ? DsnNotify.WantsSuccess(notify) : DsnNotify.WantsFailure(notify);
        }).ToList();
    }
}
