using System.Globalization;
using System.Text;
using Gateway.Core.Delivery;
using Gateway.Core.Domains;
using Gateway.Core.Mail;
using Gateway.Core.MessageLog;
using Gateway.Core.Relay;
using Gateway.Core.Rules;
using Gateway.Core.Snapshot;
using Gateway.Deliverer.Intake;

namespace Gateway.Deliverer.Protection;

/// <summary>The SMTP session facts a scan needs (requirements §9: the envelope and the real client from XFORWARD).</summary>
/// <param name="Client">The internet client: XFORWARD ADDR, else the intake's peer.</param>
/// <param name="Helo">XFORWARD HELO (the client's), else the intake session's own.</param>
/// <param name="ClientName">XFORWARD NAME when Postfix knew the client's name.</param>
public sealed record IntakeScan(string Id, string Sender, IReadOnlyList<IntakeRecipient> Recipients, string Client, string? Helo, string? ClientName);

/// <summary>
/// The intake's protection step (requirements §9), called once the DATA is complete and before anything is stored:
/// asks rspamd (<c>/checkv2</c>) and clamd (<c>INSTREAM</c>) at the same time, decides per owning domain
/// (<see cref="ProtectionDecider"/>), logs refusals, and returns what the intake stores: per copy the body with the
/// gateway's headers, and the holds. Null when protection is off.
/// </summary>
public sealed partial class MessageScanner(ProtectionOptions options, RspamdClient rspamd, ClamdClient clamd, ConfigSnapshot snapshot, BufferedMessageLog log,
    ProtectionMetrics metrics, QueueOptions queueOptions, TimeProvider clock, ILogger<MessageScanner> logger)
{
    private readonly string _authServId = options.AuthServId.Length > 0 ? options.AuthServId : queueOptions.EffectiveHostName;

    public bool Enabled => options.Mode == ProtectionMode.Scan;

    public Task<ProtectionResult?> ScanAsync(IntakeScan scan, byte[] message, CancellationToken cancellationToken) => ScanAsync(scan, message, null, cancellationToken);

    /// <param name="message">The message, or its head (its first megabyte or so, with the header section) when <paramref name="spooled"/>.</param>
    /// <param name="spooled">
    /// A message received in pieces (requirements §11, bounded memory): the engines read it from Redis as a stream, and the
    /// result gives each copy a prefix in front of the shared body (<see cref="ProtectionResult.PrefixFor"/>) instead of its own bytes.
    /// </param>
    public async Task<ProtectionResult?> ScanAsync(IntakeScan scan, byte[] message, SpooledMessage? spooled, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(scan);
        ArgumentNullException.ThrowIfNull(message);
        if (!Enabled)
        {
            return null;
        }

        var started = clock.GetTimestamp();
        var spamTask = CheckSpamAsync(scan, message, spooled, cancellationToken);
        // A message in pieces is always given to clamd: the attachment probe would read all of it again for little gain.
        var malwareTask = options.MalwareScanner == MalwareScanner.Clamd &&
                          (options.MalwareScope == MalwareScope.Everything || spooled is not null || AttachmentProbe.HasAttachment(message))
            ? ScanMalwareAsync(message, spooled, cancellationToken)
            : null;
        var (spam, spamFailure) = await spamTask.ConfigureAwait(false);
        string? malware = null;
        ScannerException? malwareFailure = null;
        if (malwareTask is not null)
        {
            (malware, malwareFailure) = await malwareTask.ConfigureAwait(false);
        }

        if (spam?.Symbol("CLAM_VIRUS") is { } found)
        {
            // rspamd's antivirus module (MalwareScanner=Rspamd, or a configuration that still scans).
            malware ??= found.Options.Count > 0 ? found.Options[0] : "CLAM_VIRUS";
        }

        if (options.MalwareScanner == MalwareScanner.Rspamd)
        {
            malwareFailure = spamFailure is not null ? new ScannerException(RspamdClient.Engine, spamFailure.Reason, "no antivirus verdict: " + spamFailure.Message)
                : spam!.Has("CLAM_VIRUS_FAIL") ? new ScannerException(ClamdClient.Engine, ScannerFailureReasons.Error, "rspamd's antivirus module failed (CLAM_VIRUS_FAIL)")
                : null;
        }

        metrics.Scanned(clock.GetElapsedTime(started));
        var fields = ScanHeaders.Parse(message);
        var facts = Facts(scan, message, fields, spam, spamFailure, malware, malwareFailure);
        var copies = scan.Recipients
            .GroupBy(r => (r.Domain, r.Direction))
            .Select(g => snapshot.Find(g.Key.Domain) is { } d
                ? new ScanCopy(g.Key.Domain, g.Key.Direction, d.Config.Settings.Protection, d.Verified)
                : new ScanCopy(g.Key.Domain, g.Key.Direction, ProtectionSettings.Default, false))
            .ToList();
        var decision = ProtectionDecider.Decide(facts, copies);
        foreach (var v in decision.Copies)
        {
            metrics.Verdict(decision.Reply is null ? v.Action : decision.Reply.StartsWith('4') ? ScanAction.TempFail : ScanAction.Reject, v.Reason, v.Copy.Direction);
        }

        var result = new ProtectionResult(decision, facts, message, fields, Headers(scan, facts, fields, message), _authServId);
        if (decision.Reply is { } reply)
        {
            var summary = result.Summary(decision.Copies[0]);
            LogRefused(logger, scan.Id, reply, summary);
            var now = clock.GetUtcNow();
            foreach (var r in scan.Recipients)
            {
                log.Post(result.ScannedEvent(r.Domain, scan.Id, r.Direction, scan.Sender, r.Address, scan.Client, now, reply));
            }
        }

        return result;
    }

    private async Task<(RspamdResult?, ScannerException?)> CheckSpamAsync(IntakeScan scan, byte[] message, SpooledMessage? spooled, CancellationToken cancellationToken)
    {
        var started = clock.GetTimestamp();
        try
        {
            // Postfix says "unknown" for a client without a verified name (XFORWARD_README); rspamd takes that as no name too.
            var name = scan.ClientName is "unknown" ? null : scan.ClientName;
            var request = new RspamdRequest(scan.Client, scan.Helo, name, scan.Sender, scan.Recipients.Select(r => r.Address).ToList(), scan.Id);
            var result = spooled is null ? await rspamd.CheckAsync(request, message, cancellationToken).ConfigureAwait(false)
                : await rspamd.CheckAsync(request, spooled, cancellationToken).ConfigureAwait(false);
            metrics.EngineCall(RspamdClient.Engine, clock.GetElapsedTime(started), null);
            return (result, null);
        }
        catch (ScannerException e)
        {
            metrics.EngineCall(RspamdClient.Engine, clock.GetElapsedTime(started), e.Reason);
            LogScannerFailed(logger, scan.Id, e.Engine, e.Message);
            return (null, e);
        }
    }

    private async Task<(string?, ScannerException?)> ScanMalwareAsync(byte[] message, SpooledMessage? spooled, CancellationToken cancellationToken)
    {
        var started = clock.GetTimestamp();
        try
        {
            var virus = spooled is null ? await clamd.ScanAsync(message, cancellationToken).ConfigureAwait(false)
                : await clamd.ScanAsync(spooled, cancellationToken).ConfigureAwait(false);
            metrics.EngineCall(ClamdClient.Engine, clock.GetElapsedTime(started), null);
            return (virus, null);
        }
        catch (ScannerException e)
        {
            metrics.EngineCall(ClamdClient.Engine, clock.GetElapsedTime(started), e.Reason);
            LogScannerFailed(logger, "-", e.Engine, e.Message);
            return (null, e);
        }
    }

    private ScanFacts Facts(IntakeScan scan, byte[] message, List<HeaderField> fields, RspamdResult? spam, ScannerException? spamFailure, string? malware,
        ScannerException? malwareFailure)
    {
        var from = ScanHeaders.FromDomain(message, fields);
        var fromEntry = from is null ? null : snapshot.Find(DomainName.NormalizeOrNull(from) ?? from);
        // Only the domain's own custom IPs count as proof: Microsoft 365's and Google's ranges are shared by every
        // customer of those providers (requirements §3), so mail from them must authenticate by SPF/DKIM like any other.
        var authorised = fromEntry is { Verified: true, Outbound.Enabled: true } &&
                         IpAddressText.TryParseClient(scan.Client, out var client) && fromEntry.CustomIps.Contains(client);
        var envelopeDomain = EnvelopeAddress.DomainOf(scan.Sender);
        return new ScanFacts
        {
            Spam = spam,
            SpamFailure = spamFailure,
            Malware = malware,
            MalwareFailure = malwareFailure,
            Auth = spam is null ? AuthResults.Unknown : AuthResults.From(spam),
            FromDomain = from,
            FromManaged = fromEntry is not null,
            FromSourceAuthorised = authorised,
            EnvelopeDomain = envelopeDomain.Length > 0 ? envelopeDomain : null,
        };
    }

    /// <summary>The fields every inbound copy gets: Authentication-Results and the score when rspamd answered.</summary>
    private string Headers(IntakeScan scan, ScanFacts facts, List<HeaderField> fields, byte[] message)
    {
        if (facts.Spam is not { } spam)
        {
            return string.Empty;
        }

        var b = new StringBuilder(facts.Auth.Header(_authServId, scan.Sender, scan.Helo, facts.FromDomain));
        b.Append(ScanHeaders.SpamScore).Append(": ").Append(spam.Score.ToString("0.00", CultureInfo.InvariantCulture)).Append("\r\n");
        return b.ToString();
    }

    [LoggerMessage(EventId = 1600, Level = LogLevel.Warning, Message = "Protection: message {Id}: {Engine} gave no verdict: {Reason}")]
    private static partial void LogScannerFailed(ILogger logger, string id, string engine, string reason);

    [LoggerMessage(EventId = 1601, Level = LogLevel.Information, Message = "Protection: message {Id} refused with {Reply} ({Verdict})")]
    private static partial void LogRefused(ILogger logger, string id, string reply, string verdict);
}

/// <summary>
/// What a scan means for storing the message: the DATA reply when it is refused or deferred as a whole, and otherwise
/// per owning domain the bytes to store (with the gateway's headers; outbound copies unchanged) and the holds.
/// </summary>
public sealed class ProtectionResult
{
    /// <summary>How many symbols the message log keeps: the ten that weigh most.</summary>
    public const int LoggedSymbols = 10;

    private readonly ScanDecision _decision;
    private readonly ScanFacts _facts;
    private readonly byte[] _message;
    private readonly List<HeaderField> _fields;
    private readonly string _common;
    private readonly string _authServId;
    private readonly Dictionary<(bool Tag, bool Subject, string? Unscanned), byte[]> _variants = [];
    private readonly Dictionary<(bool Tag, bool Subject, string? Unscanned), (byte[], int)> _prefixes = [];
    private readonly Dictionary<CopyVerdict, string> _summaries = new(ReferenceEqualityComparer.Instance);

    internal ProtectionResult(ScanDecision decision, ScanFacts facts, byte[] message, List<HeaderField> fields, string commonHeaders, string authServId)
    {
        _decision = decision;
        _facts = facts;
        _message = message;
        _fields = fields;
        _common = commonHeaders;
        _authServId = authServId;
    }

    /// <summary>The DATA reply when the whole message is refused (550 5.7.1) or deferred (451 4.7.1); null: accept.</summary>
    public string? Reply => _decision.Reply;

    public IReadOnlyList<CopyVerdict> Copies => _decision.Copies;

    public CopyVerdict? Verdict(string domain, Direction direction) =>
        _decision.Copies.FirstOrDefault(v => string.Equals(v.Copy.Domain, domain, StringComparison.OrdinalIgnoreCase) && v.Copy.Direction == direction);

    /// <summary>The bytes to store for a copy: inbound copies carry the gateway's headers (and the tag); outbound ones are unchanged.</summary>
    public byte[] BodyFor(string domain, Direction direction)
    {
        var v = Verdict(domain, direction);
        if (v is null || direction == Direction.Outbound)
        {
            return _message;
        }

        // At most a few variants per message (untagged, tagged, tagged with the subject, passed unscanned), each made once.
        var key = VariantKey(v);
        if (!_variants.TryGetValue(key, out var body))
        {
            _variants[key] = body = ScanHeaders.Rewrite(_message, _fields, _authServId, Added(v), key.Item2);
        }

        return body;
    }

    /// <summary>
    /// For a message received in pieces (its head is what this result holds; docs/architecture.md "Bodies in pieces"): the
    /// copy's rewritten header section, to be put in front of the shared body from <c>From</c> on (the end of the original
    /// header section, so removed or tagged fields are not sent twice). Outbound copies: nothing (their bytes are unchanged).
    /// Only the fields that end within the head are rewritten: a header section longer than the head keeps the rest as sent.
    /// </summary>
    public (byte[] Prefix, int From)? PrefixFor(string domain, Direction direction)
    {
        var v = Verdict(domain, direction);
        if (v is null || direction == Direction.Outbound)
        {
            return null;
        }

        var key = VariantKey(v);
        if (!_prefixes.TryGetValue(key, out var made))
        {
            // A field that reaches the head's end may go on in the next piece: it stays in the shared body.
            var complete = _fields.Where(f => f.End < _message.Length).ToList();
            var end = complete.Count == 0 ? 0 : complete[^1].End;
            _prefixes[key] = made = (ScanHeaders.Rewrite(_message.AsSpan(0, end), complete, _authServId, Added(v), key.Item2), end);
        }

        return made;
    }

    /// <summary>What makes copies differ: tagged, tagged with the subject, passed unscanned (and why).</summary>
    private static (bool Tag, bool Subject, string? Unscanned) VariantKey(CopyVerdict v) =>
        (v.Action == ScanAction.Tag, v.Action == ScanAction.Tag && v.Copy.Policy.Spam.SubjectTag, v.Unscanned);

    /// <summary>The fields a copy gets: the common ones (Authentication-Results, score), the spam flag, the "not scanned" note.</summary>
    private string Added(CopyVerdict v) =>
        _common + (v.Action == ScanAction.Tag ? ScanHeaders.SpamFlag + ": YES\r\n" : string.Empty) +
        (v.Unscanned is { } what ? $"{ScanHeaders.Unscanned}: {Fold(what)}\r\n" : string.Empty);

    /// <summary>
    /// The intake's rule verdicts with the protection holds merged in: a copy protection holds goes to the quarantine
    /// unless a rule refuses it already (the stronger of the two wins; a DELIVER rule does not skip protection).
    /// Null when neither rules nor protection hold or refuse anything.
    /// </summary>
    public IReadOnlyList<IntakeVerdict>? Merge(IReadOnlyList<IntakeVerdict>? rules, IReadOnlyList<IntakeRecipient> recipients)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        if (!_decision.Copies.Any(c => c.Action == ScanAction.Quarantine))
        {
            return rules;
        }

        var merged = new IntakeVerdict[recipients.Count];
        for (var i = 0; i < recipients.Count; i++)
        {
            var r = recipients[i];
            var rule = rules?[i] ?? new IntakeVerdict(r, null, null);
            var v = Verdict(r.Domain, r.Direction);
            merged[i] = v is { Action: ScanAction.Quarantine } && rule.Action is not (RuleAction.Reject or RuleAction.Quarantine)
                ? new IntakeVerdict(r, RuleAction.Quarantine, HoldRule(v))
                : rule;
        }

        return merged;
    }

    /// <summary>The quarantine entry's "rule": <c>protection:&lt;reason&gt;</c> and the verdict in words (shown by ListQuarantine).</summary>
    private static PolicyRule HoldRule(CopyVerdict v) => new()
    {
        Id = "protection:" + v.Reason,
        Description = "protection: " + v.Text,
        Action = RuleAction.Quarantine,
    };

    /// <summary>The <c>scanned</c> event of one recipient's copy (docs/message-log.md).</summary>
    public MessageLogEvent ScannedEvent(string domain, string id, Direction direction, string sender, string recipient, string client, DateTimeOffset now, string? reply = null)
    {
        var v = Verdict(domain, direction);
        return new MessageLogEvent
        {
            Domain = domain, Event = MessageLogEvents.Scanned, Time = now, MessageId = id, Direction = direction, Sender = sender, Recipient = recipient,
            ClientAddress = client, Program = "deliverer", Reply = reply, Detail = v is null ? null : Summary(v),
        };
    }

    /// <summary><c>action=quarantine reason=spam score=12.30 rspamd=add header symbols=GTUBE(0.00),… malware=… unscanned=… text=…</c></summary>
    public string Summary(CopyVerdict v)
    {
        ArgumentNullException.ThrowIfNull(v);
        if (_summaries.TryGetValue(v, out var made))
        {
            return made;
        }

        var action = _decision.Reply is { } reply ? (reply[0] == '4' ? "tempfail" : "reject") : v.Action.ToString().ToLowerInvariant();
        var b = new StringBuilder().Append(CultureInfo.InvariantCulture, $"action={action} reason={v.Reason}");
        if (_facts.Spam is { } spam)
        {
            b.Append(CultureInfo.InvariantCulture, $" score={spam.Score:0.00} rspamd={spam.Action.Replace(' ', '_')}");
            var top = spam.Symbols.Where(s => s.Score != 0 || s.Name is "GTUBE" or "CLAM_VIRUS")
                .OrderByDescending(s => Math.Abs(s.Score)).ThenBy(s => s.Name, StringComparer.Ordinal).Take(LoggedSymbols);
            b.Append(" symbols=").AppendJoin(',', top.Select(s => string.Create(CultureInfo.InvariantCulture, $"{s.Name}({s.Score:0.00})")));
            b.Append(CultureInfo.InvariantCulture, $" spf={_facts.Auth.Spf} dkim={(_facts.Auth.Dkim.Count == 0 ? "none" : string.Join(',', _facts.Auth.Dkim.Select(d => d.Result)))} dmarc={_facts.Auth.Dmarc}");
        }

        if (_facts.Malware is { } m)
        {
            b.Append(" malware=").Append(m);
        }

        if (_facts.SpamFailure is { } sf)
        {
            b.Append(" rspamd_failed=\"").Append(sf.Message).Append('"');
        }

        if (_facts.MalwareFailure is { } mf)
        {
            b.Append(" malware_scan_failed=\"").Append(mf.Message).Append('"');
        }

        return _summaries[v] = b.Append(" text=\"").Append(v.Text).Append('"').ToString();
    }

    private static string Fold(string text) => new(text.Where(c => !char.IsControl(c)).Take(900).ToArray());
}
