using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Gateway.Testing;

/// <summary>Where a sink may stop answering (to hold a client mid-transaction).</summary>
public enum SinkStage
{
    None,
    Greeting,
    Mail,
    Rcpt,
    Data,

    /// <summary>After the whole message arrived, before the final reply: the client is "mid-delivery".</summary>
    DataEnd,
}

/// <summary>
/// What a sink answers. Replies are whole lines without CRLF (multi-line replies joined with CRLF).
/// Read at every step, so a test can change it while clients are connected.
/// </summary>
public sealed record SinkBehavior
{
    public string Greeting { get; init; } = "220 sink.test ESMTP";

    /// <summary>Null: a standard EHLO reply with PIPELINING, 8BITMIME, SMTPUTF8, SIZE, ENHANCEDSTATUSCODES.</summary>
    public string? EhloReply { get; init; }

    public string MailReply { get; init; } = "250 2.1.0 Ok";

    /// <summary>Reply per recipient address; null means 250.</summary>
    public Func<string, string>? RcptReply { get; init; }

    public string DataReply { get; init; } = "354 End data with <CR><LF>.<CR><LF>";

    public string DataEndReply { get; init; } = "250 2.0.0 Ok: queued";

    /// <summary>With a certificate the sink offers STARTTLS (RFC 3207) and switches to TLS when asked.</summary>
    public System.Security.Cryptography.X509Certificates.X509Certificate2? TlsCertificate { get; init; }

    /// <summary>Close the connection at once after the reply to the end of DATA (a server that drops the client after its 250).</summary>
    public bool DropAfterDataEnd { get; init; }

    /// <summary>Where to stop answering until <see cref="SmtpSink.ReleaseStall"/> (or the client goes away).</summary>
    public SinkStage StallAt { get; init; }

    public static SinkBehavior Accept { get; } = new();

    /// <summary>Every reply after the greeting is the given temporary or permanent failure at one stage.</summary>
    public static SinkBehavior FailAt(SinkStage stage, string reply) => stage switch
    {
        SinkStage.Greeting => new SinkBehavior { Greeting = reply },
        SinkStage.Mail => new SinkBehavior { MailReply = reply },
        SinkStage.Rcpt => new SinkBehavior { RcptReply = _ => reply },
        SinkStage.Data => new SinkBehavior { DataReply = reply },
        SinkStage.DataEnd => new SinkBehavior { DataEndReply = reply },
        _ => new SinkBehavior(),
    };
}

/// <summary>A message a sink accepted (final 250), or saw before stalling.</summary>
/// <summary>One command line a sink received on its connection number <paramref name="Connection"/>.</summary>
public sealed record SinkCommand(int Connection, string Line)
{
    /// <summary>The verb in upper case (MAIL, RCPT, DATA, RSET …).</summary>
    public string Verb => (Line.Length >= 4 ? Line[..4] : Line).ToUpperInvariant();
}

public sealed record SinkMessage(string Helo, string MailFrom, IReadOnlyList<string> Recipients, byte[] Data, IPEndPoint Client, DateTimeOffset Time)
{
    /// <summary>The TLS protocol the message came over (STARTTLS), or null in the clear.</summary>
    public System.Security.Authentication.SslProtocols? Tls { get; init; }

    public string Text => Encoding.UTF8.GetString(Data);
}

/// <summary>
/// A scriptable SMTP server for tests: real sockets on a given loopback address (127.0.0.x) and a free
/// port; records every envelope and message it accepts; answers per <see cref="Behavior"/>: accept, 4xx/5xx
/// at greeting, MAIL, RCPT (per recipient), DATA or after the data, stall at any of them, or refuse
/// connections altogether (<see cref="Refuse"/>: the port is closed, so connects get ECONNREFUSED).
/// </summary>
public sealed class SmtpSink : IAsyncDisposable
{
    private readonly ConcurrentQueue<SinkMessage> _messages = new();
    private readonly ConcurrentQueue<SinkMessage> _unacknowledged = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private readonly ConcurrentDictionary<Socket, bool> _active = new();
    private TcpListener? _listener;
    private Task _acceptLoop = Task.CompletedTask;
    private TaskCompletionSource _release = NewRelease();
    private readonly ConcurrentQueue<SinkCommand> _commands = new();
    private int _connections;
    private int _tlsFailures;
    private int _stalled;

    private SmtpSink(IPEndPoint endPoint) => EndPoint = endPoint;

    public IPEndPoint EndPoint { get; }

    public IPAddress Address => EndPoint.Address;

    public int Port => EndPoint.Port;

    /// <summary>The address as the route host text (<c>127.0.0.2</c>).</summary>
    public string Host => Address.ToString();

    public SinkBehavior Behavior { get; set; } = SinkBehavior.Accept;

    /// <summary>Messages accepted with a final 250, in arrival order.</summary>
    public IReadOnlyList<SinkMessage> Messages => _messages.ToArray();

    /// <summary>Messages fully received but not acknowledged (stalled at <see cref="SinkStage.DataEnd"/>, or refused after the data).</summary>
    public IReadOnlyList<SinkMessage> Unacknowledged => _unacknowledged.ToArray();

    /// <summary>TLS handshakes the client broke off (it did not accept the certificate).</summary>
    public int TlsFailures => Volatile.Read(ref _tlsFailures);

    /// <summary>Every command line received, with the number of its connection (1, 2, …), in arrival order.</summary>
    public IReadOnlyList<SinkCommand> Commands => _commands.ToArray();

    /// <summary>TCP connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>Clients currently held at <see cref="SinkBehavior.StallAt"/>.</summary>
    public int Stalled => Volatile.Read(ref _stalled);

    public bool Listening { get; private set; }

    public static SmtpSink Start(IPAddress address, int? port = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        var sink = new SmtpSink(new IPEndPoint(address, port ?? FreePort.Get(address)));
        sink.Listen();
        return sink;
    }

    public static SmtpSink Start(string address, int? port = null) => Start(IPAddress.Parse(address), port);

    /// <summary>
    /// The host goes down: the listening socket closes (new connections are refused until <see cref="Listen"/>)
    /// and open connections are reset, so a client's cached connection fails too.
    /// </summary>
    public void Refuse()
    {
        lock (_gate)
        {
            _listener?.Stop();
            _listener = null;
            Listening = false;
        }

        foreach (var socket in _active.Keys)
        {
            try
            {
                socket.LingerState = new LingerOption(true, 0);
                socket.Close();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>Listens (again) on the same address and port.</summary>
    public void Listen()
    {
        lock (_gate)
        {
            if (_listener is not null)
            {
                return;
            }

            var listener = new TcpListener(EndPoint);
            listener.Server.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Start(512);
            _listener = listener;
            Listening = true;
            _acceptLoop = AcceptLoopAsync(listener);
        }
    }

    /// <summary>Lets every stalled client go on (and later ones pass the stall point until the behaviour changes).</summary>
    public void ReleaseStall()
    {
        var old = Interlocked.Exchange(ref _release, NewRelease());
        old.TrySetResult();
    }

    public void Clear()
    {
        _messages.Clear();
        _unacknowledged.Clear();
    }

    /// <summary>Waits until <paramref name="count"/> messages were accepted; returns them.</summary>
    public async Task<IReadOnlyList<SinkMessage>> WaitForMessagesAsync(int count, TimeSpan timeout)
    {
        await Eventually.WaitAsync(() => _messages.Count >= count, timeout, $"{count} message(s) at sink {EndPoint} (has {_messages.Count})").ConfigureAwait(false);
        return Messages;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        Refuse();
        _release.TrySetResult();
        try
        {
            await _acceptLoop.ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }

        _stop.Dispose();
    }

    private static TaskCompletionSource NewRelease() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task AcceptLoopAsync(TcpListener listener)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener.AcceptSocketAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException or InvalidOperationException)
            {
                return;
            }

            var number = Interlocked.Increment(ref _connections);
            _ = Task.Run(() => ServeAsync(socket, number));
        }
    }

    private async Task ServeAsync(Socket socket, int number)
    {
        var client = (IPEndPoint)socket.RemoteEndPoint!;
        _active.TryAdd(socket, true);
        using var untrack = new Untrack(_active, socket);
        await using var network = new NetworkStream(socket, ownsSocket: true);
        Stream stream = network;
        System.Net.Security.SslStream? tls = null;
        var reader = new LineReader(stream);
        try
        {
            var behavior = Behavior;
            if (!await StallIfAsync(behavior, SinkStage.Greeting).ConfigureAwait(false))
            {
                return;
            }

            await SendAsync(stream, behavior.Greeting).ConfigureAwait(false);
            if (!behavior.Greeting.StartsWith('2'))
            {
                // RFC 5321 §3.1: after a 554 greeting only QUIT is useful; a 421 closes at once.
                if (behavior.Greeting.StartsWith("421", StringComparison.Ordinal))
                {
                    return;
                }
            }

            string helo = string.Empty;
            string? from = null;
            var rcpts = new List<string>();
            while (!_stop.IsCancellationRequested)
            {
                var lineBytes = await reader.ReadLineAsync(_stop.Token).ConfigureAwait(false);
                if (lineBytes is null)
                {
                    return;
                }

                var line = Encoding.UTF8.GetString(lineBytes);
                _commands.Enqueue(new SinkCommand(number, line));
                var verb = line.Length >= 4 ? line[..4].ToUpperInvariant() : line.ToUpperInvariant();
                behavior = Behavior;
                switch (verb)
                {
                    case "EHLO":
                        helo = line.Length > 5 ? line[5..] : string.Empty;
                        await SendAsync(stream, behavior.Greeting.StartsWith('2')
                            ? behavior.EhloReply ?? "250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-SIZE 104857600\r\n" +
                              (behavior.TlsCertificate is not null && tls is null ? "250-STARTTLS\r\n" : string.Empty) + "250 ENHANCEDSTATUSCODES"
                            : "503 5.5.0 Bad sequence").ConfigureAwait(false);
                        break;
                    case "STAR" when line.Equals("STARTTLS", StringComparison.OrdinalIgnoreCase) && behavior.TlsCertificate is { } certificate && tls is null:
                        await SendAsync(stream, "220 2.0.0 Ready to start TLS").ConfigureAwait(false);
                        tls = new System.Net.Security.SslStream(network, leaveInnerStreamOpen: true);
                        try
                        {
                            await tls.AuthenticateAsServerAsync(certificate).ConfigureAwait(false);
                        }
                        catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException)
                        {
                            Interlocked.Increment(ref _tlsFailures);
                            return; // the client refused our certificate (verify mode): it goes away
                        }

                        // RFC 3207 §4.2: the session starts over; nothing said before counts.
                        stream = tls;
                        reader = new LineReader(stream);
                        helo = string.Empty;
                        from = null;
                        rcpts.Clear();
                        break;
                    case "HELO":
                        helo = line.Length > 5 ? line[5..] : string.Empty;
                        await SendAsync(stream, behavior.Greeting.StartsWith('2') ? "250 sink.test" : "503 5.5.0 Bad sequence").ConfigureAwait(false);
                        break;
                    case "MAIL":
                        if (!await StallIfAsync(behavior, SinkStage.Mail).ConfigureAwait(false))
                        {
                            return;
                        }

                        from = Path(line);
                        rcpts.Clear();
                        await SendAsync(stream, behavior.MailReply).ConfigureAwait(false);
                        if (!behavior.MailReply.StartsWith('2'))
                        {
                            from = null;
                        }

                        break;
                    case "RCPT":
                        if (!await StallIfAsync(behavior, SinkStage.Rcpt).ConfigureAwait(false))
                        {
                            return;
                        }

                        var rcpt = Path(line);
                        var reply = from is null ? "503 5.5.1 need MAIL" : behavior.RcptReply?.Invoke(rcpt) ?? "250 2.1.5 Ok";
                        if (reply.StartsWith('2'))
                        {
                            rcpts.Add(rcpt);
                        }

                        await SendAsync(stream, reply).ConfigureAwait(false);
                        break;
                    case "DATA":
                        if (!await StallIfAsync(behavior, SinkStage.Data).ConfigureAwait(false))
                        {
                            return;
                        }

                        if (from is null || rcpts.Count == 0)
                        {
                            await SendAsync(stream, "554 5.5.1 no valid recipients").ConfigureAwait(false);
                            break;
                        }

                        await SendAsync(stream, behavior.DataReply).ConfigureAwait(false);
                        if (!behavior.DataReply.StartsWith('3'))
                        {
                            break;
                        }

                        var data = await reader.ReadDataAsync(_stop.Token).ConfigureAwait(false);
                        if (data is null)
                        {
                            return;
                        }

                        var message = new SinkMessage(helo, from, rcpts.ToList(), data, client, DateTimeOffset.UtcNow) { Tls = tls?.SslProtocol };
                        behavior = Behavior;
                        if (behavior.StallAt == SinkStage.DataEnd)
                        {
                            _unacknowledged.Enqueue(message);
                        }

                        if (!await StallIfAsync(behavior, SinkStage.DataEnd).ConfigureAwait(false) || (behavior.StallAt == SinkStage.DataEnd && PeerClosed(socket)))
                        {
                            // A client that went away while held (killed) never got the reply: not accepted.
                            return;
                        }

                        behavior = Behavior;
                        if (behavior.DataEndReply.StartsWith('2'))
                        {
                            _messages.Enqueue(message);
                        }
                        else if (behavior.StallAt != SinkStage.DataEnd)
                        {
                            _unacknowledged.Enqueue(message);
                        }

                        await SendAsync(stream, behavior.DataEndReply).ConfigureAwait(false);
                        if (behavior.DropAfterDataEnd)
                        {
                            socket.Shutdown(SocketShutdown.Both);
                            return;
                        }

                        from = null;
                        rcpts.Clear();
                        break;
                    case "RSET":
                        from = null;
                        rcpts.Clear();
                        await SendAsync(stream, "250 2.0.0 Ok").ConfigureAwait(false);
                        break;
                    case "NOOP":
                        await SendAsync(stream, "250 2.0.0 Ok").ConfigureAwait(false);
                        break;
                    case "QUIT":
                        await SendAsync(stream, "221 2.0.0 Bye").ConfigureAwait(false);
                        return;
                    default:
                        await SendAsync(stream, "502 5.5.2 Command not implemented").ConfigureAwait(false);
                        break;
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // The client went away (or was killed): what it did not finish is simply not recorded.
        }
        finally
        {
            tls?.Dispose();
        }
    }

    /// <summary>Holds the connection at <paramref name="stage"/> while the behaviour says so; false if the sink stops meanwhile.</summary>
    private async Task<bool> StallIfAsync(SinkBehavior behavior, SinkStage stage)
    {
        if (behavior.StallAt != stage)
        {
            return true;
        }

        Interlocked.Increment(ref _stalled);
        try
        {
            await _release.Task.WaitAsync(_stop.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        finally
        {
            Interlocked.Decrement(ref _stalled);
        }
    }

    private static bool PeerClosed(Socket socket)
    {
        try
        {
            return socket.Poll(0, SelectMode.SelectRead) && socket.Available == 0;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return true;
        }
    }

    private static string Path(string line)
    {
        var lt = line.IndexOf('<', StringComparison.Ordinal);
        var gt = line.LastIndexOf('>');
        return lt >= 0 && gt > lt ? line[(lt + 1)..gt] : string.Empty;
    }

    private static async Task SendAsync(Stream stream, string reply)
    {
        var bytes = Encoding.UTF8.GetBytes(reply + "\r\n");
        await stream.WriteAsync(bytes).ConfigureAwait(false);
        await stream.FlushAsync().ConfigureAwait(false);
    }

    private sealed class Untrack(ConcurrentDictionary<Socket, bool> active, Socket socket) : IDisposable
    {
        public void Dispose() => active.TryRemove(socket, out _);
    }

    /// <summary>Byte-exact line reading (commands and DATA) over a stream.</summary>
    private sealed class LineReader(Stream stream)
    {
        private readonly byte[] _buffer = new byte[64 * 1024];
        private int _start;
        private int _end;

        /// <summary>One line without CRLF, or null at end of stream.</summary>
        public async Task<byte[]?> ReadLineAsync(CancellationToken cancellationToken)
        {
            var line = new List<byte>();
            while (true)
            {
                var lf = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (lf >= 0)
                {
                    line.AddRange(new ArraySegment<byte>(_buffer, _start, lf - _start));
                    _start = lf + 1;
                    if (line.Count > 0 && line[^1] == '\r')
                    {
                        line.RemoveAt(line.Count - 1);
                    }

                    return line.ToArray();
                }

                line.AddRange(new ArraySegment<byte>(_buffer, _start, _end - _start));
                _start = _end = 0;
                var n = await stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    return null;
                }

                _end = n;
            }
        }

        /// <summary>The DATA content up to the lone dot, un-stuffed, lines ending CRLF; null at end of stream.</summary>
        public async Task<byte[]?> ReadDataAsync(CancellationToken cancellationToken)
        {
            using var data = new MemoryStream();
            while (true)
            {
                var line = await ReadLineAsync(cancellationToken).ConfigureAwait(false);
                if (line is null)
                {
                    return null;
                }

                if (line.Length == 1 && line[0] == '.')
                {
                    return data.ToArray();
                }

                var offset = line.Length > 0 && line[0] == '.' ? 1 : 0;
                data.Write(line, offset, line.Length - offset);
                data.Write("\r\n"u8);
            }
        }
    }
}
