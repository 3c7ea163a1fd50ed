using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Gateway.Core.Delivery;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;
using MimeKit;

namespace Gateway.Deliverer.Delivery;

/// <summary>The result of one SMTP transaction with one host.</summary>
/// <param name="Recipients">Per-recipient outcome for those the host answered individually.</param>
/// <param name="HostFailure">Set when the host or the transaction failed as a whole (connect, greeting, MAIL, DATA): it applies to every recipient without its own outcome.</param>
public sealed record TransactionResult(IReadOnlyDictionary<string, DeliveryOutcome> Recipients, DeliveryOutcome? HostFailure)
{
    /// <summary>The host did not connect or greet in time: a dead host for a while (<see cref="DeadHosts"/>).</summary>
    public bool TimedOut { get; init; }
}

/// <summary>
/// Delivery over SMTP with MailKit: EHLO, opportunistic STARTTLS (RFC 3207; certificates are not
/// checked, as Postfix's <c>smtp_tls_security_level = may</c>, RFC 7435), one transaction per message
/// with per-recipient replies, and a small cache of idle connections per destination so consecutive
/// messages to one host reuse the session (Postfix's connection cache does the same).
/// </summary>
public sealed partial class SmtpTransport(DelivererOptions options, Core.Delivery.QueueOptions queueOptions, TimeProvider clock, ILogger<SmtpTransport> logger) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<IPEndPoint, ConcurrentStack<(GatewaySmtpClient Client, long IdleSince)>> _idle = new();
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

        for (var attempt = 0; ; attempt++)
        {
            var (client, reused) = attempt == 0 ? Rent(endpoint.Address) : (null, false);
            try
            {
                client ??= await ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                return new TransactionResult(new Dictionary<string, DeliveryOutcome>(), OutcomeClassifier.Classify(e))
                {
                    TimedOut = e is OperationCanceledException or TimeoutException or SocketException { SocketErrorCode: SocketError.TimedOut },
                };
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

                Return(endpoint.Address, client);
                return new TransactionResult(results, null);
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

                return new TransactionResult(results, outcome);
            }
        }
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
                _idle.TryRemove(new KeyValuePair<IPEndPoint, ConcurrentStack<(GatewaySmtpClient, long)>>(ep, stack));
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

    private (GatewaySmtpClient? Client, bool Reused) Rent(IPEndPoint endpoint)
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

    private void Return(IPEndPoint endpoint, GatewaySmtpClient client)
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
        var client = new GatewaySmtpClient
        {
            LocalDomain = queueOptions.EffectiveHostName,
            Timeout = (int)Math.Min(int.MaxValue, options.CommandTimeout.TotalMilliseconds),
            CheckCertificateRevocation = false,
        };
        // Opportunistic TLS protects against passive listening only; the peer is not authenticated (RFC 7435).
#pragma warning disable CA5359 // Do not disable certificate validation: opportunistic STARTTLS, as Postfix's "may" level.
        client.ServerCertificateValidationCallback = static (_, _, _, _) => true;
#pragma warning restore CA5359
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
            await client.ConnectAsync(socket, endpoint.Address.Address.ToString(), endpoint.Address.Port,
                options.OpportunisticTls ? SecureSocketOptions.StartTlsWhenAvailable : SecureSocketOptions.None, timeout.Token).ConfigureAwait(false);
            return client;
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
