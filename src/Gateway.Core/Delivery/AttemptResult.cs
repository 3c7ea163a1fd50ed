namespace Gateway.Core.Delivery;

/// <summary>What one attempt got for one recipient: the outcome and the host that gave it (null: decided without a connection).</summary>
public readonly record struct RecipientResult(DeliveryOutcome Outcome, string? Host);

/// <summary>What became of a recipient after an attempt (message log event and metric).</summary>
public enum RecipientEvent
{
    Delivered,

    /// <summary>Still pending: tried again at <see cref="AttemptUpdate.NextAttempt"/>.</summary>
    Deferred,

    /// <summary>Failed for good (5xx): a DSN when the sender asked for it.</summary>
    Bounced,

    /// <summary>Still failing at the end of the message's lifetime: failed for good, a DSN when asked for.</summary>
    Expired,
}

/// <summary>One recipient's step, for the message log.</summary>
public sealed record RecipientStep(string Recipient, RecipientEvent Event, string? Host, string Reply);

/// <summary>The state after an attempt and everything that follows from it.</summary>
/// <param name="Message">The new state to store (recipients, attempts, last error, next attempt).</param>
/// <param name="Finished">No recipient is pending: the message leaves the queue.</param>
/// <param name="NextAttempt">When the pending recipients are tried again; null when finished.</param>
/// <param name="Steps">Per recipient with a result, in queue order.</param>
/// <param name="Failed">Recipients to report as failed (bounced or expired) in a DSN.</param>
/// <param name="Relayed">Delivered recipients whose sender asked for a success notice (RFC 3461 NOTIFY=SUCCESS).</param>
public sealed record AttemptUpdate(QueuedMessage Message, bool Finished, DateTimeOffset? NextAttempt, IReadOnlyList<RecipientStep> Steps,
    IReadOnlyList<DsnRecipient> Failed, IReadOnlyList<DsnRecipient> Relayed)
{
    /// <summary>A DSN may be due (the sender's NOTIFY and the null-sender rule decide: <see cref="Bounces"/>).</summary>
    public bool ReportsAny => Failed.Count > 0 || Relayed.Count > 0;
}

/// <summary>
/// The state update after a delivery attempt as a pure function (requirements §6.6, §6.7): per recipient, delivered (2xx), failed
/// for good (5xx), or still pending (4xx and every local trouble) with the next attempt from <see cref="RetryPolicy"/>;
/// once the message's lifetime is over, pending recipients expire. A recipient without a result keeps its state.
/// </summary>
public static class AttemptResult
{
    /// <summary>The new state of <paramref name="message"/> after an attempt at <paramref name="now"/> that got <paramref name="results"/>.</summary>
    /// <param name="untriedDue">
    /// When pending recipients that were not tried in this attempt (their destination was busy) are due again; the next
    /// attempt is the earlier of this and the retry of transient failures.
    /// </param>
    public static AttemptUpdate Apply(QueuedMessage message, IReadOnlyDictionary<string, RecipientResult> results, DateTimeOffset now, QueueOptions options,
        DateTimeOffset? untriedDue = null)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(results);
        ArgumentNullException.ThrowIfNull(options);
        var attempts = message.Attempts + 1;
        var anyTransient = results.Values.Any(v => v.Outcome.Kind == OutcomeKind.Transient);
        var next = anyTransient ? RetryPolicy.NextAttempt(message.CreateTime, attempts, now, options) : null;
        var expired = anyTransient && next is null;

        var steps = new List<RecipientStep>(results.Count);
        var failed = new List<DsnRecipient>();
        var relayed = new List<DsnRecipient>(); // NOTIFY=SUCCESS: a "relayed" notice (RFC 3461 §6.2.1)
        var recipients = new List<QueuedRecipient>(message.Recipients.Count);
        var lastError = message.LastError;
        foreach (var r in message.Recipients)
        {
            if (r.State != RecipientState.Pending || !results.TryGetValue(r.Address, out var result))
            {
                recipients.Add(r);
                continue;
            }

            var (outcome, host) = result;
            var state = outcome.Kind switch
            {
                OutcomeKind.Delivered => RecipientState.Delivered,
                OutcomeKind.Permanent => RecipientState.Failed,
                _ => expired ? RecipientState.Failed : RecipientState.Pending,
            };
            recipients.Add(r with { State = state, LastReply = outcome.Reply, LastHost = host });
            if (outcome.Kind != OutcomeKind.Delivered)
            {
                lastError = host is null ? outcome.Reply : $"{host}: {outcome.Reply}";
            }

            switch (outcome.Kind)
            {
                case OutcomeKind.Delivered:
                    steps.Add(new RecipientStep(r.Address, RecipientEvent.Delivered, host, outcome.Reply));
                    if (DsnNotify.WantsSuccess(r.Notify) && message.Direction != Mail.Direction.Inbound)
                    {
                        relayed.Add(new DsnRecipient(r.Address, outcome.Reply, host, false, Relayed: true));
                    }

                    break;
                case OutcomeKind.Permanent:
                    steps.Add(new RecipientStep(r.Address, RecipientEvent.Bounced, host, outcome.Reply));
                    failed.Add(new DsnRecipient(r.Address, outcome.Reply, host, false));
                    break;
                case OutcomeKind.Transient when expired:
                    steps.Add(new RecipientStep(r.Address, RecipientEvent.Expired, host, outcome.Reply));
                    failed.Add(new DsnRecipient(r.Address, outcome.Reply, host, true));
                    break;
                default:
                    steps.Add(new RecipientStep(r.Address, RecipientEvent.Deferred, host, outcome.Reply));
                    break;
            }
        }

        var finished = recipients.All(r => r.State != RecipientState.Pending);
        if (finished && message.Direction == Mail.Direction.Inbound)
        {
            // Inbound mail comes from unauthenticated internet clients: its success notices go out once, when the message is
            // finished, for every recipient delivered in any attempt (DsnNotify.ForInboundCopy keeps SUCCESS in one copy only).
            relayed.AddRange(recipients.Where(r => r.State == RecipientState.Delivered && DsnNotify.WantsSuccess(r.Notify))
                .Select(r => new DsnRecipient(r.Address, r.LastReply ?? "250 2.0.0 Ok", r.LastHost, false, Relayed: true)));
        }
        var untried = untriedDue is not null && message.Recipients.Any(r => r.State == RecipientState.Pending && !results.ContainsKey(r.Address));
        var due = untried && (next is null || untriedDue < next) ? untriedDue : next;
        var updated = message with
        {
            Recipients = recipients,
            Attempts = attempts,
            FirstFailure = message.FirstFailure ?? (anyTransient || failed.Count > 0 ? now : null),
            LastError = lastError,
            NextAttempt = due ?? now,
        };
        return new AttemptUpdate(updated, finished, finished ? null : due ?? now, steps, failed, relayed);
    }

    /// <summary>
    /// The state with only the recipients delivered in this attempt marked delivered (nothing else changed), or null when
    /// none was: written before anything else that could fail (the DSN), so a delivered recipient is never sent again
    /// because a later step of the same attempt failed.
    /// </summary>
    public static QueuedMessage? DeliveredOnly(QueuedMessage message, IReadOnlyDictionary<string, RecipientResult> results)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(results);
        var any = false;
        var recipients = message.Recipients.Select(r =>
        {
            if (r.State == RecipientState.Pending && results.TryGetValue(r.Address, out var res) && res.Outcome.Kind == OutcomeKind.Delivered)
            {
                any = true;
                return r with { State = RecipientState.Delivered, LastReply = res.Outcome.Reply, LastHost = res.Host };
            }

            return r;
        }).ToList();
        return any ? message with { Recipients = recipients } : null;
    }
}
