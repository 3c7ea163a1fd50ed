using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using Gateway.Core.Delivery;
using Gateway.Core.Snapshot;
using Gateway.Deliverer.Smtp;
using Microsoft.AspNetCore.Connections;
using StackExchange.Redis;

namespace Gateway.Deliverer.Intake;

/// <summary>
/// The SMTP intake Postfix relays accepted mail to (SPEC §6), hosted by Kestrel. ESMTP with PIPELINING
/// (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), DSN (RFC 3461) and ENHANCEDSTATUSCODES
/// (RFC 2034). Only trusted networks may connect. The final 250 is sent only once every copy of the
/// message is in Redis (with <c>appendfsync always</c>: on disk), as Postfix's own queue promises.
/// The read loop follows StackExchange.Redis's RespServer: slice, AdvanceTo, expected disconnects caught.
/// </summary>
public sealed partial class SmtpIntakeHandler(IntakeWriter intake, ConfigSnapshot snapshot, DelivererOptions options, QueueOptions queueOptions,
    TimeProvider clock, DelivererMetrics metrics, ILogger<SmtpIntakeHandler> logger) : ConnectionHandler
{
    private readonly IReadOnlyList<IPNetwork> _trusted = options.ParsedTrustedNetworks();
    private readonly string _host = queueOptions.EffectiveHostName;

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var remote = (connection.RemoteEndPoint as IPEndPoint)?.Address ?? IPAddress.None;
        if (remote.IsIPv4MappedToIPv6)
        {
            remote = remote.MapToIPv4();
        }

        var output = connection.Transport.Output;
        var trusted = _trusted.Any(n => n.Contains(remote));
        metrics.Connection(trusted);
        if (!trusted)
        {
            // RFC 5321 §3.1: a server may answer the connection with 554 and then only accept QUIT; closing is simpler.
            LogUntrusted(logger, remote);
            Write(output, $"554 5.7.1 {_host} ESMTP: client {remote} is not in a trusted network\r\n");
            await output.FlushAsync().ConfigureAwait(false);
            return;
        }

        var session = new Session(remote.ToString());
        using var idle = new CancellationTokenSource();
        try
        {
            // Right after a start the snapshot may still be loading: hold the greeting briefly rather than answer
            // every RCPT with 451 (Postfix would defer the mail for its whole retry interval).
            for (var waited = TimeSpan.Zero; !snapshot.IsLoaded && waited < options.SnapshotWait; waited += TimeSpan.FromMilliseconds(50))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), clock, connection.ConnectionClosed).ConfigureAwait(false);
            }

            Write(output, $"220 {_host} ESMTP gateway-deliverer\r\n");
            await output.FlushAsync(connection.ConnectionClosed).ConfigureAwait(false);
            await RunAsync(connection.Transport.Input, output, session, idle, connection.ConnectionClosed).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (idle.IsCancellationRequested && !connection.ConnectionClosed.IsCancellationRequested)
        {
            LogIdleTimeout(logger, session.Client);
            Write(output, $"421 4.4.2 {_host} Error: timeout exceeded\r\n");
            await output.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is ConnectionResetException or ConnectionAbortedException or IOException or OperationCanceledException)
        {
            // The client went away; an unfinished transaction was never acknowledged, so nothing is lost.
        }
        finally
        {
            session.Data?.Dispose();
        }
    }

    private async Task RunAsync(PipeReader input, PipeWriter output, Session session, CancellationTokenSource idle, CancellationToken closed)
    {
        while (true)
        {
            idle.CancelAfter(options.IdleTimeout);
            ReadResult result;
            using (var reg = closed.Register(static s => ((CancellationTokenSource)s!).Cancel(), idle))
            {
                result = await input.ReadAsync(idle.Token).ConfigureAwait(false);
            }

            if (!idle.TryReset())
            {
                throw new OperationCanceledException(idle.Token);
            }

            var step = await ProcessAsync(result.Buffer, output, session).ConfigureAwait(false);
            input.AdvanceTo(step.Consumed, result.Buffer.End);
            await output.FlushAsync(closed).ConfigureAwait(false);
            if (step.Close || result.IsCompleted)
            {
                return;
            }
        }
    }

    private readonly record struct Step(SequencePosition Consumed, bool Close);

    /// <summary>Handles everything complete in the buffer: DATA content, then pipelined commands; replies are flushed by the caller once per read (RFC 2920).</summary>
    private async ValueTask<Step> ProcessAsync(ReadOnlySequence<byte> buffer, PipeWriter output, Session session)
    {
        while (true)
        {
            if (session.SkippingLongLine)
            {
                if (!SmtpParser.SkipLine(ref buffer))
                {
                    return new Step(buffer.Start, false);
                }

                session.SkippingLongLine = false;
                continue;
            }

            if (session.Data is { } data)
            {
                var state = session.DataState;
                var status = DataReader.TryRead(ref buffer, ref state, data, options.MaxMessageSize);
                session.DataState = state;
                if (status != OperationStatus.Done)
                {
                    return new Step(buffer.Start, false);
                }

                // Everything before the final dot is read; later pipelined commands wait until this reply.
                await output.FlushAsync().ConfigureAwait(false);
                Write(output, await FinishDataAsync(session).ConfigureAwait(false) + "\r\n");
                continue;
            }

            var before = buffer.Length;
            var line = SmtpParser.TryReadLine(ref buffer, SmtpParser.MaxCommandLine, out var lineBytes);
            if (line == OperationStatus.NeedMoreData)
            {
                return new Step(buffer.Start, false);
            }

            if (line == OperationStatus.InvalidData)
            {
                // No line end within the limit: drop bytes up to the next one. (A complete over-long line was consumed already.)
                session.SkippingLongLine = buffer.Length == before;
                if (Error(session, output, "500 5.5.2 Error: line too long"))
                {
                    return new Step(buffer.End, true);
                }

                continue;
            }

            var command = SmtpParser.ParseCommand(lineBytes.IsSingleSegment ? lineBytes.FirstSpan : lineBytes.ToArray());
            var (reply, close) = Handle(command, session);
            if (reply.StartsWith('5') ? Error(session, output, reply) : Written(output, reply))
            {
                return new Step(buffer.End, true);
            }

            if (close)
            {
                return new Step(buffer.End, true);
            }
        }
    }

    /// <summary>Counts an error and says whether the connection must close (Postfix: smtpd_hard_error_limit).</summary>
    private bool Error(Session session, PipeWriter output, string reply)
    {
        session.Errors++;
        if (session.Errors >= options.MaxErrors)
        {
            Write(output, reply + "\r\n");
            Write(output, $"421 4.7.0 {_host} Error: too many errors\r\n");
            return true;
        }

        Write(output, reply + "\r\n");
        return false;
    }

    private static bool Written(PipeWriter output, string reply)
    {
        Write(output, reply + "\r\n");
        return false;
    }

    private (string Reply, bool Close) Handle(SmtpCommand command, Session session)
    {
        if (command.Argument is null)
        {
            return ("501 5.5.2 Syntax error: invalid UTF-8", false);
        }

        switch (command.Verb)
        {
            case SmtpVerb.Ehlo:
            case SmtpVerb.Helo:
                if (command.Argument.Length == 0)
                {
                    return ($"501 5.5.4 Syntax: {(command.Verb == SmtpVerb.Ehlo ? "EHLO" : "HELO")} hostname", false);
                }

                session.Reset();
                session.Helo = command.Argument;
                session.Esmtp = command.Verb == SmtpVerb.Ehlo;
                return command.Verb == SmtpVerb.Helo
                    ? ($"250 {_host}", false)
                    : ($"250-{_host}\r\n250-PIPELINING\r\n250-SIZE {options.MaxMessageSize.ToString(CultureInfo.InvariantCulture)}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n{XforwardAnnouncement}250 ENHANCEDSTATUSCODES", false);
            case SmtpVerb.Mail:
                return (Mail(command.Argument, session), false);
            case SmtpVerb.Rcpt:
                return (Rcpt(command.Argument, session), false);
            case SmtpVerb.Data:
                return (Data(session), false);
            case SmtpVerb.Xforward:
                return (Xforward(command.Argument, session), false);
            case SmtpVerb.Rset:
                session.Reset();
                return ("250 2.0.0 Ok", false);
            case SmtpVerb.Noop:
                return ("250 2.0.0 Ok", false);
            case SmtpVerb.Quit:
                return ("221 2.0.0 Bye", true);
            case SmtpVerb.Vrfy:
                return ("502 5.5.1 VRFY command is disabled", false);
            case SmtpVerb.Unknown:
                return ("500 5.5.2 Error: command not recognized", false);
            default:
                return ("502 5.5.1 Error: command not implemented", false);
        }
    }

    /// <summary>
    /// Postfix's XFORWARD (XFORWARD_README; <c>smtp_send_xforward_command = yes</c> in deploy/postfix), before MAIL:
    /// ADDR is the internet client, so client-IP rules see it rather than Postfix; IDENT is Postfix's queue id,
    /// the link from its log and policy requests to the gateway's message id. The intake only talks to trusted
    /// networks, so the attributes are believed. <c>ADDR=IPV6:…</c> carries an IPv6 address; <c>[UNAVAILABLE]</c>
    /// and <c>[TEMPUNAVAIL]</c> mean unknown.
    /// </summary>
    private static readonly string XforwardAnnouncement = "250-XFORWARD " + string.Join(' ', SmtpParser.XforwardAttributes) + "\r\n";

    private static string Xforward(string argument, Session session)
    {
        if (session.Sender is not null)
        {
            return "503 5.5.1 Error: MAIL transaction in progress";
        }

        if (!SmtpParser.TryParseXforward(argument, out var attributes, out var error))
        {
            return "501 5.5.4 " + error;
        }

        foreach (var (name, value) in attributes)
        {
            switch (name)
            {
                case "IDENT":
                    session.ForwardedQueueId = value is { Length: <= 64 } id && id.All(char.IsAsciiLetterOrDigit) ? id : null;
                    break;
                case "ADDR":
                    session.ForwardedClient = value is not null && System.Net.IPAddress.TryParse(value.StartsWith("IPV6:", StringComparison.OrdinalIgnoreCase) ? value[5..] : value, out var ip)
                        ? ip.ToString()
                        : null;
                    break;
            }
        }

        return "250 2.0.0 Ok";
    }

    private string Mail(string argument, Session session)
    {
        if (session.Sender is not null)
        {
            return "503 5.5.1 Error: nested MAIL command";
        }

        if (!SmtpParser.TryParsePath(argument, "FROM:", allowEmpty: true, out var path, out var error))
        {
            return "501 5.1.7 " + error;
        }

        var utf8 = false;
        string? ret = null;
        string? envelopeId = null;
        foreach (var (key, value) in path.Parameters)
        {
            switch (key.ToUpperInvariant())
            {
                case "SIZE" when session.Esmtp:
                    if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var size))
                    {
                        return "501 5.5.4 Bad SIZE parameter";
                    }

                    if (size > options.MaxMessageSize)
                    {
                        return "552 5.3.4 Message size exceeds fixed limit";
                    }

                    break;
                case "BODY" when session.Esmtp:
                    if (!string.Equals(value, "7BIT", StringComparison.OrdinalIgnoreCase) && !string.Equals(value, "8BITMIME", StringComparison.OrdinalIgnoreCase))
                    {
                        return "501 5.5.4 Bad BODY parameter";
                    }

                    break;
                case "SMTPUTF8" when session.Esmtp && value is null:
                    utf8 = true;
                    break;
                case "RET" when session.Esmtp:
                    if (SetOnce(ref ret, SmtpParser.TryParseDsnRet(value, out var r), r, "RET") is { } badRet)
                    {
                        return badRet;
                    }

                    break;
                case "ENVID" when session.Esmtp:
                    if (SetOnce(ref envelopeId, SmtpParser.TryParseDsnEnvelopeId(value, out var envid), envid, "ENVID") is { } badEnvid)
                    {
                        return badEnvid;
                    }

                    break;
                default:
                    return $"555 5.5.4 Unsupported option: {key}";
            }
        }

        // RFC 6531 §3.4: an internationalised address needs the SMTPUTF8 parameter.
        if (!utf8 && !path.Address.All(char.IsAscii))
        {
            return "553 5.6.7 Must declare SMTPUTF8 to send unicode address";
        }

        session.Sender = path.Address;
        session.Utf8 = utf8;
        session.Dsn = new MessageDsn(ret, envelopeId);
        return "250 2.1.0 Ok";
    }

    private string Rcpt(string argument, Session session)
    {
        if (session.Sender is null)
        {
            return "503 5.5.1 Error: need MAIL command";
        }

        if (session.Recipients.Count >= options.MaxRecipients)
        {
            // RFC 5321 §4.5.3.1.10: 452 for too many recipients; the client sends the rest in another transaction.
            return "452 4.5.3 Error: too many recipients";
        }

        if (!SmtpParser.TryParsePath(argument, "TO:", allowEmpty: false, out var path, out var error))
        {
            return "501 5.1.3 " + error;
        }

        string? notify = null;
        string? originalRecipient = null;
        foreach (var (key, value) in path.Parameters)
        {
            switch (key.ToUpperInvariant())
            {
                case "NOTIFY" when session.Esmtp:
                    if (SetOnce(ref notify, SmtpParser.TryParseDsnNotify(value, out var n), n, "NOTIFY") is { } badNotify)
                    {
                        return badNotify;
                    }

                    break;
                case "ORCPT" when session.Esmtp:
                    if (SetOnce(ref originalRecipient, SmtpParser.TryParseDsnOriginalRecipient(value, out var o), o, "ORCPT") is { } badOrcpt)
                    {
                        return badOrcpt;
                    }

                    break;
                default:
                    return $"555 5.5.4 Unsupported option: {key}";
            }
        }

        if (!session.Utf8 && !path.Address.All(char.IsAscii))
        {
            return "553 5.6.7 Must declare SMTPUTF8 to send unicode address";
        }

        var decision = RecipientClassifier.Classify(session.Sender, path.Address, snapshot);
        switch (decision.Decision)
        {
            case RecipientDecision.TryLater:
                metrics.Recipient("try_later");
                return $"451 4.3.0 <{path.Address}>: Temporary lookup failure";
            case RecipientDecision.NoDomain:
                metrics.Recipient("no_domain");
                return $"554 5.7.1 <{path.Address}>: Recipient address rejected: NO-DOMAIN";
        }

        metrics.Recipient("accepted");

        if (!session.Recipients.Any(r => string.Equals(r.Address, path.Address, StringComparison.OrdinalIgnoreCase)))
        {
            session.Recipients.Add(new IntakeRecipient(path.Address, decision,
                notify is null && originalRecipient is null ? null : new RecipientDsn(notify, originalRecipient)));
        }

        return "250 2.1.5 Ok";
    }

    private string Data(Session session)
    {
        if (session.Sender is null)
        {
            return "503 5.5.1 Error: need MAIL command";
        }

        if (session.Recipients.Count == 0)
        {
            return "554 5.5.1 Error: no valid recipients";
        }

        var now = clock.GetUtcNow();
        session.Id = MessageId.New(now);
        session.Data = new PooledBufferWriter();
        session.DataState = new DataState();
        // RFC 5321 §4.4: the trace header goes first; its count guards against loops (§6.3).
        var protocol = session.Utf8 ? "UTF8SMTP" : session.Esmtp ? "ESMTP" : "SMTP";
        var forClause = session.Recipients.Count == 1 ? $"\r\n\tfor <{session.Recipients[0].Address}>" : string.Empty;
        var received = $"Received: from {Sanitize(session.Helo ?? "unknown")} ([{session.Client}])\r\n\tby {_host} (gateway-deliverer) with {protocol} id {session.Id}{forClause};\r\n\t{now.ToString("ddd, dd MMM yyyy HH:mm:ss +0000", CultureInfo.InvariantCulture)}\r\n";
        session.Data.Write(Encoding.UTF8.GetBytes(received));
        return "354 End data with <CR><LF>.<CR><LF>";
    }

    private async Task<string> FinishDataAsync(Session session)
    {
        var data = session.Data!;
        var state = session.DataState;
        try
        {
            if (state.TooBig)
            {
                metrics.Message("rejected");
                return "552 5.3.4 Error: message file too big";
            }

            var hops = HopCounter.CountReceived(data.WrittenSpan);
            if (hops > options.MaxHops)
            {
                LogTooManyHops(logger, session.Id!, hops);
                metrics.Message("rejected");
                return $"554 5.4.6 Too many hops ({hops} Received headers): mail loop?";
            }

            try
            {
                var result = await intake.EnqueueAsync(session.Id!, session.Sender!, session.Recipients, session.Utf8, session.ForwardedClient ?? session.Client,
                    data.WrittenSpan.ToArray(), session.ForwardedQueueId, session.Dsn).ConfigureAwait(false);
                if (result.RejectReply is { } refused)
                {
                    // A policy rule refused every recipient (docs/rules.md); Postfix bounces to the sender.
                    metrics.Message("rejected");
                    return refused;
                }

                metrics.Message(result.Quarantined ? "quarantined" : "queued");
                return $"250 2.0.0 Ok: queued as {string.Join(' ', result.Ids)}";
            }
            catch (DkimUnavailableException)
            {
                // The domain signs its outbound mail and its key cannot be loaded now: never store it unsigned (docs/outbound.md).
                metrics.Message("failed");
                return "451 4.7.0 Error: DKIM signing is temporarily unavailable";
            }
            catch (DomainDeletedException)
            {
                // Every recipient's domain was deleted since RCPT (SPEC §3: from then on NO-DOMAIN).
                metrics.Message("rejected");
                return "554 5.7.1 Recipient address rejected: NO-DOMAIN";
            }
            catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException or DomainDeletedException)
            {
                LogEnqueueFailed(logger, session.Id!, e.Message);
                metrics.Message("failed");
                return "451 4.3.0 Error: queue file write error";
            }
        }
        finally
        {
            session.Reset();
        }
    }

    /// <summary>Takes a DSN parameter that may appear once (RFC 3461 §4): null, or the 501 for a repeated or malformed one.</summary>
    private static string? SetOnce(ref string? slot, bool parsed, string value, string name)
    {
        if (slot is not null || !parsed)
        {
            return $"501 5.5.4 Bad {name} parameter";
        }

        slot = value;
        return null;
    }

    private static string Sanitize(string helo) => new(helo.Where(c => !char.IsControl(c) && c != '(' && c != ')').Take(255).ToArray());

    private static void Write(PipeWriter output, string text)
    {
        var span = output.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        var n = Encoding.UTF8.GetBytes(text, span);
        output.Advance(n);
    }

    private sealed class Session(string client)
    {
        public string Client { get; } = client;

        public string? Helo { get; set; }

        public bool Esmtp { get; set; }

        public string? Sender { get; set; }

        public bool Utf8 { get; set; }

        /// <summary>The MAIL command's RFC 3461 RET and ENVID.</summary>
        public MessageDsn Dsn { get; set; }

        public List<IntakeRecipient> Recipients { get; } = [];

        public string? Id { get; set; }

        public PooledBufferWriter? Data { get; set; }

        public DataState DataState { get; set; }

        public int Errors { get; set; }

        /// <summary>XFORWARD IDENT: the up-stream (Postfix) queue id of the current transaction.</summary>
        public string? ForwardedQueueId { get; set; }

        /// <summary>XFORWARD ADDR: the up-stream client's address.</summary>
        public string? ForwardedClient { get; set; }

        public bool SkippingLongLine { get; set; }

        public void Reset()
        {
            Sender = null;
            Utf8 = false;
            Dsn = default;
            Recipients.Clear();
            Id = null;
            // XFORWARD attributes describe one transaction; Postfix sends them again before the next MAIL.
            ForwardedQueueId = null;
            ForwardedClient = null;
            Data?.Dispose();
            Data = null;
        }
    }

    [LoggerMessage(EventId = 1000, Level = LogLevel.Warning, Message = "Intake: refused client {Client}: not in a trusted network")]
    private static partial void LogUntrusted(ILogger logger, IPAddress client);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Intake: client {Client} idle too long; closing")]
    private static partial void LogIdleTimeout(ILogger logger, string client);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Error, Message = "Intake: message {Id} could not be queued; answered 451: {Reason}")]
    private static partial void LogEnqueueFailed(ILogger logger, string id, string reason);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Warning, Message = "Intake: message {Id} refused with {Hops} Received headers (mail loop?)")]
    private static partial void LogTooManyHops(ILogger logger, string id, int hops);
}
