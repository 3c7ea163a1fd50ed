using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Gateway.Core.Delivery;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using Gateway.Core.Tls;
using MimeKit;

namespace Gateway.Deliverer.Delivery;

/// <summary>The result of one SMTP transaction with one host.</summary>
/// <param name="Recipients">Per-recipient outcome for those the host answered individually.</param>
/// <param name="HostFailure">Set when the host or the transaction failed as a whole (connect, greeting, MAIL, DATA): it applies to every recipient without its own outcome.</param>
public sealed record TransactionResult(IReadOnlyDictionary<string, DeliveryOutcome> Recipients, DeliveryOutcome? HostFailure)
{
    /// <summary>The host did not connect or greet in time: a dead host for a while (<see cref="DeadHosts"/>).</summary>
    public bool TimedOut { get; init; }

    /// <summary>The connection's TLS, when a connection was made (the message log's <c>tls</c> field).</summary>
    public TlsObservation? Tls { get; init; }
}

/// <summary>
/// Delivery over SMTP with MailKit: EHLO, STARTTLS (RFC 3207) as the endpoint's <see cref="TlsRequirement"/> asks
/// (opportunistic by default, as Postfix's <c>smtp_tls_security_level = may</c>, RFC 7435; required; or verified against
/// the system trust store or <c>Gateway:Tls:TrustedCaFile</c> and a name, docs/outbound.md), one transaction per message
/// with per-recipient replies, and a small cache of idle connections per destination so consecutive
/// messages to one host reuse the session (Postfix's connection cache does the same).
/// </summary>
public sealed partial class SmtpTransport(DelivererOptions options, Core.Delivery.QueueOptions queueOptions, TimeProvider clock, ILogger<SmtpTransport> logger,
    CertificateVerifier certificates) : IAsyncDisposable
{
    // Keyed by address and TLS requirement: a connection made without verification is never reused where verification is required.
    private readonly ConcurrentDictionary<(IPEndPoint, TlsRequirement), ConcurrentStack<(GatewaySmtpClient Client, long IdleSince)>> _idle = new();
    private readonly FormatOptions _format = CreateFormat();

    /// <summary>Sends <paramref name="message"/> to <paramref name="recipients"/> through one host.</summary>
    public async Task<TransactionResult> SendAsync(Endpoint endpoint, MimeMessage message, string sender, IReadOnlyList<string> recipients, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        ArgumentNullException.ThrowIfNull(recipients);

        // The intake takes addresses as leniently as Postfix does; MimeKit refuses some of them (an unquoted '@' in
        // the local part). Such an address can never be sent: a permanent failure for it (a DSN), not an exception
        // that would leave the message to be attempted again at every lease expiry, forever.
        if (!TryMailbox(sender, out var from))
        {
            return new TransactionResult(new Dictionary<string, DeliveryOutcome>(),
                DeliveryOutcome.Permanent($"553 5.1.7 <{sender}>: the sender address cannot be sent over SMTP"));
        }

        var unsendable = new Dictionary<string, DeliveryOutcome>(StringComparer.OrdinalIgnoreCase);
        var mailboxes = new List<(MailboxAddress Mailbox, string Queued)>(recipients.Count);
        foreach (var r in recipients)
        {
            if (TryMailbox(r, out var mailbox))
            {
                mailboxes.Add((mailbox, r));
            }
            else
            {
                unsendable[r] = DeliveryOutcome.Permanent($"553 5.1.3 <{r}>: the recipient address cannot be sent over SMTP");
            }
        }

        if (mailboxes.Count == 0)
        {
            return new TransactionResult(unsendable, null);
        }

        var cacheKey = (endpoint.Address, endpoint.Tls);
        for (var attempt = 0; ; attempt++)
        {
            var (client, reused) = attempt == 0 ? Rent(cacheKey) : (null, false);
            GatewaySmtpClient? fresh = null;
            try
            {
                client ??= fresh = await ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                return TlsFailure(endpoint.Tls, e) ?? new TransactionResult(new Dictionary<string, DeliveryOutcome>(), OutcomeClassifier.Classify(e))
                {
                    TimedOut = e is OperationCanceledException or TimeoutException or SocketException { SocketErrorCode: SocketError.TimedOut },
                };
            }

            var tls = client.Observe();
            if (fresh is not null && TlsPolicy.Unmet(endpoint.Tls, tls) is { } unmet)
            {
                // Opportunistic mode never gets here; required/verify are checked again on what the session really got.
                await DiscardAsync(client).ConfigureAwait(false);
                return new TransactionResult(new Dictionary<string, DeliveryOutcome>(), DeliveryOutcome.Transient(unmet)) { Tls = tls };
            }

            client.BeginTransaction(mailboxes);
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(options.CommandTimeout + options.CommandTimeout);
                var reply = await client.SendAsync(_format, message, from, mailboxes.Select(m => m.Mailbox), timeout.Token).ConfigureAwait(false);
                var results = new Dictionary<string, DeliveryOutcome>(unsendable, StringComparer.OrdinalIgnoreCase);
                foreach (var (address, o) in client.Outcomes)
                {
                    results[address] = o;
                }

                foreach (var r in recipients)
                {
                    if (results.TryGetValue(r, out var o) && o.Kind == OutcomeKind.Delivered)
                    {
                        results[r] = DeliveryOutcome.Delivered(OutcomeClassifier.Reply(250, reply));
                    }
                }

                Return(cacheKey, client);
                return new TransactionResult(results, null) { Tls = tls };
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                await DiscardAsync(client).ConfigureAwait(false);
                // A cached connection the server closed meanwhile is no verdict on the host: once more on a fresh one.
                if (reused && client.Outcomes.Count == 0 && e is ServiceNotConnectedException or IOException or SmtpProtocolException)
                {
                    continue;
                }

                var outcome = e is NoRecipientsAcceptedException ? (DeliveryOutcome?)null : OutcomeClassifier.Classify(e);
                var results = new Dictionary<string, DeliveryOutcome>(unsendable, StringComparer.OrdinalIgnoreCase);
                // With PIPELINING the RCPT replies after a refused MAIL FROM are only its echo ("503 need MAIL"):
                // the MAIL reply decides for every recipient.
                var senderRefused = e is SmtpCommandException { ErrorCode: SmtpErrorCode.SenderNotAccepted };
                foreach (var (address, o) in senderRefused ? [] : client.Outcomes)
                {
                    // A transaction that failed after RCPT (at DATA) fails the accepted recipients with it.
                    if (o.Kind != OutcomeKind.Delivered)
                    {
                        results[address] = o;
                    }
                }

                return new TransactionResult(results, outcome) { Tls = tls };
            }
        }
    }

    /// <summary>A connect that failed because TLS was required or verification failed: the reason in words, as a temporary failure.</summary>
    private static TransactionResult? TlsFailure(TlsRequirement requirement, Exception e)
    {
        var observed = e switch
        {
            // MailKit: SecureSocketOptions.StartTls against a server without the STARTTLS extension.
            NotSupportedException => new TlsObservation(false, null, false, null),
            SslHandshakeException when e.Data["gateway.certificate"] is CertificateCheck { Verified: false } check => new TlsObservation(true, "TLS", false, check.Problem),
            SslHandshakeException => new TlsObservation(true, null, false, e.Message),
            _ => null,
        };
        return observed is not null && TlsPolicy.Unmet(requirement, observed) is { } unmet
            ? new TransactionResult(new Dictionary<string, DeliveryOutcome>(), DeliveryOutcome.Transient(unmet)) { Tls = observed }
            : null;
    }

    /// <summary>Closes idle connections older than the cache time (called by the scheduler's timer).</summary>
    public async Task PruneAsync()
    {
        var now = clock.GetTimestamp();
        foreach (var (ep, stack) in _idle)
        {
            var keep = new List<(GatewaySmtpClient, long)>();
            while (stack.TryPop(out var entry))
            {
                if (clock.GetElapsedTime(entry.IdleSince, now) < options.ConnectionCacheTime && entry.Client.IsConnected)
                {
                    keep.Add(entry);
                }
                else
                {
                    await QuitAsync(entry.Client).ConfigureAwait(false);
                }
            }

            foreach (var k in keep)
            {
                stack.Push(k);
            }

            if (stack.IsEmpty)
            {
                _idle.TryRemove(new KeyValuePair<(IPEndPoint, TlsRequirement), ConcurrentStack<(GatewaySmtpClient, long)>>(ep, stack));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var stack in _idle.Values)
        {
            while (stack.TryPop(out var entry))
            {
                await QuitAsync(entry.Client).ConfigureAwait(false);
            }
        }
    }

    private (GatewaySmtpClient? Client, bool Reused) Rent((IPEndPoint, TlsRequirement) endpoint)
    {
        if (_idle.TryGetValue(endpoint, out var stack))
        {
            while (stack.TryPop(out var entry))
            {
                if (entry.Client.IsConnected && clock.GetElapsedTime(entry.IdleSince) < options.ConnectionCacheTime)
                {
                    return (entry.Client, true);
                }

                entry.Client.Dispose();
            }
        }

        return (null, false);
    }

    private void Return((IPEndPoint, TlsRequirement) endpoint, GatewaySmtpClient client)
    {
        if (options.ConnectionCacheTime <= TimeSpan.Zero || !client.IsConnected)
        {
            client.Dispose();
            return;
        }

        var stack = _idle.GetOrAdd(endpoint, _ => new());
        if (stack.Count >= options.ConnectionCachePerHost)
        {
            _ = QuitAsync(client);
            return;
        }

        stack.Push((client, clock.GetTimestamp()));
    }

    private async Task<GatewaySmtpClient> ConnectAsync(Endpoint endpoint, CancellationToken cancellationToken)
    {
        var requirement = endpoint.Tls;
        var client = new GatewaySmtpClient
        {
            LocalDomain = queueOptions.EffectiveHostName,
            Timeout = (int)Math.Min(int.MaxValue, options.CommandTimeout.TotalMilliseconds),
            CheckCertificateRevocation = false,
        };
        // Every certificate is checked and the result kept for the message log; only a verify requirement refuses on it.
        // Opportunistic TLS protects against passive listening only; the peer is not authenticated there (RFC 7435).
        client.ServerCertificateValidationCallback = (_, certificate, chain, errors) =>
        {
            client.Certificate = certificates.Check(certificate, chain, errors);
            return requirement.Mode != Gateway.Core.Domains.TlsMode.Verify || client.Certificate.Value.Verified;
        };
        // Our own socket, for NoDelay: MailKit writes a message's last bytes as a small segment, and with Nagle
        // plus the peer's delayed ACK every transaction on a reused connection waited ~40 ms (measured: 100
        // messages on one connection took 6 s, with NoDelay 0.1 s).
        var socket = new Socket(endpoint.Address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using (var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                connect.CancelAfter(options.ConnectTimeout);
                await socket.ConnectAsync(endpoint.Address, connect.Token).ConfigureAwait(false);
            }

            // Greeting, EHLO and STARTTLS together: a server that accepts TCP and never greets is given up on here.
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(options.GreetingTimeout < options.CommandTimeout ? options.GreetingTimeout : options.CommandTimeout);
            // The name checked (and sent as SNI): tls_name or the MX host under MTA-STS, else the host name the route gave.
            var target = requirement.Name ?? endpoint.HostName;
            var secure = requirement.Mode != Gateway.Core.Domains.TlsMode.Opportunistic ? SecureSocketOptions.StartTls
                : options.OpportunisticTls ? SecureSocketOptions.StartTlsWhenAvailable : SecureSocketOptions.None;
            await client.ConnectAsync(socket, target, endpoint.Address.Port, secure, timeout.Token).ConfigureAwait(false);
            return client;
        }
        catch (SslHandshakeException e) when (client.Certificate is { } check)
        {
            e.Data["gateway.certificate"] = check;
            client.Dispose();
            socket.Dispose();
            throw;
        }
        catch
        {
            client.Dispose();
            socket.Dispose();
            throw;
        }
    }

    private static async Task DiscardAsync(GatewaySmtpClient client)
    {
        try
        {
            if (client.IsConnected)
            {
                await client.DisconnectAsync(quit: false).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SmtpProtocolException or ServiceNotConnectedException or OperationCanceledException)
        {
        }
        finally
        {
            client.Dispose();
        }
    }

    private async Task QuitAsync(GatewaySmtpClient client)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            if (client.IsConnected)
            {
                await client.DisconnectAsync(quit: true, cts.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is IOException or SmtpProtocolException or SmtpCommandException or ServiceNotConnectedException or OperationCanceledException)
        {
            LogQuitFailed(logger, e.Message);
        }
        finally
        {
            client.Dispose();
        }
    }

    private static bool TryMailbox(string address, out MailboxAddress mailbox)
    {
        try
        {
            mailbox = new MailboxAddress(string.Empty, address);
            return true;
        }
        catch (ParseException)
        {
            mailbox = null!;
            return false;
        }
    }

    private static FormatOptions CreateFormat()
    {
        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        return format;
    }

    [LoggerMessage(EventId = 1100, Level = LogLevel.Debug, Message = "Closing a cached SMTP connection failed: {Reason}")]
    private static partial void LogQuitFailed(ILogger logger, string reason);
}

/// <summary>No recipient of the transaction was accepted (each has its own RCPT reply).</summary>
public sealed class NoRecipientsAcceptedException : Exception
{
    public NoRecipientsAcceptedException() : base("no recipient was accepted")
    {
    }

    public NoRecipientsAcceptedException(string message) : base(message)
    {
    }

    public NoRecipientsAcceptedException(string message, Exception inner) : base(message, inner)
    {
    }
}

/// <summary>
/// MailKit's client with per-recipient replies: a refused RCPT is recorded instead of failing the whole
/// message (MailKit's documented pattern: <see cref="OnRecipientNotAccepted"/> does not throw,
/// <see cref="OnNoRecipientsAccepted"/> does).
/// </summary>
public sealed class GatewaySmtpClient : SmtpClient
{
    private readonly Dictionary<MailboxAddress, string> _queued = new(ReferenceEqualityComparer.Instance);

    /// <summary>The server certificate's check, once a TLS handshake saw one.</summary>
    public CertificateCheck? Certificate { get; set; }

    /// <summary>What the session got of TLS (STARTTLS offered, protocol, certificate verified).</summary>
    public TlsObservation Observe() => IsSecure
        ? new TlsObservation(true, TlsPolicy.ProtocolName(SslProtocol), Certificate?.Verified == true, Certificate?.Problem)
        : new TlsObservation(Capabilities.HasFlag(SmtpCapabilities.StartTLS), null, false, null);

    /// <summary>Per recipient as the queue spells it (the key the deliverer looks results up by).</summary>
    public Dictionary<string, DeliveryOutcome> Outcomes { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Starts a transaction for these recipients: each mailbox MailKit is given, and the address as queued. MimeKit
    /// may spell a mailbox differently from the envelope (<c>user@example.com.</c> loses its trailing dot), so the
    /// replies are keyed by the queued address; otherwise a delivered recipient would look unanswered and be sent again.
    /// </summary>
    public void BeginTransaction(IEnumerable<(MailboxAddress Mailbox, string Queued)> recipients)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        Outcomes.Clear();
        _queued.Clear();
        foreach (var (mailbox, queued) in recipients)
        {
            _queued[mailbox] = queued;
        }
    }

    private string Key(MailboxAddress mailbox) => _queued.TryGetValue(mailbox, out var queued) ? queued : mailbox.Address;

    protected override void OnRecipientAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response)
    {
        ArgumentNullException.ThrowIfNull(mailbox);
        ArgumentNullException.ThrowIfNull(response);
        Outcomes[Key(mailbox)] = DeliveryOutcome.Delivered(OutcomeClassifier.Reply((int)response.StatusCode, response.Response));
    }

    protected override void OnRecipientNotAccepted(MimeMessage message, MailboxAddress mailbox, SmtpResponse response)
    {
        ArgumentNullException.ThrowIfNull(mailbox);
        ArgumentNullException.ThrowIfNull(response);
        var code = (int)response.StatusCode;
        Outcomes[Key(mailbox)] = new DeliveryOutcome(OutcomeClassifier.FromCode(code), OutcomeClassifier.Reply(code, response.Response));
    }

    protected override void OnNoRecipientsAccepted(MimeMessage message) => throw new NoRecipientsAcceptedException();
}
