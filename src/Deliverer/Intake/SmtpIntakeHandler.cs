using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Gateway.Core.Delivery;
using Gateway.Core.MessageLog;
using Gateway.Core.Relay;
using Gateway.Core.Snapshot;
using Gateway.Deliverer.Protection;
using Gateway.Deliverer.Smtp;
using Microsoft.AspNetCore.Connections;
using StackExchange.Redis;

namespace Gateway.Deliverer.Intake;

/// <summary>
/// The intake's connection loop, hosted by Kestrel (requirements §6.2): only trusted networks may connect; everything
/// SMTP is decided by <see cref="SmtpSession"/>, this class only moves bytes and stores messages. The final 250 is sent
/// only once the message is in Redis (with <c>appendfsync always</c>: on disk), as Postfix's own queue promises. The read
/// loop follows StackExchange.Redis's RespServer: slice, AdvanceTo, expected disconnects caught.
/// </summary>
public sealed partial class SmtpIntakeHandler(IntakeWriter intake, RelayDecider relay, ConfigSnapshot snapshot, BufferedMessageLog messageLog,
    DelivererOptions options, QueueOptions queueOptions, TimeProvider clock, DelivererMetrics metrics, ILogger<SmtpIntakeHandler> logger, MessageScanner scanner,
    Gateway.Core.Verification.RecipientVerifier verifier,
    GoogleWorkspaceBinding google,
    SpoolQuota spoolQuota)
    : ConnectionHandler
{
    private const string Program = "deliverer";
    private readonly IReadOnlyList<IPNetwork> _trusted = options.ParsedTrustedNetworks();
    private readonly SmtpSessionSettings _settings = SmtpSessionSettings.From(options, queueOptions.EffectiveHostName);
    private int _sessions;

    /// <summary>The key under which a listener names the relay scope it grants (<see cref="DelivererOptions.InboundListen"/>).</summary>
    public static readonly object ScopeKey = typeof(RelayScope);

    private enum Mode
    {
        Commands,
        Data,
        Chunk,
    }

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var remote = (connection.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None;
        if (remote.IsIPv4MappedToIPv6)
        {
            remote = remote.MapToIPv4();
        }

        var output = connection.Transport.Output;
        // A Unix-socket listener (unix:/path) is reached only by whoever the socket's file mode lets in: trusted like the
        // trusted networks (security review M13); the client address then comes from XFORWARD.
        var trusted = connection.LocalEndPoint is System.Net.Sockets.UnixDomainSocketEndPoint || _trusted.Any(n => n.Contains(remote));
        if (trusted && Interlocked.Increment(ref _sessions) > options.MaxSessions)
        {
            // Bounded memory (requirements §11): each session may hold a message of up to MaxMessageSize. Beyond the cap
            // the client is told to come back (421, RFC 5321 §3.8), as Postfix's smtpd does when its process limit is reached.
            Interlocked.Decrement(ref _sessions);
            metrics.Connection("busy");
            LogBusy(logger, remote, options.MaxSessions);
            Write(output, $"421 4.3.2 {_settings.HostName} Service not available: too many sessions ({options.MaxSessions}), try again later\r\n");
            await output.FlushAsync().ConfigureAwait(false);
            return;
        }

        try
        {
            await SessionAsync(connection, remote, trusted).ConfigureAwait(false);
        }
        finally
        {
            if (trusted)
            {
                Interlocked.Decrement(ref _sessions);
            }
        }
    }

    /// <summary>Intake sessions open now (at most <see cref="DelivererOptions.MaxSessions"/>).</summary>
    public int Sessions => Volatile.Read(ref _sessions);

    private async Task SessionAsync(ConnectionContext connection, IPAddress remote, bool trusted)
    {
        var output = connection.Transport.Output;
        metrics.Connection(trusted ? "accepted" : "untrusted");
        if (!trusted)
        {
            // RFC 5321 §3.1: a server may answer the connection with 554 and then only accept QUIT; closing is simpler.
            LogUntrusted(logger, remote);
            Write(output, $"554 5.7.1 {_settings.HostName} ESMTP: client {remote} is not in a trusted network\r\n");
            await output.FlushAsync().ConfigureAwait(false);
            return;
        }

        var scope = connection.Items.TryGetValue(ScopeKey, out var s) && s is RelayScope listenerScope ? listenerScope : RelayScope.Any;
        using var session = new SmtpSession(_settings, remote, scope, relay.Decide, clock, (id, client) => intake.NewBuffer(id, spoolQuota, client));
        using var idle = new CancellationTokenSource();
        try
        {
            // Right after a start the snapshot may still be loading: hold the greeting briefly rather than answer
            // every RCPT with 4xx (Postfix would defer the mail for its whole retry interval).
            for (var waited = TimeSpan.Zero; !snapshot.IsLoaded && waited < options.SnapshotWait; waited += TimeSpan.FromMilliseconds(50))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), clock, connection.ConnectionClosed).ConfigureAwait(false);
            }

            Write(output, session.Greeting + "\r\n");
            await output.FlushAsync(connection.ConnectionClosed).ConfigureAwait(false);
            await RunAsync(connection.Transport.Input, output, session, idle, connection.ConnectionClosed).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (idle.IsCancellationRequested && !connection.ConnectionClosed.IsCancellationRequested)
        {
            LogIdleTimeout(logger, session.ClientAddress);
            Write(output, $"421 4.4.2 {_settings.HostName} Error: timeout exceeded\r\n");
            await output.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConnectionResetException or ConnectionAbortedException or IOException or OperationCanceledException)
        {
            // The client went away; an unfinished transaction was never acknowledged, so nothing is lost.
        }
    }

    private async Task RunAsync(PipeReader input, PipeWriter output, SmtpSession session, CancellationTokenSource idle, CancellationToken closed)
    {
        var mode = Mode.Commands;
        var skipping = false;
        using var reg = closed.Register(static s => ((CancellationTokenSource)s!).Cancel(), idle);
        while (true)
        {
            idle.CancelAfter(options.IdleTimeout);
            var result = await input.ReadAsync(idle.Token).ConfigureAwait(false);
            if (!idle.TryReset())
            {
                throw new OperationCanceledException(idle.Token);
            }

            var buffer = result.Buffer;
            var close = false;
            while (!close)
            {
                // One unit per step; stop when a step neither consumed bytes nor changed what is read next.
                var before = buffer.Length;
                var step = await StepAsync(ref buffer, output, session, mode, skipping).ConfigureAwait(false);
                var progressed = buffer.Length != before || step.Mode != mode || step.Skipping != skipping;
                (mode, skipping, close) = (step.Mode, step.Skipping, step.Close);
                if (!progressed)
                {
                    break;
                }
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            await output.FlushAsync(closed).ConfigureAwait(false);
            if (session.Data is { FlushDue: true } data)
            {
                // A big message goes to Redis in pieces before more is read (requirements §11, bounded memory).
                await data.FlushAsync().ConfigureAwait(false);
            }

            if (close || result.IsCompleted)
            {
                return;
            }
        }
    }

    private readonly record struct Step(Mode Mode, bool Skipping, bool Close);

    /// <summary>Handles one unit of the buffer (a command line, DATA content, chunk octets); replies are flushed once per read (RFC 2920).</summary>
    private ValueTask<Step> StepAsync(ref ReadOnlySequence<byte> buffer, PipeWriter output, SmtpSession session, Mode mode, bool skipping)
    {
        if (skipping)
        {
            return ValueTask.FromResult(new Step(mode, !SmtpParser.SkipLine(ref buffer), false));
        }

        switch (mode)
        {
            case Mode.Data:
            {
                var state = session.DataState;
                var status = DataReader.TryRead(ref buffer, ref state, session.Data!, options.MaxMessageSize);
                session.DataState = state;
                return status != OperationStatus.Done
                    ? ValueTask.FromResult(new Step(Mode.Data, false, false))
                    : FinishAsync(output, session, session.EndOfData());
            }

            case Mode.Chunk:
            {
                var take = Math.Min(session.ChunkRemaining, buffer.Length);
                session.ChunkOctets(buffer.Slice(0, take));
                buffer = buffer.Slice(take);
                return session.ChunkRemaining > 0
                    ? ValueTask.FromResult(new Step(Mode.Chunk, false, false))
                    : FinishAsync(output, session, session.ChunkRead());
            }
        }

        var before = buffer.Length;
        var line = SmtpParser.TryReadLine(ref buffer, SmtpParser.MaxCommandLine, out var lineBytes);
        if (line == OperationStatus.NeedMoreData)
        {
            return ValueTask.FromResult(new Step(Mode.Commands, false, false));
        }

        if (line == OperationStatus.InvalidData)
        {
            // No line end within the limit: drop bytes up to the next one. (A complete over-long line was consumed already.)
            var tooLong = session.LineTooLong();
            Write(output, tooLong.Text + "\r\n");
            return ValueTask.FromResult(new Step(Mode.Commands, buffer.Length == before, tooLong.Action == SessionAction.Close));
        }

        var reply = session.Command(SmtpParser.ParseCommand(lineBytes.IsSingleSegment ? lineBytes.FirstSpan : lineBytes.ToArray()));
        if (reply is { Request: { } rcpt, Decision: { } accepted } && Gateway.Core.Verification.VerificationRules.Applies(accepted))
        {
            // The domain verifies recipients: the same answer as the policy service gives (usually from the cache it filled).
            return VerifyAsync(output, session, rcpt, accepted);
        }

        Account(reply);
        if (reply.Text.Length > 0)
        {
            Write(output, reply.Text + "\r\n");
        }

        return ValueTask.FromResult(reply.Action switch
        {
            SessionAction.ReadData => new Step(Mode.Data, false, false),
            SessionAction.ReadChunk => new Step(Mode.Chunk, false, false),
            SessionAction.Close => new Step(Mode.Commands, false, true),
            _ => new Step(Mode.Commands, false, false),
        });
    }

    /// <summary>A recipient the relay rule accepted at a domain that verifies recipients: accepted, or withdrawn with 550/450.</summary>
    private async ValueTask<Step> VerifyAsync(PipeWriter output, SmtpSession session, RelayRequest request, RelayDecision accepted)
    {
        // Replies before this one go out first; later pipelined commands wait for it (RFC 2920 keeps the order).
        await output.FlushAsync().ConfigureAwait(false);
        var decision = await verifier.ApplyAsync(request, accepted, Program, CancellationToken.None).ConfigureAwait(false);
        var text = "250 2.1.5 Ok";
        if (decision.Outcome != RelayOutcome.Accept)
        {
            session.Withdraw(request.Recipient);
            text = decision.Refusal!.Value.ForRecipient(request.Recipient);
        }

        Account(new SessionReply(text, SessionAction.None, request, decision));
        Write(output, text + "\r\n");
        return new Step(Mode.Commands, false, false);
    }

    /// <summary>The end of a message or chunk: store it when the session asks, then answer.</summary>
    private async ValueTask<Step> FinishAsync(PipeWriter output, SmtpSession session, SessionReply reply)
    {
        var text = reply.Text;
        if (reply.Action == SessionAction.Store)
        {
            // Everything before the end of the message is answered; later pipelined commands wait for this reply.
            await output.FlushAsync().ConfigureAwait(false);
            text = await StoreAsync(session).ConfigureAwait(false);
        }
        else if (text.StartsWith('5'))
        {
            metrics.Message("rejected");
        }

        if (text.Length > 0)
        {
            Write(output, text + "\r\n");
        }

        return new Step(Mode.Commands, false, reply.Action == SessionAction.Close);
    }

    private async Task<string> StoreAsync(SmtpSession session)
    {
        var m = session.Pending!;
        if (!await m.Body.CompleteAsync().ConfigureAwait(false))
        {
            if (m.Body.OverBudget)
            {
                // The client holds its share of spooled bytes (SpoolQuota): try later, when its other messages are through.
                LogSpoolCap(logger, m.Id, m.Client.Address, spoolQuota.Cap);
                metrics.Message("over_quota");
                return session.Stored(new IntakeResult([], "452 4.3.1 Insufficient system storage"));
            }

            // A piece of a big message did not reach Redis: never store it incomplete.
            LogEnqueueFailed(logger, m.Id, "a piece of the message could not be written");
            metrics.Message("failed");
            return session.NotStored(domainDeleted: false);
        }

        // requirements §3.9: mail through Microsoft 365's shared ranges must carry the customer's own tenant stamp.
        if (relay.ProviderBindingRefusal(m.Recipients.Where(r => r.Direction == Gateway.Core.Mail.Direction.Outbound).Select(r => r.Domain).Distinct(StringComparer.Ordinal),
                m.Client.Address, m.Body.WrittenSpan) is { } binding)
        {
            LogProviderBinding(logger, m.Id, m.Client.Address, binding.Domain, binding.Reason);
            metrics.Message("rejected");
            return session.Stored(new IntakeResult([], "550 5.7.1 Sender not authorised: " + binding.Reason));
        }

        // requirements §3.9: mail through Google's shared ranges must carry the customer's own Google Workspace DKIM signature.
        if (await google.RefusalAsync(m.Recipients.Where(r => r.Direction == Gateway.Core.Mail.Direction.Outbound).Select(r => r.Domain).Distinct(StringComparer.Ordinal),
                m.Client.Address,
                async () => m.Body.Spilled ? (Stream?)await m.Body.OpenAsync().ConfigureAwait(false) : new MemoryStream(m.Body.WrittenSpan.ToArray(), writable: false),
                CancellationToken.None).ConfigureAwait(false) is { } googleRefusal)
        {
            LogProviderBinding(logger, m.Id, m.Client.Address, googleRefusal.Domain, googleRefusal.Reply);
            metrics.Message(googleRefusal.Reply.StartsWith('4') ? "failed" : "rejected");
            return session.Stored(new IntakeResult([], googleRefusal.Reply));
        }

        try
        {
            // A big message was received in pieces (MessageBuffer): the copies share them, and only the head is here. rspamd and
            // clamd read it from Redis as a stream, and each copy's own header fields go in front of it (docs/architecture.md
            // "Bodies in pieces"), so nothing here holds the whole message (requirements §11).
            var spool = m.Body.Spilled ? m.Body : null;
            var body = m.Body.WrittenSpan.ToArray();

            // Scanned before it is stored (requirements §9, docs/protection.md): a refusal or deferral is the client's DATA reply.
            var protection = await scanner.ScanAsync(new IntakeScan(m.Id, m.Sender, m.Recipients, m.Client.Address, m.Client.Helo, m.Client.Name), body,
                spool is null || !scanner.Enabled ? null : new SpooledMessage(spool.Length, spool.OpenRequiredAsync), CancellationToken.None).ConfigureAwait(false);
            if (protection?.Reply is { } verdict)
            {
                metrics.Message(verdict.StartsWith('4') ? "scan_failed" : "rejected");
                return session.Stored(new IntakeResult([], verdict));
            }

            var result = await intake.EnqueueAsync(m.Id, m.Sender, m.Recipients, m.Utf8, m.Client.Address, body, m.PostfixQueueId, m.Dsn, protection, spool)
                .ConfigureAwait(false);
            metrics.Message(result.RejectReply is not null ? "rejected" : result.Quarantined ? "quarantined" : "queued");
            return session.Stored(result);
        }
        catch (DkimUnavailableException)
        {
            // The domain signs its outbound mail and its key cannot be loaded now: never store it unsigned (docs/outbound.md).
            metrics.Message("failed");
            _ = session.NotStored(domainDeleted: false); // ends the transaction
            return "451 4.7.0 Error: DKIM signing is temporarily unavailable";
        }
        catch (DomainDeletedException) when (snapshot.Hold is not null)
        {
            // requirements §4 rule 5: Redis lost the domain's record while this program holds its last good snapshot
            // (suspected data loss, not a deletion): try later, never a permanent NO-DOMAIN from the loss.
            metrics.Message("failed");
            return session.NotStored(domainDeleted: false);
        }
        catch (DomainDeletedException)
        {
            // Every recipient's domain was deleted since RCPT.
            metrics.Message("rejected");
            return session.NotStored(domainDeleted: true);
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
        {
            LogEnqueueFailed(logger, m.Id, e.Message);
            metrics.Message("failed");
            return session.NotStored(domainDeleted: false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Anything else (a bug, an input nobody foresaw) is this message's 451, not a connection dropped without an
            // answer: the client keeps the message and tries again, the session goes on, and the log says why.
            LogStoreFailed(logger, m.Id, e);
            metrics.Message("failed");
            return session.NotStored(domainDeleted: false);
        }
    }

    /// <summary>Metrics and the message log for a recipient the relay rule decided on.</summary>
    private void Account(SessionReply reply)
    {
        if (reply is not { Request: { } request, Decision: { } decision })
        {
            return;
        }

        metrics.Recipient(decision.Outcome switch
        {
            RelayOutcome.Accept => "accepted",
            RelayOutcome.TryLater => "try_later",
            _ when decision.Reason == RelayReason.NoDomain => "no_domain",
            _ => "rejected",
        });
        if (decision.Outcome != RelayOutcome.Accept)
        {
            foreach (var e in RelayLog.Events(request, decision, reply.Text, Program, includeAccepts: false, clock.GetUtcNow()))
            {
                messageLog.Post(e);
            }
        }
    }

    private static void Write(PipeWriter output, string text)
    {
        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        var n = Encoding.UTF8.GetBytes(text, span);
        output.Advance(n);
    }

    [LoggerMessage(EventId = 1000, Level = LogLevel.Warning, Message = "Intake: refused client {Client}: not in a trusted network")]
    private static partial void LogUntrusted(ILogger logger, IPAddress client);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Intake: refused client {Client} with 421: {Limit} sessions are open (Gateway:Deliverer:MaxSessions)")]
    private static partial void LogBusy(ILogger logger, IPAddress client, int limit);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Intake: client {Client} idle too long; closing")]
    private static partial void LogIdleTimeout(ILogger logger, string client);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Intake: message {Id} from {Client} refused at DATA for {Domain}: {Reason}")]
    private static partial void LogProviderBinding(ILogger logger, string id, string client, string domain, string reason);

    [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "Intake: message {Id} refused with 452: client {Client} would hold more than {Cap} bytes in unfinished spools")]
    private static partial void LogSpoolCap(ILogger logger, string id, string client, long cap);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Error, Message = "Intake: message {Id} could not be queued; answered 451: {Reason}")]
    private static partial void LogEnqueueFailed(ILogger logger, string id, string reason);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Error, Message = "Intake: message {Id} failed unexpectedly; answered 451")]
    private static partial void LogStoreFailed(ILogger logger, string id, Exception exception);
}
