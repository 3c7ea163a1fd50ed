using Gateway.Core.Delivery;
using Gateway.Core.Mail;
using Gateway.Core.Snapshot;
using StackExchange.Redis;

namespace Gateway.Deliverer.Delivery;

/// <summary>
/// One failure DSN per message, not one per copy (requirements §11: no amplification; docs/architecture.md "One failure DSN per
/// message"). A message to N managed domains is N queue copies; each copy that fails recipients adds them to the message's
/// pending-failures record in Redis (<see cref="FailureDsnRecords"/>) instead of queueing a DSN of its own, and every copy
/// says when it is done. The DSN for everything collected goes when the last copy is done, or when
/// <see cref="DelivererOptions.FailureDsnWindow"/> has passed since the first failure, whichever comes first; then later
/// failures start a new window. A message of one copy never comes here: its DSN goes at once, as before.
/// <para>
/// Any Deliverer of the fleet sends a due DSN (the due set is polled), so one that collected failures and died loses nothing.
/// The DSN is sent at least once, as Postfix's bounce daemon does: a worker that dies after queueing the DSN and before
/// removing what it reported leaves the failures to the next one, which sends them again. The other order (remove, then send)
/// would lose the DSN in that case, and a lost failure notice is worse than a repeated one.
/// </para>
/// </summary>
public sealed partial class FailureDsnCoalescer(
    MessageQueue queue,
    ConfigSnapshot snapshot,
    DelivererOptions options,
    QueueOptions queueOptions,
    TimeProvider clock,
    DelivererMetrics metrics,
    ILogger<FailureDsnCoalescer> logger) : BackgroundService
{
    private const int TakeBatch = 100;
    private long _claims;

    private IDatabase Db => queue.BodyDatabase;

    /// <summary>How often the due set is looked at: a tenth of the window, between 100 ms and 10 s.</summary>
    public TimeSpan PollInterval => TimeSpan.FromTicks(Math.Clamp(options.FailureDsnWindow.Ticks / 10, TimeSpan.FromMilliseconds(100).Ticks, TimeSpan.FromSeconds(10).Ticks));

    /// <summary>
    /// Adds a copy's failed recipients (those whose sender asked for a failure DSN) to its message's record and marks the copy
    /// done when <paramref name="finished"/>. Sends the combined DSN at once when this was the last copy. Called before the copy's
    /// new state is saved: a crash in between repeats the attempt, which adds the same failures again.
    /// </summary>
    /// <param name="content">Reads the copy's content as a DSN sees it; only called when a failure is to be reported.</param>
    public async Task<FailureGroupState> CollectAsync(QueuedMessage copy, IReadOnlyList<DsnRecipient> failed, Func<Task<ReadOnlyMemory<byte>>> content, bool finished,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(copy);
        ArgumentNullException.ThrowIfNull(failed);
        ArgumentNullException.ThrowIfNull(content);
        var group = copy.DsnGroup ?? throw new ArgumentException("the copy belongs to no group", nameof(copy));
        var recipients = copy.RecipientsByAddress();
        var failures = copy.IsNullSender || copy.IsDsn ? [] : Bounces.Due(copy, failed)
            .Select(f => new PendingFailure(recipients.GetValueOrDefault(f.Address) ?? new QueuedRecipient { Address = f.Address }, f)).ToList();
        var body = failures.Count > 0 ? await content().ConfigureAwait(false) : ReadOnlyMemory<byte>.Empty;
        var state = await FailureDsnRecords.AddAsync(Db, copy, failures, body, finished, queueOptions.MaxLifetime + TimeSpan.FromDays(1)).ConfigureAwait(false);
        if (failures.Count > 0)
        {
            // After the record: a crash in between leaves the copy unsaved, so its next attempt adds and schedules again.
            await FailureDsnRecords.ScheduleAsync(Db, group, clock.GetUtcNow() + options.FailureDsnWindow).ConfigureAwait(false);
        }

        if (state.AllDone && state.Failures > 0)
        {
            // The last copy: nothing more will come, so no one waits for the window.
            await FlushAsync(group, cancellationToken).ConfigureAwait(false);
        }

        return state;
    }

    /// <summary>
    /// Sends the DSN for a group's waiting failures, unless another worker is sending it now. Removes what it reported only after
    /// the DSN is queued (at least once), then takes the group out of the due set unless failures arrived meanwhile.
    /// </summary>
    public async Task FlushAsync(string group, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(group);
        for (var round = 0; round < 3; round++)
        {
            var token = queue.Token + "." + Interlocked.Increment(ref _claims).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var now = clock.GetUtcNow();
            var claim = await FailureDsnRecords.ClaimAsync(Db, group, token, now, now + queueOptions.Lease).ConfigureAwait(false);
            if (claim.Busy)
            {
                // Another worker sends it now; should it die, its claim ends and the group is due again then.
                await FailureDsnRecords.RescheduleAsync(Db, group, claim.BusyUntil).ConfigureAwait(false);
                return;
            }

            if (claim.Original is not { } envelope || claim.Failures.Count == 0)
            {
                await UnscheduleAsync(group, now).ConfigureAwait(false);
                return;
            }

            var (original, reports) = FailureDsnRecords.Combine(envelope, claim.Failures);
            var senderEntry = snapshot.FindEnvelopeDomain(EnvelopeAddress.DomainOf(original.Sender));
            try
            {
                var sent = await Bounces.SendDsnAsync(queue, original, claim.Content, reports, senderEntry is { InboundEnabled: true } ? senderEntry.Name : null, now,
                    cancellationToken).ConfigureAwait(false);
                LogSent(logger, group, sent.Id ?? "(none)", reports.Count);
            }
            catch (Exception e) when (e is not (RedisException or RedisTimeoutException or TimeoutException or OperationCanceledException))
            {
                // A DSN that cannot be built is dropped, as for a message of one copy: the recipients' fate stands.
                LogFailed(logger, group, e);
                metrics.AttemptError(original.Direction, "dsn");
            }

            var left = await FailureDsnRecords.FinishAsync(Db, group, token, claim.Failures.Select(f => f.Field)).ConfigureAwait(false);
            if (left.Failures > 0 && left.AllDone)
            {
                continue; // the last copies reported while this one was sent: theirs go now too
            }

            if (left.Failures > 0)
            {
                await FailureDsnRecords.RescheduleAsync(Db, group, clock.GetUtcNow() + options.FailureDsnWindow).ConfigureAwait(false);
                return;
            }

            await UnscheduleAsync(group, now).ConfigureAwait(false);
            return;
        }
    }

    /// <summary>Nothing waits: out of the due set; a failure added between the last look and the removal puts it back.</summary>
    private async Task UnscheduleAsync(string group, DateTimeOffset now)
    {
        await FailureDsnRecords.UnscheduleAsync(Db, group).ConfigureAwait(false);
        if (await FailureDsnRecords.WaitingAsync(Db, group).ConfigureAwait(false) > 0)
        {
            await FailureDsnRecords.ScheduleAsync(Db, group, now + options.FailureDsnWindow).ConfigureAwait(false);
        }
    }

    /// <summary>Sends the DSNs whose window has passed, whoever collected their failures.</summary>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (snapshot.IsLoaded)
                {
                    var now = clock.GetUtcNow();
                    foreach (var group in await FailureDsnRecords.TakeDueAsync(Db, now, now + queueOptions.Lease, TakeBatch).ConfigureAwait(false))
                    {
                        await FlushAsync(group, stoppingToken).ConfigureAwait(false);
                    }
                }
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // Redis away or one group's trouble: what was taken is due again when its claim ends.
                LogPollFailed(logger, e.Message);
            }

            try
            {
                await Task.Delay(PollInterval, clock, stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    [LoggerMessage(EventId = 1220, Level = LogLevel.Information, Message = "Message {Group}: one DSN {DsnId} for {Count} failed recipients of its copies")]
    private static partial void LogSent(ILogger logger, string group, string dsnId, int count);

    [LoggerMessage(EventId = 1221, Level = LogLevel.Error, Message = "Message {Group}: the combined DSN could not be built or queued; the recipients' outcome stands")]
    private static partial void LogFailed(ILogger logger, string group, Exception exception);

    [LoggerMessage(EventId = 1222, Level = LogLevel.Warning, Message = "Combined DSNs: looking for due ones failed ({Reason}); trying again")]
    private static partial void LogPollFailed(ILogger logger, string reason);
}
