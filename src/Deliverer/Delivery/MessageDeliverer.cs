using Gateway.Core.Mail;
using System.Globalization;
using Gateway.Core.Delivery;
using Gateway.Core.MessageLog;
using Gateway.Core.MtaSts;
using Gateway.Core.Snapshot;
using MimeKit;
using Gateway.Core.Routing;

namespace Gateway.Deliverer.Delivery;

/// <summary>
/// One delivery attempt of one queued message: reads the current domain config from the snapshot
/// (requirements §3: a change saved while mail waits applies at the next attempt), routes each pending recipient
/// (inbound: the domain's route with fleet-wide round robin; outbound: the recipient domain's MX), tries
/// hosts in order until each recipient has a final answer, then writes the new state, logs every step,
/// sends DSNs for permanent failures and schedules the retry.
/// </summary>
public sealed partial class MessageDeliverer(
    MessageQueue queue,
    ConfigSnapshot snapshot,
    DestinationResolver resolver,
    SmtpTransport transport,
    BufferedMessageLog log,
    QueueOptions queueOptions,
    TimeProvider clock,
    DelivererMetrics metrics,
    ILogger<MessageDeliverer> logger,
    MtaStsPolicySource mtaSts,
    OutboundMetrics outboundMetrics)
{
    private const string Program = "deliverer";

    /// <summary>The longest wait between two tries of a write that Redis was not there for.</summary>
    private static readonly TimeSpan MaxRecordDelay = TimeSpan.FromSeconds(2);

    /// <summary>Attempts the message held by <paramref name="item"/>; <paramref name="known"/> skips reading it back (intake fast path).</summary>
    public async Task RunAsync(ScheduledItem item, (QueuedMessage Message, byte[] Body)? known, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        var loaded = known ?? await queue.LoadAsync(item.Domain, item.Id).ConfigureAwait(false);
        if (loaded is null)
        {
            // Delivered, deleted, or its domain was removed with force: nothing left to do.
            await queue.CompleteAsync(item, null).ConfigureAwait(false);
            return;
        }

        var (message, body) = loaded.Value;
        var now = clock.GetUtcNow();
        if (message.NextAttempt > now + TimeSpan.FromSeconds(1))
        {
            // A schedule entry older than the message's state (a crash between the two writes): follow the message.
            await queue.CompleteAsync(item, message.NextAttempt).ConfigureAwait(false);
            return;
        }

        var pending = message.Pending.Select(r => r.Address).ToList();
        if (pending.Count == 0)
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
        var results = new Dictionary<string, (DeliveryOutcome Outcome, string? Host)>(StringComparer.OrdinalIgnoreCase);
        MimeMessage? mime = null;
        try
        {
            using var stream = new MemoryStream(body, writable: false);
            mime = await MimeMessage.LoadAsync(stream, cancellationToken).ConfigureAwait(false);
        }
        catch (FormatException e)
        {
            foreach (var r in pending)
            {
                results[r] = (DeliveryOutcome.Permanent("554 5.6.0 The message cannot be parsed: " + e.Message), null);
            }
        }

        if (mime is not null)
        {
            foreach (var group in await RouteAsync(message, pending, cancellationToken).ConfigureAwait(false))
            {
                await DeliverGroupAsync(message, mime, group, results, cancellationToken).ConfigureAwait(false);
            }
        }

        metrics.Attempt(message.Direction, clock.GetElapsedTime(started));
        await FinishAsync(item, message, body, results, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Recipients that travel together: same route (inbound) or same domain (outbound), or an immediate outcome.</summary>
    private sealed record Group(IReadOnlyList<string> Recipients, Func<CancellationToken, Task<IReadOnlyList<Endpoint>>>? Endpoints, DeliveryOutcome? Failure);

    private async Task<IReadOnlyList<Group>> RouteAsync(QueuedMessage message, List<string> pending, CancellationToken cancellationToken)
    {
        var groups = new List<Group>();
        if (message.Direction == Direction.Outbound && OutboundHold(message) is { } hold)
        {
            // requirements §3.10: outbound off means off, also for mail queued (or released from quarantine) before.
            // Held, not bounced: turning outbound on again sends it; the message lifetime still applies (then a DSN).
            LogOutboundHeld(logger, message.Id, message.Domain);
            groups.Add(new Group(pending, null, hold));
            return groups;
        }

        if (message.Direction == Direction.Outbound)
        {
            foreach (var byDomain in pending.GroupBy(r => EnvelopeAddress.DomainOf(r).ToLowerInvariant()))
            {
                var domain = byDomain.Key;
                groups.Add(new Group(byDomain.ToList(), async ct =>
                {
                    var resolution = await resolver.ResolveMxAsync(domain, ct).ConfigureAwait(false);
                    if (resolution.Failure is { } f)
                    {
                        throw new RouteFailure(f);
                    }

                    // MTA-STS (RFC 8461): which MX hosts, and TLS verified for their names (docs/outbound.md).
                    var (allowed, refused) = await MtaStsRouting.ApplyAsync(mtaSts, domain, resolution.Endpoints, outboundMetrics, ct).ConfigureAwait(false);
                    return refused is { } r ? throw new RouteFailure(r) : allowed;
                }, domain.Length == 0 ? DeliveryOutcome.Permanent("550 5.1.3 Recipient address has no domain") : null));
            }

            return groups;
        }

        var byPlan = new Dictionary<string, (List<string> Recipients, string Domain, IReadOnlyList<RouteGroup> Plan)>(StringComparer.Ordinal);
        foreach (var r in pending)
        {
            var entry = snapshot.FindEnvelopeDomain(EnvelopeAddress.DomainOf(r));
            if (entry is not { InboundEnabled: true })
            {
                groups.Add(new Group([r], null, DeliveryOutcome.Transient(entry is null
                    ? $"No inbound route: {EnvelopeAddress.DomainOf(r)} is not a managed domain (any more)"
                    : $"No inbound route: inbound is disabled for {entry.Name}")));
                continue;
            }

            var plan = RoutePlanner.Plan(r, entry.Name, entry.Config.Settings.InboundServers);
            if (plan.Count == 0)
            {
                groups.Add(new Group([r], null, DeliveryOutcome.Transient($"No inbound server of {entry.Name} matches {r}")));
                continue;
            }

            var key = entry.Name + "/" + RoutePlanner.PlanKey(plan);
            if (!byPlan.TryGetValue(key, out var bucket))
            {
                bucket = ([], entry.Name, plan);
                byPlan[key] = bucket;
            }

            bucket.Recipients.Add(r);
        }

        foreach (var (recipients, domain, plan) in byPlan.Values)
        {
            groups.Add(new Group(recipients, async ct =>
            {
                // One turn per group per message: requirements §3 round robin "message by message, across the whole fleet".
                var turns = new Dictionary<RouteGroup, long>();
                foreach (var g in plan.Where(g => g.NeedsTurn))
                {
                    turns[g] = await queue.NextTurnAsync(domain, g.Key).ConfigureAwait(false) - 1;
                }

                var endpoints = new List<Endpoint>();
                var rows = snapshot.Find(domain)?.Config.Settings.InboundServers ?? [];
                foreach (var host in RoutePlanner.Order(plan, g => turns[g]))
                {
                    var resolution = await resolver.ResolveHostAsync(host, ct).ConfigureAwait(false);
                    var tls = Gateway.Core.Tls.TlsPolicy.ForInboundHost(rows, host); // the row's tls (requirements §10)
                    endpoints.AddRange(resolution.Failure is { } f ? [new Endpoint(host.Host, new System.Net.IPEndPoint(System.Net.IPAddress.None, host.Port)) { Unresolved = f }]
                        : resolution.Endpoints.Select(e => e with { Tls = tls }));
                }

                return endpoints;
            }, null));
        }

        return groups;
    }

    private async Task DeliverGroupAsync(QueuedMessage message, MimeMessage mime, Group group,
        Dictionary<string, (DeliveryOutcome Outcome, string? Host)> results, CancellationToken cancellationToken)
    {
        if (group.Failure is { } immediate)
        {
            foreach (var r in group.Recipients)
            {
                results[r] = (immediate, null);
            }

            return;
        }

        IReadOnlyList<Endpoint> endpoints;
        try
        {
            endpoints = await group.Endpoints!(cancellationToken).ConfigureAwait(false);
        }
        catch (RouteFailure f)
        {
            foreach (var r in group.Recipients)
            {
                results[r] = (f.Outcome, null);
            }

            return;
        }

        var remaining = group.Recipients.ToList();
        foreach (var endpoint in endpoints)
        {
            if (remaining.Count == 0)
            {
                break;
            }

            TransactionResult result;
            if (endpoint.Unresolved is { } unresolved)
            {
                result = new TransactionResult(new Dictionary<string, DeliveryOutcome>(), unresolved);
            }
            else if (resolver.IsLoop(endpoint.Address))
            {
                result = new TransactionResult(new Dictionary<string, DeliveryOutcome>(),
                    DeliveryOutcome.Permanent($"554 5.4.6 Mail for {EnvelopeAddress.DomainOf(remaining[0])} loops back to myself ({endpoint})"));
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
                results[r] = (outcome, host);
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
            results[r] = (DeliveryOutcome.Transient("no host to try"), null);
        }
    }

    private async Task FinishAsync(ScheduledItem item, QueuedMessage message, byte[] body,
        Dictionary<string, (DeliveryOutcome Outcome, string? Host)> results, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        var attempts = message.Attempts + 1;
        var anyTransient = results.Values.Any(v => v.Outcome.Kind == OutcomeKind.Transient);
        var next = anyTransient ? RetryPolicy.NextAttempt(message.CreateTime, attempts, now, queueOptions) : null;
        var expired = anyTransient && next is null;

        var failed = new List<DsnRecipient>();
        var relayed = new List<DsnRecipient>(); // NOTIFY=SUCCESS: a "relayed" notice (RFC 3461 §6.2.1)
        var recipients = new List<QueuedRecipient>(message.Recipients.Count);
        string? lastError = message.LastError;
        foreach (var r in message.Recipients)
        {
            if (r.State != RecipientState.Pending || !results.TryGetValue(r.Address, out var res))
            {
                recipients.Add(r);
                continue;
            }

            var (outcome, host) = res;
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
                    log.Post(Event(message, MessageLogEvents.Delivered, r.Address, host, outcome.Reply, null));
                    metrics.Delivery("delivered", message.Direction);
                    if (DsnNotify.WantsSuccess(r.Notify))
                    {
                        relayed.Add(new DsnRecipient(r.Address, outcome.Reply, host, false, Relayed: true));
                    }

                    metrics.Delivered(message.Direction, now - message.CreateTime);
                    break;
                case OutcomeKind.Permanent:
                    failed.Add(new DsnRecipient(r.Address, outcome.Reply, host, false));
                    break;
                case OutcomeKind.Transient when expired:
                    failed.Add(new DsnRecipient(r.Address, outcome.Reply, host, true));
                    break;
                default:
                    log.Post(Event(message, MessageLogEvents.Deferred, r.Address, host, outcome.Reply,
                        "next attempt " + next!.Value.ToString("O", CultureInfo.InvariantCulture)));
                    metrics.Delivery("deferred", message.Direction);
                    break;
            }
        }

        var finished = recipients.All(r => r.State != RecipientState.Pending);
        var updated = message with
        {
            Recipients = recipients,
            Attempts = attempts,
            FirstFailure = message.FirstFailure ?? (anyTransient || failed.Count > 0 ? now : null),
            LastError = lastError,
            NextAttempt = next ?? now,
        };

        // The DSN first: once the state below says "failed", nothing would send it again.
        if (failed.Count > 0 || relayed.Count > 0)
        {
            var senderEntry = snapshot.FindEnvelopeDomain(EnvelopeAddress.DomainOf(message.Sender));
            var senderInbound = senderEntry is { InboundEnabled: true } ? senderEntry.Name : null;
            var dsn = await WhileRedisAwayAsync(message.Id, () => Bounces.SendDsnAsync(queue, message, body, [.. failed, .. relayed], senderInbound, now, cancellationToken),
                cancellationToken).ConfigureAwait(false);
            foreach (var f in failed)
            {
                var detail = dsn.Reports(f.Address) ? "DSN " + dsn.Id : "no DSN (null sender, a DSN itself, or NOTIFY without FAILURE)";
                log.Post(Event(message, f.Expired ? MessageLogEvents.Expired : MessageLogEvents.Bounced, f.Address, f.RemoteHost, f.Reply, detail));
                metrics.Delivery(f.Expired ? "expired" : "bounced", message.Direction);
            }
        }

        // The destinations have answered: keep the outcome until Redis takes it. Giving up here (Redis restarting,
        // a cluster failover) would let the lease expire and deliver every recipient again.
        if (!await WhileRedisAwayAsync(message.Id, () => queue.SaveStateAsync(updated, finished), cancellationToken).ConfigureAwait(false))
        {
            LogGone(logger, message.Id);
        }

        await WhileRedisAwayAsync(message.Id, () => queue.CompleteAsync(item, finished ? null : updated.NextAttempt), cancellationToken).ConfigureAwait(false);
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

    private sealed class RouteFailure(DeliveryOutcome outcome) : Exception(outcome.Reply)
    {
        public DeliveryOutcome Outcome { get; } = outcome;
    }

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

    [LoggerMessage(EventId = 1203, Level = LogLevel.Warning, Message = "Message {Id}: not connecting to {Host}: it is {Reason}; the host counts as failed")]
    private static partial void LogDestinationRefused(ILogger logger, string id, string host, string reason);

    /// <summary>
    /// Why an outbound copy must wait instead of leaving: its domain's outbound relay is off (null: it may leave). The
    /// gateway's own DSNs are not the customer's outbound mail (an inbound-only domain's bounces go out this way).
    /// </summary>
    private DeliveryOutcome? OutboundHold(QueuedMessage message) =>
        !message.IsDsn && snapshot.Find(message.Domain) is { } entry && !entry.Outbound.Enabled
            ? DeliveryOutcome.Transient($"Outbound is disabled for {entry.Name}: held until outbound is turned on again")
            : null;

    [LoggerMessage(EventId = 1204, Level = LogLevel.Information, Message = "Message {Id}: outbound is disabled for {Domain}; held, not sent")]
    private static partial void LogOutboundHeld(ILogger logger, string id, string domain);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Information, Message = "Message {Id} was removed from the queue while it was being delivered")]
    private static partial void LogGone(ILogger logger, string id);
}
