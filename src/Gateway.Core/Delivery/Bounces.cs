using Gateway.Core.Mail;
using Gateway.Core.MessageLog;

namespace Gateway.Core.Delivery;

/// <summary>What <see cref="Bounces.SendDsnAsync"/> did: the DSN's queue id (null: none sent) and the recipients it reports.</summary>
public sealed record DsnSent(string? Id, IReadOnlySet<string> Reported)
{
    public static readonly DsnSent None = new(null, new HashSet<string>());

    /// <summary>Whether the sent DSN reports <paramref name="address"/> (its sender asked for it).</summary>
    public bool Reports(string address) => Id is not null && Reported.Contains(address);
}

/// <summary>Sending DSNs through the queue, shared by the Deliverer (5xx, expiry) and the ControlPlane (operator bounce).</summary>
public static class Bounces
{
    /// <summary>
    /// Enqueues the DSN for <paramref name="reported"/> recipients of <paramref name="original"/> to its
    /// envelope sender, from the null sender. None for the null sender or for a DSN (RFC 3464 §2: a DSN
    /// is never sent about a DSN), and only the recipients whose sender asked for it (RFC 3461 NOTIFY: a failure
    /// unless NOTIFY was given without FAILURE, a relay only with SUCCESS). Goes inbound when the sender's domain is
    /// a managed domain with inbound on (<paramref name="senderInboundDomain"/>), else outbound to the sender's MX.
    /// Returns the DSN's queue id and the recipients it reports, or <see cref="DsnSent.None"/> when none is due.
    /// </summary>
    public static async Task<DsnSent> SendDsnAsync(MessageQueue queue, QueuedMessage original, ReadOnlyMemory<byte> body,
        IReadOnlyList<DsnRecipient> reported, string? senderInboundDomain, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(queue);
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(reported);
        var due = Due(original, reported);
        if (original.IsNullSender || original.IsDsn || due.Count == 0)
        {
            return DsnSent.None;
        }

        var dsn = DsnBuilder.Build(original, body.Span, due, queue.Options.EffectiveHostName, now);
        var addresses = due.Select(d => d.Address).ToHashSet(StringComparer.Ordinal);
        if (senderInboundDomain is not null)
        {
            try
            {
                return new DsnSent(await queue.EnqueueAsync(new QueueEnvelope(senderInboundDomain, Direction.Inbound, string.Empty, [original.Sender])
                    { IsDsn = true, Utf8 = original.Utf8 }, dsn, cancellationToken).ConfigureAwait(false), addresses);
            }
            catch (DomainDeletedException)
            {
                // The sender's domain was deleted a moment ago: send the DSN to its MX instead.
            }
        }

        try
        {
            return new DsnSent(await queue.EnqueueAsync(new QueueEnvelope(original.Domain, Direction.Outbound, string.Empty, [original.Sender])
                { IsDsn = true, Utf8 = original.Utf8 }, dsn, cancellationToken).ConfigureAwait(false), addresses);
        }
        catch (DomainDeletedException)
        {
            // The original's own domain is deleted: its mail is discarded (requirements §3), DSNs included.
            return DsnSent.None;
        }
    }

    /// <summary>The reported recipients the sender asked to hear about (RFC 3461 §4.1 NOTIFY).</summary>
    public static IReadOnlyList<DsnRecipient> Due(QueuedMessage original, IReadOnlyList<DsnRecipient> reported)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(reported);
        var recipients = original.RecipientsByAddress();
        return reported.Where(f =>
        {
            var notify = recipients.GetValueOrDefault(f.Address)?.Notify;
            return f.Relayed ? DsnNotify.WantsSuccess(notify) : DsnNotify.WantsFailure(notify);
        }).ToList();
    }
}
