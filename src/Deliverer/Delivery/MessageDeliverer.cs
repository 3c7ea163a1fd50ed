using System.Globalization;
using Gateway.Core.Delivery;
using Gateway.Core.Mail;
using Gateway.Core.MessageLog;
using Gateway.Core.MtaSts;
using Gateway.Core.Routing;
using Gateway.Core.Snapshot;
using MimeKit;

namespace Gateway.Deliverer.Delivery;

/// <summary>
/// One delivery attempt of one queued message, as I/O around two pure functions: <see cref="RouteChoice"/> says which
/// recipients travel together and where (from the current snapshot, requirements §3.14: a change saved while mail waits
/// applies at the next attempt), and <see cref="AttemptResult"/> turns what the destinations said into the new state.
/// In between this class asks Redis for round robin turns, DNS for addresses, and the SMTP transport for transactions;
/// afterwards it logs every step, sends DSNs and schedules the retry. Any exception during an attempt is an outcome
/// (requirements §11.7): the recipients without an answer are deferred with the normal backoff and expire at the
/// message's lifetime; recipients already delivered are written first.
/// </summary>
public sealed partial class MessageDeliverer(
    MessageQueue queue,
    ConfigSnapshot snapshot,
    DestinationResolver resolver,
    SmtpTransport transport,
    GatewaySelf self,
    DestinationLimiter limiter,
    DeadHosts deadHosts,
    BufferedMessageLog log,
    DelivererOptions options,
    QueueOptions queueOptions,
    TimeProvider clock,
    DelivererMetrics metrics,
    ILogger<MessageDeliverer> logger,
    MtaStsPolicySource mtaSts,
    OutboundMetrics outboundMetrics,
    FailureDsnCoalescer coalescer)
{
    private const string Program = "deliverer";

    /// <summary>The longest wait between two tries of a write that Redis was not there for.</summary>
    private static readonly TimeSpan MaxRecordDelay = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Attempts the message held by <paramref name="item"/>; <paramref name="known"/> skips reading it back (intake fast path).
    /// A null body is a shared body, streamed from Redis (<see cref="MessageSource"/>; requirements §11, bounded memory).
    /// </summary>
    public async Task RunAsync(ScheduledItem item, (QueuedMessage Message, byte[]? Body)? known, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        var loaded = known ?? await queue.LoadForAttemptAsync(item).ConfigureAwait(false);
        if (loaded is null)
        {
            // Delivered, deleted, or its domain was removed with force: nothing left to do.
            await queue.CompleteAsync(item, null).ConfigureAwait(false);
            return;
        }

        var (message, bytes) = loaded.Value;
        using var body = new MessageSource(queue, message, bytes);
        var now = clock.GetUtcNow();
        if (message.NextAttempt > now + TimeSpan.FromSeconds(1))
        {
            // A schedule entry older than the message's state (a crash between the two writes): follow the message.
            await queue.CompleteAsync(item, message.NextAttempt).ConfigureAwait(false);
            return;
        }

        if (!message.Pending.Any())
        {
            await queue.SaveStateAsync(message, finished: true).ConfigureAwait(false);
            await queue.CompleteAsync(item, null).ConfigureAwait(false);
            return;
        }

        if (!snapshot.IsLoaded)
        {
            // Our own trouble, not the message's: no attempt is counted.
            await queue.CompleteAsync(item, now + TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            return;
        }

        var started = clock.GetTimestamp();
        var results = new Dictionary<string, RecipientResult>(StringComparer.OrdinalIgnoreCase);
        var busy = false;
        // One deadline for the whole attempt, every host and recipient together (requirements §11.6).
        using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            deadline.CancelAfter(options.AttemptDeadline);
            try
            {
                busy = await AttemptAsync(message, body, results, now >= RetryPolicy.ExpiresAt(message.CreateTime, queueOptions), deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                LogDeadline(logger, message.Id, options.AttemptDeadline);
                var late = DeliveryOutcome.Transient($"attempt deadline of {options.AttemptDeadline} reached");
                foreach (var r in message.Pending)
                {
                    results.TryAdd(r.Address, new RecipientResult(late, null));
                }
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                Poisoned(message, message.Pending.Select(r => r.Address), results, e);
            }
        }

        if (results.Count == 0 && busy)
        {
            // Every destination of the message was full: nothing was attempted, so nothing is counted or written.
            await queue.CompleteAsync(item, clock.GetUtcNow() + options.BusyRetryDelay).ConfigureAwait(false);
            return;
        }

        metrics.Attempt(message.Direction, clock.GetElapsedTime(started));
        await FinishAsync(item, message, body, results, busy ? clock.GetUtcNow() + options.BusyRetryDelay : null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Routes every pending recipient and tries its destinations; fills <paramref name="results"/>. Returns true when
    /// some batch was left untried because its destination had no free slot (it is looked at again soon).
    /// </summary>
    /// <param name="expired">The message's lifetime is over: a busy destination is an outcome then, so the message ends.</param>
    private async Task<bool> AttemptAsync(QueuedMessage message, MessageSource body, Dictionary<string, RecipientResult> results, bool expired, CancellationToken cancellationToken)
    {
        MimeMessage? mime = null;
        var busy = false;
        foreach (var batch in RouteChoice.Batches(message, snapshot))
        {
            if (batch.Outcome is { } outcome)
            {
                if (batch.Held)
                {
                    LogOutboundHeld(logger, message.Id, message.Domain);
                }

                Set(results, batch.Recipients, outcome, null);
                continue;
            }

            var destination = batch.Destination!;
            if (!limiter.TryEnter(destination.Domain))
            {
                if (expired)
                {
                    Set(results, batch.Recipients, DeliveryOutcome.Transient($"{options.MaxConcurrentPerDestination} deliveries to {destination.Domain} were running"), null);
                }

                busy = !expired;
                continue;
            }

            try
            {
                try
                {
                    mime ??= await body.LoadMimeAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (FormatException e)
                {
                    foreach (var r in message.Pending)
                    {
                        results[r.Address] = new RecipientResult(DeliveryOutcome.Permanent("554 5.6.0 The message cannot be parsed: " + e.Message), null);
                    }

                    return false;
                }

                await DeliverBatchAsync(message, mime, batch.Recipients, destination, results, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                // One batch's trouble (a name the resolver cannot take, a bug) is that batch's outcome; the others are still tried.
                Poisoned(message, batch.Recipients, results, e);
            }
            finally
            {
                limiter.Exit(destination.Domain);
            }
        }

        return busy;
    }

    /// <summary>The I/O of one batch: turns and DNS for the route choice, then the endpoints in order until each recipient has a final answer.</summary>
    private async Task DeliverBatchAsync(QueuedMessage message, MimeMessage mime, IReadOnlyList<string> recipients, RouteDestination destination,
        Dictionary<string, RecipientResult> results, CancellationToken cancellationToken)
    {
        IReadOnlyList<Endpoint> endpoints;
        if (destination is InboundDestination inbound)
        {
            // One turn per group per message: requirements §3.5 round robin "message by message, across the whole fleet".
            var turns = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var g in inbound.TurnsNeeded)
            {
                turns[g.Key] = await queue.NextTurnAsync(inbound.Domain, g.Key).ConfigureAwait(false) - 1;
            }

            var resolved = new List<(RouteHost, Resolution)>();
            foreach (var host in RouteChoice.Hosts(inbound, turns))
            {
                resolved.Add((host, await resolver.ResolveHostAsync(host, cancellationToken).ConfigureAwait(false)));
            }

            endpoints = RouteChoice.InboundEndpoints(inbound.Domain, resolved, self, options.MaxAddressesPerAttempt, inbound.Rows);
        }
        else
        {
            var mx = await resolver.ResolveMxAsync(destination.Domain, cancellationToken).ConfigureAwait(false);
            if (mx.Failure is null)
            {
                // MTA-STS (RFC 8461): which MX hosts, and TLS verified for their names (docs/outbound.md); then the pure choice.
                var (allowed, refused) = await MtaStsRouting.ApplyAsync(mtaSts, destination.Domain, mx.Endpoints, outboundMetrics, cancellationToken).ConfigureAwait(false);
                mx = refused is { } r ? Resolution.Fail(r) : new Resolution(allowed, null);
            }

            (endpoints, var failure) = RouteChoice.OutboundEndpoints(destination.Domain, mx, self, options.MaxAddressesPerAttempt);
            if (failure is { } f)
            {
                Set(results, recipients, f, null);
                return;
            }
        }

        var remaining = recipients;
        foreach (var endpoint in endpoints)
        {
            if (remaining.Count == 0)
            {
                break;
            }

            TransactionResult result;
            if (endpoint.Failure is { } failure)
            {
                result = new TransactionResult(new Dictionary<string, DeliveryOutcome>(), failure);
            }
            else if (deadHosts.IsDead(endpoint.Address, out var why))
            {
                // Timed out a moment ago (here or at another Deliverer): not again for every message (requirements §11.6).
                result = new TransactionResult(new Dictionary<string, DeliveryOutcome>(), DeliveryOutcome.Transient($"not tried: it did not answer in time recently ({why})"));
            }
            else if (resolver.Refusal(endpoint.Address) is { } refused)
            {
                // A name that resolves where the gateway must not go (requirements §11): a failed host, never a connection.
                LogDestinationRefused(logger, message.Id, endpoint.ToString(), refused);
                result = new TransactionResult(new Dictionary<string, DeliveryOutcome>(),
                    DeliveryOutcome.Transient($"Not connecting to {endpoint}: {refused}"));
            }
            else
            {
                result = await transport.SendAsync(endpoint, mime, message.Sender, remaining, cancellationToken).ConfigureAwait(false);
                if (result.TimedOut)
                {
                    await deadHosts.MarkAsync(endpoint.Address, result.HostFailure?.Reply ?? "timed out").ConfigureAwait(false);
                }
            }

            var host = endpoint.ToString();
            var still = new List<string>(remaining.Count);
            var tlsText = result.Tls is { } observed ? Gateway.Core.Tls.TlsPolicy.Describe(observed) : null;
            var stsNote = result.Tls is { } seen ? MtaStsRules.WouldFail(endpoint.Tls, seen) : null;
            if (result.Tls is { } used)
            {
                outboundMetrics.Tls(used.Protocol is null ? "none" : used.Verified ? "verified" : "unverified", message.Direction);
            }

            foreach (var r in remaining)
            {
                var outcome = result.Recipients.TryGetValue(r, out var own) ? own : result.HostFailure ?? DeliveryOutcome.Transient("no reply for this recipient");
                results[r] = new RecipientResult(outcome, host);
                log.Post(Event(message, MessageLogEvents.Attempt, r, host, outcome.Reply,
                    stsNote is null ? outcome.Kind.ToString().ToLowerInvariant() : outcome.Kind.ToString().ToLowerInvariant() + "; " + stsNote) with { Tls = tlsText });
                // Transient: the next host at once (requirements §3.5). Delivered or permanent (5xx): final, no other host.
                if (outcome.Kind == OutcomeKind.Transient)
                {
                    still.Add(r);
                }
            }

            LogAttempt(logger, message.Id, host, remaining.Count, remaining.Count - still.Count);
            remaining = still;
        }

        foreach (var r in remaining.Where(r => !results.ContainsKey(r)))
        {
            results[r] = new RecipientResult(DeliveryOutcome.Transient("no host to try"), null);
        }
    }

    private async Task FinishAsync(ScheduledItem item, QueuedMessage message, MessageSource body, Dictionary<string, RecipientResult> results, DateTimeOffset? untriedDue,
        CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        var update = AttemptResult.Apply(message, results, now, queueOptions, untriedDue);
        foreach (var step in update.Steps)
        {
            switch (step.Event)
            {
                case RecipientEvent.Delivered:
                    log.Post(Event(message, MessageLogEvents.Delivered, step.Recipient, step.Host, step.Reply, null));
                    metrics.Delivery("delivered", message.Direction);
                    metrics.Delivered(message.Direction, now - message.CreateTime);
                    break;
                case RecipientEvent.Deferred:
                    log.Post(Event(message, MessageLogEvents.Deferred, step.Recipient, step.Host, step.Reply,
                        "next attempt " + update.Message.NextAttempt.ToString("O", CultureInfo.InvariantCulture)));
                    metrics.Delivery("deferred", message.Direction);
                    break;
            }
        }

        if (update.ReportsAny)
        {
            // The recipients delivered in this attempt first: nothing after this (building and queueing the DSN) may get
            // them delivered again. Then the DSN: once the state below says "failed", nothing would send it again.
            if (AttemptResult.DeliveredOnly(message, results) is { } delivered && update.Failed.Count > 0)
            {
                await WhileRedisAwayAsync(message.Id, () => queue.SaveStateAsync(delivered, finished: false), cancellationToken).ConfigureAwait(false);
            }

            // A copy of a message to several domains: its failures join the other copies' in one DSN (FailureDsnCoalescer);
            // success notices go as before.
            var grouped = message.DsnGroup is not null && update.Failed.Count > 0;
            var dsn = grouped && update.Relayed.Count == 0 ? (DsnSent.None, null)
                : await SendDsnAsync(message, body, grouped ? update with { Failed = [] } : update, now, cancellationToken).ConfigureAwait(false);
            var combined = grouped ? await CollectAsync(message, body, update, cancellationToken).ConfigureAwait(false) : null;
            foreach (var f in update.Failed)
            {
                var detail = grouped ? combined
                    : dsn.Sent.Reports(f.Address) ? "DSN " + dsn.Sent.Id
                    : dsn.Error is { } error ? "no DSN: it could not be built (" + error + ")"
                    : "no DSN (null sender, a DSN itself, or NOTIFY without FAILURE)";
                log.Post(Event(message, f.Expired ? MessageLogEvents.Expired : MessageLogEvents.Bounced, f.Address, f.RemoteHost, f.Reply, detail));
                metrics.Delivery(f.Expired ? "expired" : "bounced", message.Direction);
            }
        }

        if (message.DsnGroup is not null && update.Finished && update.Failed.Count == 0)
        {
            // Done without a failure: the message's combined DSN need not wait for this copy.
            await CollectAsync(message, body, update, cancellationToken).ConfigureAwait(false);
        }

        // The destinations have answered: keep the outcome until Redis takes it. Giving up here (Redis restarting,
        // a cluster failover) would let the lease expire and deliver every recipient again.
        if (!await WhileRedisAwayAsync(message.Id, () => queue.SaveStateAsync(update.Message, update.Finished), cancellationToken).ConfigureAwait(false))
        {
            LogGone(logger, message.Id);
        }

        await WhileRedisAwayAsync(message.Id, () => queue.CompleteAsync(item, update.NextAttempt), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Queues the DSN the update calls for; a DSN that cannot be built is logged and counted, and the recipients' fate stands.</summary>
    private async Task<(DsnSent Sent, string? Error)> SendDsnAsync(QueuedMessage message, MessageSource body, AttemptUpdate update, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        var senderEntry = snapshot.FindEnvelopeDomain(EnvelopeAddress.DomainOf(message.Sender));
        var senderInbound = senderEntry is { InboundEnabled: true } ? senderEntry.Name : null;
        try
        {
            var sent = await WhileRedisAwayAsync(message.Id,
                async () => await Bounces.SendDsnAsync(queue, message, await body.DsnContentAsync().ConfigureAwait(false), [.. update.Failed, .. update.Relayed],
                    senderInbound, now, cancellationToken).ConfigureAwait(false),
                cancellationToken).ConfigureAwait(false);
            return (sent, null);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && !RedisAway(e))
        {
            LogDsnFailed(logger, message.Id, e);
            metrics.AttemptError(message.Direction, "dsn");
            return (DsnSent.None, e.GetType().Name);
        }
    }

    /// <summary>
    /// Adds a grouped copy's failures to its message's combined DSN (and marks it done when finished); returns the log detail.
    /// Redis away is waited out like the state write; any other error is logged and counted, and the recipients' fate stands.
    /// </summary>
    private async Task<string> CollectAsync(QueuedMessage message, MessageSource body, AttemptUpdate update, CancellationToken cancellationToken)
    {
        try
        {
            await WhileRedisAwayAsync(message.Id,
                () => coalescer.CollectAsync(message, update.Failed, body.DsnContentAsync, update.Finished, cancellationToken), cancellationToken).ConfigureAwait(false);
            return "DSN combined with the other copies of message " + message.DsnGroup + " (sent when they are done, or "
                + options.FailureDsnWindow.ToString("c", CultureInfo.InvariantCulture) + " after the first failure)";
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested && !RedisAway(e))
        {
            LogDsnFailed(logger, message.Id, e);
            metrics.AttemptError(message.Direction, "dsn");
            return "no DSN: it could not be collected (" + e.GetType().Name + ")";
        }
    }

    /// <summary>An exception during an attempt: every given recipient still without a result is deferred (the normal backoff, then expiry).</summary>
    private void Poisoned(QueuedMessage message, IEnumerable<string> recipients, Dictionary<string, RecipientResult> results, Exception e)
    {
        LogAttemptFailed(logger, message.Id, message.Domain, e);
        metrics.AttemptError(message.Direction, "attempt");
        var outcome = DeliveryOutcome.Transient("local error: " + e.GetType().Name);
        foreach (var r in recipients)
        {
            results.TryAdd(r, new RecipientResult(outcome, null));
        }
    }

    private static void Set(Dictionary<string, RecipientResult> results, IEnumerable<string> recipients, DeliveryOutcome outcome, string? host)
    {
        foreach (var r in recipients)
        {
            results[r] = new RecipientResult(outcome, host);
        }
    }

    /// <summary>
    /// Runs one queue write after an attempt, again and again while Redis is unreachable (backing off up to
    /// <see cref="MaxRecordDelay"/>), until it succeeds or the process stops. The scheduler renews the lease
    /// whenever Redis answers, so no other Deliverer repeats the delivery unless the outage outlasts the lease; if
    /// the process stops first, the lease expires and the message is attempted again (at-least-once).
    /// </summary>
    private async Task<T> WhileRedisAwayAsync<T>(string id, Func<Task<T>> write, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            try
            {
                return await write().ConfigureAwait(false);
            }
            catch (Exception e) when (RedisAway(e) && !cancellationToken.IsCancellationRequested)
            {
                LogRecordDeferred(logger, id, delay, e.Message);
                await Task.Delay(delay, clock, cancellationToken).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRecordDelay.Ticks));
            }
        }
    }

    private static MessageLogEvent Event(QueuedMessage message, string name, string recipient, string? host, string? reply, string? detail) => new()
    {
        Domain = message.Domain,
        Event = name,
        MessageId = message.Id,
        Direction = message.Direction,
        Sender = message.Sender,
        Recipient = recipient,
        Host = host,
        Reply = reply,
        Detail = detail,
        Program = Program,
    };

    [LoggerMessage(EventId = 1200, Level = LogLevel.Debug, Message = "Message {Id}: {Host} answered for {Count} recipients, {Final} final")]
    private static partial void LogAttempt(ILogger logger, string id, string host, int count, int final);

    /// <summary>
    /// Redis unreachable or not serving yet: no connection, a timeout, or a server that is loading its AOF after a
    /// restart (<c>LOADING</c>), busy with a script, or a cluster without a master for the slot (failover). Any other
    /// error is not waited out: the lease expires and the message is attempted again.
    /// </summary>
    private static bool RedisAway(Exception e) => e switch
    {
        StackExchange.Redis.RedisConnectionException or StackExchange.Redis.RedisTimeoutException or TimeoutException => true,
        StackExchange.Redis.RedisServerException s => s.Message.StartsWith("LOADING", StringComparison.Ordinal) || s.Message.StartsWith("BUSY", StringComparison.Ordinal) ||
                                                     s.Message.StartsWith("TRYAGAIN", StringComparison.Ordinal) || s.Message.StartsWith("CLUSTERDOWN", StringComparison.Ordinal) ||
                                                     s.Message.StartsWith("MASTERDOWN", StringComparison.Ordinal) || s.Message.StartsWith("READONLY", StringComparison.Ordinal),
        _ => false,
    };

    [LoggerMessage(EventId = 1202, Level = LogLevel.Warning, Message = "Message {Id}: the outcome is kept in memory, Redis is unavailable ({Reason}); writing it again in {Delay}")]
    private static partial void LogRecordDeferred(ILogger logger, string id, TimeSpan delay, string reason);

    [LoggerMessage(EventId = 1206, Level = LogLevel.Warning, Message = "Message {Id}: not connecting to {Host}: it is {Reason}; the host counts as failed")]
    private static partial void LogDestinationRefused(ILogger logger, string id, string host, string reason);

    [LoggerMessage(EventId = 1207, Level = LogLevel.Information, Message = "Message {Id}: outbound is disabled for {Domain}; held, not sent")]
    private static partial void LogOutboundHeld(ILogger logger, string id, string domain);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Message {Id} was removed from the queue, or taken by another Deliverer after this one's lease expired, while it was being delivered: this attempt's outcome is dropped")]
    private static partial void LogGone(ILogger logger, string id);

    [LoggerMessage(EventId = 1203, Level = LogLevel.Error, Message = "Message {Id} ({Domain}): the attempt failed with an exception; its recipients without an answer are deferred")]
    private static partial void LogAttemptFailed(ILogger logger, string id, string domain, Exception exception);

    [LoggerMessage(EventId = 1205, Level = LogLevel.Warning, Message = "Message {Id}: the attempt deadline ({Deadline}) was reached; the recipients without an answer are deferred")]
    private static partial void LogDeadline(ILogger logger, string id, TimeSpan deadline);

    [LoggerMessage(EventId = 1204, Level = LogLevel.Error, Message = "Message {Id}: the DSN could not be built or queued; the recipients' outcome stands")]
    private static partial void LogDsnFailed(ILogger logger, string id, Exception exception);
}
