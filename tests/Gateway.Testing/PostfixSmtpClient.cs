using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Gateway.Testing;

/// <summary>One SMTP reply: the code and the text of each line (RFC 5321 §4.2).</summary>
public sealed record SmtpReply(int Code, IReadOnlyList<string> Lines)
{
    /// <summary>The reply as the client saw it on one line: <c>554 5.7.1 &lt;x@y&gt;: Recipient address rejected: NO-DOMAIN</c>.</summary>
    public override string ToString() => string.Join(" / ", Lines.Select(l => $"{Code} {l}"));

    public bool IsPositive => Code is >= 200 and < 400;

    public bool IsTransient => Code is >= 400 and < 500;

    public bool IsPermanent => Code >= 500;
}

/// <summary>
/// A plain SMTP client for end-to-end tests against the private Postfix (<see cref="PostfixInstance"/>) or
/// any SMTP server: one command at a time, replies returned as they are (no exceptions on 4xx/5xx), so
/// tests can assert the exact text. The client can bind to a chosen local address (e.g. 127.0.0.7) to
/// play a particular sending server.
/// </summary>
public sealed class PostfixSmtpClient : IAsyncDisposable
{
    private static readonly TimeSpan ReadTimeout = TimeSpan.FromSeconds(30);
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly StreamReader _reader;

    private PostfixSmtpClient(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _reader = new StreamReader(_stream, Encoding.UTF8);
    }

    public SmtpReply Greeting { get; private set; } = new(0, []);

    /// <summary>Connects (from <paramref name="localAddress"/> when given) and reads the greeting.</summary>
    public static async Task<PostfixSmtpClient> ConnectAsync(IPEndPoint server, IPAddress? localAddress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(server);
        var socket = new Socket(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (localAddress is not null)
            {
                socket.Bind(new IPEndPoint(localAddress, 0));
            }

            await socket.ConnectAsync(server, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var client = new PostfixSmtpClient(socket);
        client.Greeting = await client.ReadReplyAsync(cancellationToken).ConfigureAwait(false);
        return client;
    }

    /// <summary>Sends one command line and reads its reply.</summary>
    public async Task<SmtpReply> CommandAsync(string line, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(line);
        await _stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\r\n"), cancellationToken).ConfigureAwait(false);
        return await ReadReplyAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task<SmtpReply> EhloAsync(string name = "client.test.example", CancellationToken cancellationToken = default) =>
        CommandAsync("EHLO " + name, cancellationToken);

    public Task<SmtpReply> MailFromAsync(string sender, CancellationToken cancellationToken = default) =>
        CommandAsync($"MAIL FROM:<{sender}>", cancellationToken);

    public Task<SmtpReply> RcptToAsync(string recipient, CancellationToken cancellationToken = default) =>
        CommandAsync($"RCPT TO:<{recipient}>", cancellationToken);

    /// <summary>DATA, then the message (dot-stuffed, RFC 5321 §4.5.2) and the final dot; returns the final reply (or DATA's if it was refused).</summary>
    public async Task<SmtpReply> DataAsync(string message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        var go = await CommandAsync("DATA", cancellationToken).ConfigureAwait(false);
        if (go.Code != 354)
        {
            return go;
        }

        var body = new StringBuilder();
        foreach (var line in message.ReplaceLineEndings("\n").Split('\n'))
        {
            body.Append(line.StartsWith('.') ? "." + line : line).Append("\r\n");
        }

        body.Append(".\r\n");
        await _stream.WriteAsync(Encoding.UTF8.GetBytes(body.ToString()), cancellationToken).ConfigureAwait(false);
        return await ReadReplyAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// DATA, then <paramref name="content"/> exactly as given (no dot-stuffing, no terminator added: the caller's bytes
    /// end the data, or do not); returns DATA's reply when it was refused, else the first reply after the content.
    /// </summary>
    public async Task<SmtpReply> RawDataAsync(byte[] content, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(content);
        var go = await CommandAsync("DATA", cancellationToken).ConfigureAwait(false);
        if (go.Code != 354)
        {
            return go;
        }

        await _stream.WriteAsync(content, cancellationToken).ConfigureAwait(false);
        return await ReadReplyAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Every further reply until the server closes the connection or stays silent for <paramref name="quiet"/>.</summary>
    public async Task<IReadOnlyList<SmtpReply>> DrainRepliesAsync(TimeSpan quiet, CancellationToken cancellationToken = default)
    {
        var replies = new List<SmtpReply>();
        while (true)
        {
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(quiet);
            try
            {
                replies.Add(await ReadReplyAsync(wait.Token).ConfigureAwait(false));
            }
            catch (Exception e) when (e is OperationCanceledException or IOException && !cancellationToken.IsCancellationRequested)
            {
                return replies;
            }
        }
    }

    public async Task QuitAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            await CommandAsync("QUIT", cancellationToken).ConfigureAwait(false);
        }
        catch (IOException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _reader.Dispose();
        await _stream.DisposeAsync().ConfigureAwait(false);
        _socket.Dispose();
    }

    /// <summary>
    /// One whole session: EHLO, MAIL, each RCPT, and DATA when a recipient was accepted; returns the RCPT
    /// replies and the final DATA reply (null when no recipient was accepted).
    /// </summary>
    public static async Task<(IReadOnlyList<SmtpReply> Rcpt, SmtpReply? Data)> SendAsync(
        IPEndPoint server, string sender, IReadOnlyList<string> recipients, string? message = null, IPAddress? localAddress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(recipients);
        await using var client = await ConnectAsync(server, localAddress, cancellationToken).ConfigureAwait(false);
        await client.EhloAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        await client.MailFromAsync(sender, cancellationToken).ConfigureAwait(false);
        var replies = new List<SmtpReply>();
        foreach (var r in recipients)
        {
            replies.Add(await client.RcptToAsync(r, cancellationToken).ConfigureAwait(false));
        }

        SmtpReply? data = null;
        if (message is not null && replies.Any(r => r.IsPositive))
        {
            data = await client.DataAsync(message, cancellationToken).ConfigureAwait(false);
        }

        await client.QuitAsync(cancellationToken).ConfigureAwait(false);
        return (replies, data);
    }

    private async Task<SmtpReply> ReadReplyAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ReadTimeout);
        var lines = new List<string>();
        var code = 0;
        while (true)
        {
            var line = await _reader.ReadLineAsync(timeout.Token).ConfigureAwait(false)
                ?? throw new IOException("the SMTP server closed the connection");
            if (line.Length < 3 || !int.TryParse(line.AsSpan(0, 3), NumberStyles.None, CultureInfo.InvariantCulture, out code))
            {
                throw new IOException("not an SMTP reply: " + line);
            }

            lines.Add(line.Length > 4 ? line[4..] : string.Empty);
            if (line.Length == 3 || line[3] != '-')
            {
                return new SmtpReply(code, lines);
            }
        }
    }
}
