using System.Buffers;
using Gateway.Core.Domains;
using System.Globalization;
using System.Net;
using System.Text;
using Gateway.Core.Delivery;
using Gateway.Core.Mail;
using Gateway.Core.Relay;
using Gateway.Deliverer.Smtp;

namespace Gateway.Deliverer.Intake;

/// <summary>What the connection loop must do after a reply.</summary>
public enum SessionAction
{
    /// <summary>Send the reply and read the next command.</summary>
    None = 0,

    /// <summary>Send the reply and close the connection.</summary>
    Close,

    /// <summary>Send the reply (354), then read DATA content into <see cref="SmtpSession.Data"/> until the final dot.</summary>
    ReadData,

    /// <summary>Read <see cref="SmtpSession.ChunkRemaining"/> octets of a BDAT chunk (RFC 3030), then call <see cref="SmtpSession.ChunkRead"/>.</summary>
    ReadChunk,

    /// <summary>The message is complete: store <see cref="SmtpSession.Pending"/>, then call <see cref="SmtpSession.Stored"/> or <see cref="SmtpSession.NotStored"/> for the reply.</summary>
    Store,
}

/// <summary>One reply of the session and what follows it; a refused recipient carries the relay question and answer for the log.</summary>
public readonly record struct SessionReply(string Text, SessionAction Action = SessionAction.None, RelayRequest? Request = null, RelayDecision? Decision = null);

/// <summary>Who handed the message in: the connection's peer, or the client Postfix names in XFORWARD.</summary>
/// <param name="Address">The SMTP client's address: XFORWARD ADDR when given, else the connection's peer.</param>
/// <param name="Name">XFORWARD NAME (the client's verified host name), when known.</param>
/// <param name="Helo">XFORWARD HELO, else the HELO/EHLO given on this connection.</param>
/// <param name="Peer">The connection's own peer (Postfix, or a local process).</param>
public sealed record IntakeClient(string Address, string? Name, string? Helo, string Peer);

/// <summary>A complete message the session wants stored.</summary>
public sealed record PendingMessage(string Id, string Sender, IReadOnlyList<IntakeRecipient> Recipients, bool Utf8, IntakeClient Client, MessageDsn Dsn,
    string? PostfixQueueId, MessageBuffer Body);

/// <summary>Limits and names the session works with.</summary>
public sealed record SmtpSessionSettings(string HostName, long MaxMessageSize, int MaxRecipients, int MaxErrors, int MaxHops)
{
    public static SmtpSessionSettings From(DelivererOptions options, string hostName)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new(hostName, options.MaxMessageSize, options.MaxRecipients, options.MaxErrors, options.MaxHops);
    }
}

/// <summary>
/// The intake's SMTP server session (requirements §6.2, §11.2) as a state machine without I/O: commands and data
/// events in, replies and actions out. ESMTP with PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152),
/// SMTPUTF8 (RFC 6531), DSN (RFC 3461), CHUNKING (RFC 3030), ENHANCEDSTATUSCODES (RFC 2034) and Postfix's XFORWARD.
/// Every RCPT gets the relay decision of <see cref="RelayRules"/> (through <paramref name="relay"/>) with the real
/// client: XFORWARD ADDR when the peer sent one (only trusted networks reach the intake), else the peer itself, and the
/// listener's scope. A local process talking to the intake therefore gets no more than Postfix's client would.
/// Addresses are put in canonical form once (<see cref="EnvelopeAddress"/>); everything after uses that form.
/// <paramref name="buffers"/> makes the buffer for a message id and its real client (the intake's spills big messages to Redis in pieces,
/// <see cref="MessageBuffer"/>); by default a message stays in memory.
/// </summary>
public sealed class SmtpSession(SmtpSessionSettings settings, IPAddress peer, RelayScope scope, Func<RelayRequest, RelayDecision> relay, TimeProvider clock,
    Func<string, string, MessageBuffer>? buffers = null)
    : IDisposable
{
    /// <summary>Postfix's XFORWARD attributes (XFORWARD_README), announced in EHLO.</summary>
    private static readonly string XforwardAnnouncement = "250-XFORWARD " + string.Join(' ', SmtpParser.XforwardAttributes) + "\r\n";

    private readonly string _peer = peer.IsIPv4MappedToIPv6 ? peer.MapToIPv4().ToString() : peer.ToString();
    private readonly List<IntakeRecipient> _recipients = [];
    private string? _helo;
    private bool _esmtp;
    private string? _sender;
    private bool _utf8;
    private long? _announcedSize;
    private MessageDsn _dsn;
    private string? _id;
    private int _errors;
    private bool _chunking;
    private bool _chunkLast;
    private string? _chunkRefusal;

    // XFORWARD attributes describe one transaction; Postfix sends them again before the next MAIL.
    private string? _forwardedAddress;
    private string? _forwardedName;
    private string? _forwardedHelo;
    private string? _forwardedQueueId;

    public string Greeting => $"220 {settings.HostName} ESMTP gateway-deliverer";

    /// <summary>The message content being received (DATA or BDAT), with the trace header already in front.</summary>
    public MessageBuffer? Data { get; private set; }

    /// <summary>Progress of DATA through <see cref="DataReader"/>; the connection loop keeps it here between reads.</summary>
    public DataState DataState { get; set; }

    /// <summary>Octets of the current BDAT chunk still to read.</summary>
    public long ChunkRemaining { get; set; }

    /// <summary>After <see cref="SessionAction.Store"/>: the message to store.</summary>
    public PendingMessage? Pending { get; private set; }

    /// <summary>The client as the log knows it (XFORWARD ADDR or the peer).</summary>
    public string ClientAddress => _forwardedAddress ?? _peer;

    /// <summary>One command line, parsed (<see cref="SmtpParser.ParseCommand"/>).</summary>
    public SessionReply Command(SmtpCommand command)
    {
        var reply = Handle(command);
        return reply.Text.StartsWith('5') ? CountError(reply) : reply;
    }

    /// <summary>A command line longer than the limit was dropped.</summary>
    public SessionReply LineTooLong() => CountError(new SessionReply("500 5.5.2 Error: line too long"));

    /// <summary>The final dot of DATA was read (<see cref="DataReader"/> returned Done).</summary>
    public SessionReply EndOfData() => Complete(DataState.TooBig);

    /// <summary>All octets of the current BDAT chunk were read (<see cref="ChunkOctets"/>): its reply.</summary>
    public SessionReply ChunkRead()
    {
        if (_chunkRefusal is { } refusal)
        {
            _chunkRefusal = null;
            return CountError(new SessionReply(refusal));
        }

        if (_chunkLast)
        {
            _chunking = false;
            var state = DataState;
            DataReader.EndChunks(ref state, Data!, settings.MaxMessageSize);
            DataState = state;
            return Complete(DataState.TooBig);
        }

        return new SessionReply($"250 2.0.0 Ok: {DataState.Size.ToString(CultureInfo.InvariantCulture)} octets received");
    }

    /// <summary>
    /// Octets of the current BDAT chunk, as they arrive: kept in <see cref="Data"/> up to the size limit (RFC 3030 §2: the
    /// octets are the message, no dot-stuffing), dropped when the chunk was refused or the message is too big.
    /// </summary>
    public void ChunkOctets(System.Buffers.ReadOnlySequence<byte> octets)
    {
        ChunkRemaining -= octets.Length;
        if (_chunkRefusal is not null || Data is null)
        {
            return;
        }

        // Bare CR and LF become CRLF here too (requirements §11.8), as DATA stores them.
        var state = DataState;
        DataReader.WriteChunk(octets, ref state, Data, settings.MaxMessageSize);
        DataState = state;
    }

    /// <summary>The pending message is stored (or refused by the domains' rules): the final reply.</summary>
    public string Stored(IntakeResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        Reset();
        return result.RejectReply ?? $"250 2.0.0 Ok: queued as {string.Join(' ', result.Ids)}";
    }

    /// <summary>The pending message could not be stored: the client must send it again later (or not at all, for a deleted domain).</summary>
    public string NotStored(bool domainDeleted)
    {
        Reset();
        // A domain deleted since RCPT: from then on NO-DOMAIN (requirements §3.15).
        return domainDeleted ? "554 5.7.1 Recipient address rejected: NO-DOMAIN" : "451 4.3.0 Error: queue file write error";
    }

    public void Dispose() => Reset();

    private SessionReply Handle(SmtpCommand command)
    {
        if (command.Argument is null)
        {
            return new("501 5.5.2 Syntax error: invalid UTF-8");
        }

        if (_chunking && command.Verb is not (SmtpVerb.Bdat or SmtpVerb.Rset or SmtpVerb.Quit or SmtpVerb.Noop))
        {
            // RFC 3030 §2: after a BDAT that was not LAST, only BDAT (or RSET) may follow.
            Reset();
            return new("503 5.5.1 Error: BDAT transaction in progress; the message was discarded");
        }

        switch (command.Verb)
        {
            case SmtpVerb.Ehlo:
            case SmtpVerb.Helo:
                if (command.Argument.Length == 0)
                {
                    return new($"501 5.5.4 Syntax: {(command.Verb == SmtpVerb.Ehlo ? "EHLO" : "HELO")} hostname");
                }

                Reset();
                _helo = command.Argument;
                _esmtp = command.Verb == SmtpVerb.Ehlo;
                return command.Verb == SmtpVerb.Helo
                    ? new($"250 {settings.HostName}")
                    : new($"250-{settings.HostName}\r\n250-PIPELINING\r\n250-SIZE {settings.MaxMessageSize.ToString(CultureInfo.InvariantCulture)}\r\n" +
                          $"250-8BITMIME\r\n250-SMTPUTF8\r\n250-DSN\r\n250-CHUNKING\r\n{XforwardAnnouncement}250 ENHANCEDSTATUSCODES");
            case SmtpVerb.Mail:
                return new(Mail(command.Argument));
            case SmtpVerb.Rcpt:
                return Rcpt(command.Argument);
            case SmtpVerb.Data:
                return DataCommand();
            case SmtpVerb.Bdat:
                return Bdat(command.Argument);
            case SmtpVerb.Xforward:
                return new(Xforward(command.Argument));
            case SmtpVerb.Rset:
                Reset();
                return new("250 2.0.0 Ok");
            case SmtpVerb.Noop:
                return new("250 2.0.0 Ok");
            case SmtpVerb.Quit:
                return new("221 2.0.0 Bye", SessionAction.Close);
            case SmtpVerb.Vrfy:
                return new("502 5.5.1 VRFY command is disabled");
            case SmtpVerb.Unknown:
                return new("500 5.5.2 Error: command not recognized");
            default:
                return new("502 5.5.1 Error: command not implemented");
        }
    }

    /// <summary>Counts an error reply; at the limit the connection closes (Postfix: <c>smtpd_hard_error_limit</c>).</summary>
    private SessionReply CountError(SessionReply reply)
    {
        if (++_errors >= settings.MaxErrors)
        {
            Reset();
            return reply with { Text = reply.Text + $"\r\n421 4.7.0 {settings.HostName} Error: too many errors", Action = SessionAction.Close };
        }

        return reply;
    }

    /// <summary>
    /// XFORWARD (XFORWARD_README; Postfix sends it because the intake announces it), before MAIL: ADDR is the internet
    /// client, the identity the relay rule and client-IP rules decide on; NAME and HELO go into the trace header; IDENT
    /// is Postfix's queue id, the link from its log to the gateway's message id. <c>[UNAVAILABLE]</c> and
    /// <c>[TEMPUNAVAIL]</c> mean unknown, and an unknown ADDR leaves the peer as the client.
    /// </summary>
    private string Xforward(string argument)
    {
        if (_sender is not null)
        {
            return "503 5.5.1 Error: MAIL transaction in progress";
        }

        if (!SmtpParser.TryParseXforward(argument, out var attributes, out var error))
        {
            return "501 5.5.4 " + error;
        }

        foreach (var (name, value) in attributes)
        {
            var known = value is { Length: > 0 } && value[0] != '[' ? value : null;
            switch (name)
            {
                case "IDENT":
                    _forwardedQueueId = known is { Length: <= 64 } id && id.All(char.IsAsciiLetterOrDigit) ? id : null;
                    break;
                case "ADDR":
                    _forwardedAddress = known is not null && IpAddressText.TryParseClient(known.StartsWith("IPV6:", StringComparison.OrdinalIgnoreCase) ? known[5..] : known, out var ip)
                        ? ip.ToString()
                        : null;
                    break;
                case "NAME":
                    _forwardedName = known is not null ? Sanitize(known) : null;
                    break;
                case "HELO":
                    _forwardedHelo = known is not null ? Sanitize(known) : null;
                    break;
            }
        }

        return "250 2.0.0 Ok";
    }

    private string Mail(string argument)
    {
        if (_sender is not null)
        {
            return "503 5.5.1 Error: nested MAIL command";
        }

        if (!SmtpParser.TryParsePath(argument, "FROM:", allowEmpty: true, out var path, out var error))
        {
            return "501 5.1.7 " + error;
        }

        var sender = string.Empty;
        if (path.Address.Length > 0)
        {
            if (!EnvelopeAddress.TryParse(path.Address, out var canonical, out error))
            {
                return "501 5.1.7 Bad sender address syntax: " + error;
            }

            sender = canonical.Address;
        }

        var utf8 = false;
        long? size = null;
        string? ret = null;
        string? envelopeId = null;
        foreach (var (key, value) in path.Parameters)
        {
            switch (key.ToUpperInvariant())
            {
                case "SIZE" when _esmtp:
                    if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var announced))
                    {
                        return "501 5.5.4 Bad SIZE parameter";
                    }

                    if (announced > settings.MaxMessageSize)
                    {
                        return "552 5.3.4 Message size exceeds fixed limit";
                    }

                    size = announced;
                    break;
                case "BODY" when _esmtp:
                    if (!string.Equals(value, "7BIT", StringComparison.OrdinalIgnoreCase) && !string.Equals(value, "8BITMIME", StringComparison.OrdinalIgnoreCase))
                    {
                        return "501 5.5.4 Bad BODY parameter";
                    }

                    break;
                case "SMTPUTF8" when _esmtp && value is null:
                    utf8 = true;
                    break;
                case "RET" when _esmtp:
                    if (SetOnce(ref ret, SmtpParser.TryParseDsnRet(value, out var r), r, "RET") is { } badRet)
                    {
                        return badRet;
                    }

                    break;
                case "ENVID" when _esmtp:
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
        if (!utf8 && !System.Text.Ascii.IsValid(sender))
        {
            return "553 5.6.7 Must declare SMTPUTF8 to send unicode address";
        }

        _sender = sender;
        _utf8 = utf8;
        _announcedSize = size;
        _dsn = new MessageDsn(ret, envelopeId);
        return "250 2.1.0 Ok";
    }

    private SessionReply Rcpt(string argument)
    {
        if (_sender is null)
        {
            return new("503 5.5.1 Error: need MAIL command");
        }

        if (_recipients.Count >= settings.MaxRecipients)
        {
            // RFC 5321 §4.5.3.1.10: 452 for too many recipients; the client sends the rest in another transaction.
            return new("452 4.5.3 Error: too many recipients");
        }

        if (!SmtpParser.TryParsePath(argument, "TO:", allowEmpty: false, out var path, out var error))
        {
            return new("501 5.1.3 " + error);
        }

        if (!EnvelopeAddress.TryParse(path.Address, out var canonical, out error))
        {
            return new("501 5.1.3 Bad recipient address syntax: " + error);
        }

        string? notify = null;
        string? originalRecipient = null;
        foreach (var (key, value) in path.Parameters)
        {
            switch (key.ToUpperInvariant())
            {
                case "NOTIFY" when _esmtp:
                    if (SetOnce(ref notify, SmtpParser.TryParseDsnNotify(value, out var n), n, "NOTIFY") is { } badNotify)
                    {
                        return new(badNotify);
                    }

                    break;
                case "ORCPT" when _esmtp:
                    if (SetOnce(ref originalRecipient, SmtpParser.TryParseDsnOriginalRecipient(value, out var o), o, "ORCPT") is { } badOrcpt)
                    {
                        return new(badOrcpt);
                    }

                    break;
                default:
                    return new($"555 5.5.4 Unsupported option: {key}");
            }
        }

        var recipient = canonical.Address;
        if (!_utf8 && !System.Text.Ascii.IsValid(path.Address))
        {
            return new("553 5.6.7 Must declare SMTPUTF8 to send unicode address");
        }

        // The one relay rule (requirements §4, §11.2), with the client Postfix names and this listener's scope.
        var request = new RelayRequest
        {
            Stage = SmtpStage.Rcpt,
            Scope = scope,
            Sender = _sender,
            Recipient = recipient,
            ClientAddress = ClientAddress,
            ClientName = _forwardedName,
            HeloName = _forwardedHelo ?? _helo,
            Size = _announcedSize,
            QueueId = _forwardedQueueId,
            Time = clock.GetUtcNow(), // the unverified-inbound grace period ends here as in the policy service
        };
        var decision = relay(request);
        if (decision.Outcome != RelayOutcome.Accept || decision.Domain is null || decision.Direction is not { } direction)
        {
            var refusal = decision.Refusal ?? new SmtpRefusal(450, "4.7.1", RelayDecision.NotLoadedText);
            return new(refusal.ForRecipient(recipient), SessionAction.None, request, decision);
        }

        if (!_recipients.Any(r => string.Equals(r.Address, recipient, StringComparison.OrdinalIgnoreCase)))
        {
            _recipients.Add(new IntakeRecipient(recipient, decision.Domain.Name, direction,
                notify is null && originalRecipient is null ? null : new RecipientDsn(notify, originalRecipient)));
        }

        return new("250 2.1.5 Ok", SessionAction.None, request, decision);
    }

    /// <summary>
    /// Takes back a recipient accepted at RCPT whose verification then refused it (the connection loop answers instead of the
    /// 250 this session would have sent; docs/operations.md "Recipient verification"). The recipient count is not an error.
    /// </summary>
    public void Withdraw(string recipient) =>
        _recipients.RemoveAll(r => string.Equals(r.Address, recipient, StringComparison.OrdinalIgnoreCase));

    private SessionReply DataCommand()
    {
        if (StartMessage() is { } refused)
        {
            return new(refused);
        }

        DataState = new DataState();
        return new("354 End data with <CR><LF>.<CR><LF>", SessionAction.ReadData);
    }

    /// <summary>RFC 3030: <c>BDAT &lt;size&gt; [LAST]</c>; the chunk's octets follow the command at once and are read even when it is refused.</summary>
    private SessionReply Bdat(string argument)
    {
        var parts = argument.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length is 0 or > 2 || !long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var size) ||
            (parts.Length == 2 && !parts[1].Equals("LAST", StringComparison.OrdinalIgnoreCase)))
        {
            // The chunk's length is unknown: the stream cannot be resynchronised.
            Reset();
            return new("501 5.5.4 Syntax: BDAT size [LAST]", SessionAction.Close);
        }

        ChunkRemaining = size;
        _chunkLast = parts.Length == 2;
        if (!_chunking)
        {
            if (StartMessage() is { } refused)
            {
                _chunkRefusal = refused;
                return new(string.Empty, SessionAction.ReadChunk);
            }

            _chunking = true;
            DataState = new DataState();
        }

        return new(string.Empty, SessionAction.ReadChunk);
    }

    /// <summary>Checks that a message may start; on success opens the buffer with the trace header (RFC 5321 §4.4) first.</summary>
    private string? StartMessage()
    {
        if (_sender is null)
        {
            return "503 5.5.1 Error: need MAIL command";
        }

        if (_recipients.Count == 0)
        {
            return "554 5.5.1 Error: no valid recipients";
        }

        var now = clock.GetUtcNow();
        _id = MessageId.New(now);
        Data = buffers?.Invoke(_id, ClientAddress) ?? new MessageBuffer();
        // The real client (XFORWARD), not the proxy in front: downstream filters look for the message's origin here.
        var protocol = _utf8 ? "UTF8SMTP" : _esmtp ? "ESMTP" : "SMTP";
        var forClause = _recipients.Count == 1 ? $"\r\n\tfor <{_recipients[0].Address}>" : string.Empty;
        var from = Sanitize(_forwardedHelo ?? _helo ?? "unknown");
        var name = _forwardedName is { } n ? n + " " : string.Empty;
        var received = $"Received: from {from} ({name}[{ClientAddress}])\r\n\tby {settings.HostName} (gateway-deliverer) with {protocol} id {_id}{forClause};\r\n\t" +
                       now.ToString("ddd, dd MMM yyyy HH:mm:ss +0000", CultureInfo.InvariantCulture) + "\r\n";
        Data.Write(Encoding.UTF8.GetBytes(received));
        return null;
    }

    private SessionReply Complete(bool tooBig)
    {
        if (tooBig)
        {
            Reset();
            return new("552 5.3.4 Error: message file too big");
        }

        var hops = HopCounter.CountReceived(Data!.WrittenSpan);
        if (hops > settings.MaxHops)
        {
            Reset();
            return new($"554 5.4.6 Too many hops ({hops.ToString(CultureInfo.InvariantCulture)} Received headers): mail loop?");
        }

        var client = new IntakeClient(ClientAddress, _forwardedName, _forwardedHelo ?? _helo, _peer);
        Pending = new PendingMessage(_id!, _sender!, [.. _recipients], _utf8, client, _dsn, _forwardedQueueId, Data);
        return new(string.Empty, SessionAction.Store);
    }

    private void Reset()
    {
        _sender = null;
        _utf8 = false;
        _announcedSize = null;
        _dsn = default;
        _recipients.Clear();
        _id = null;
        _chunking = false;
        _chunkLast = false;
        _forwardedAddress = null;
        _forwardedName = null;
        _forwardedHelo = null;
        _forwardedQueueId = null;
        Pending = null;
        Data?.Dispose();
        Data = null;
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

    /// <summary>Client-supplied names for the trace header: no controls, no parentheses (comment syntax), at most 255 characters.</summary>
    private static string Sanitize(string text) => new(text.Where(c => !char.IsControl(c) && c != '(' && c != ')' && c != '[' && c != ']').Take(255).ToArray());
}
