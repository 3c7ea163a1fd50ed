using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Gateway.Deliverer.Protection;

/// <summary>
/// clamd's <c>INSTREAM</c> command (clamd(8)): <c>zINSTREAM\0</c>, the message in chunks each preceded by its length
/// (4 bytes, network order), a zero-length chunk, then one reply: <c>stream: OK</c>, <c>stream: &lt;name&gt; FOUND</c>
/// or <c>… ERROR</c>. clamd parses the MIME structure itself (its <c>ScanMail</c>), so attachments, archives inside
/// them and encoded parts are scanned. One connection per message; several servers fail over as for rspamd.
/// </summary>
public sealed class ClamdClient
{
    public const string Engine = "clamd";

    /// <summary>Chunk size: clamd's default <c>StreamMaxLength</c> is counted over all chunks, the chunk size only shapes the writes.</summary>
    private const int ChunkSize = 64 * 1024;

    private readonly ServerRotation<EndPoint> _servers;
    private readonly TimeSpan _timeout;

    public ClamdClient(ProtectionOptions options, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(options);
        _servers = new ServerRotation<EndPoint>(options.EffectiveClamdServers, options.ServerBackoff, clock);
        _timeout = options.ClamdTimeout;
    }

    public IReadOnlyList<EndPoint> Servers => _servers.Servers;

    /// <summary>The malware's name, or null when the message is clean; <see cref="ScannerException"/> when no server gave a verdict.</summary>
    public Task<string?> ScanAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken) => ScanAsync(message, null, cancellationToken);

    /// <summary>Scans a message received in pieces: its chunks are read from Redis as they are sent (requirements §11, bounded memory).</summary>
    public Task<string?> ScanAsync(SpooledMessage spooled, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spooled);
        return ScanAsync(ReadOnlyMemory<byte>.Empty, spooled, cancellationToken);
    }

    private async Task<string?> ScanAsync(ReadOnlyMemory<byte> message, SpooledMessage? spooled, CancellationToken cancellationToken)
    {
        var reason = ScannerFailureReasons.Unavailable;
        var detail = "no clamd configured";
        foreach (var (index, server) in _servers.Order())
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_timeout);
            try
            {
                var reply = spooled is null ? await InstreamAsync(server, message, timeout.Token).ConfigureAwait(false)
                    : await InstreamAsync(server, spooled, timeout.Token).ConfigureAwait(false);
                var verdict = ParseReply(reply);
                _servers.Succeeded(index);
                return verdict;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                (reason, detail) = (ScannerFailureReasons.Timeout, $"{server} did not answer within {_timeout.TotalSeconds:0.#} s");
            }
            catch (Exception e) when (e is SocketException or IOException)
            {
                (reason, detail) = (ScannerFailureReasons.Unavailable, $"{server}: {e.Message}");
            }
            catch (FormatException e)
            {
                (reason, detail) = (ScannerFailureReasons.Error, $"{server}: {e.Message}");
            }

            _servers.Failed(index);
        }

        throw new ScannerException(Engine, reason, detail);
    }

    /// <summary>
    /// The virus name in <c>stream: Eicar-Test-Signature FOUND</c>, null for <c>stream: OK</c>;
    /// <see cref="FormatException"/> for an error reply (<c>INSTREAM size limit exceeded. ERROR</c>) or anything else.
    /// </summary>
    public static string? ParseReply(string reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        var text = reply.TrimEnd('\0', '\n', '\r', ' ');
        // In a session (IDSESSION) clamd prefixes a request number ("1: stream: OK"); INSTREAM alone does not.
        var body = text;
        var number = body.IndexOf(": ", StringComparison.Ordinal);
        if (number > 0 && body.AsSpan(0, number).IndexOfAnyExceptInRange('0', '9') < 0)
        {
            body = body[(number + 2)..];
        }

        if (body.StartsWith("stream: ", StringComparison.Ordinal))
        {
            body = body["stream: ".Length..];
        }
        if (body == "OK")
        {
            return null;
        }

        if (body.EndsWith(" FOUND", StringComparison.Ordinal) && body.Length > 6)
        {
            return body[..^6];
        }

        throw new FormatException(text.Length == 0 ? "empty reply" : "clamd says: " + (text.Length > 200 ? text[..200] : text));
    }

    /// <summary>clamd's <c>PING</c> → <c>PONG</c> (health checks).</summary>
    public static async Task<bool> PingAsync(EndPoint server, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(server);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            using var socket = await ConnectAsync(server, cts.Token).ConfigureAwait(false);
            await socket.SendAsync("zPING\0"u8.ToArray(), SocketFlags.None, cts.Token).ConfigureAwait(false);
            return (await ReadReplyAsync(socket, cts.Token).ConfigureAwait(false)).TrimEnd('\0') == "PONG";
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private static async Task<string> InstreamAsync(EndPoint server, ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
    {
        using var socket = await ConnectAsync(server, cancellationToken).ConfigureAwait(false);
        await socket.SendAsync("zINSTREAM\0"u8.ToArray(), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        var length = new byte[4];
        try
        {
            for (var offset = 0; offset < message.Length; offset += ChunkSize)
            {
                var chunk = message.Slice(offset, Math.Min(ChunkSize, message.Length - offset));
                BinaryPrimitives.WriteUInt32BigEndian(length, (uint)chunk.Length);
                await socket.SendAsync(length, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                await socket.SendAsync(chunk, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }

            BinaryPrimitives.WriteUInt32BigEndian(length, 0);
            await socket.SendAsync(length, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException)
        {
            // clamd closes the stream early when it exceeds StreamMaxLength; its reply says so.
        }

        return await ReadReplyAsync(socket, cancellationToken).ConfigureAwait(false);
    }

    /// <summary><c>INSTREAM</c> of a message read from Redis: one chunk in memory at a time.</summary>
    private static async Task<string> InstreamAsync(EndPoint server, SpooledMessage spooled, CancellationToken cancellationToken)
    {
        using var stream = await spooled.OpenAsync().ConfigureAwait(false);
        using var socket = await ConnectAsync(server, cancellationToken).ConfigureAwait(false);
        await socket.SendAsync("zINSTREAM\0"u8.ToArray(), SocketFlags.None, cancellationToken).ConfigureAwait(false);
        var chunk = System.Buffers.ArrayPool<byte>.Shared.Rent(ChunkSize + 4);
        try
        {
            while (true)
            {
                var n = await stream.ReadAtLeastAsync(chunk.AsMemory(4, ChunkSize), ChunkSize, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false);
                BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)n);
                await socket.SendAsync(chunk.AsMemory(0, n + 4), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }
            }
        }
        catch (SocketException)
        {
            // clamd closes the stream early when it exceeds StreamMaxLength; its reply says so.
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(chunk);
        }

        return await ReadReplyAsync(socket, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<Socket> ConnectAsync(EndPoint server, CancellationToken cancellationToken)
    {
        var socket = server is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(server, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Reads up to the NUL that ends a reply of a <c>z</c>-prefixed command (or the end of the connection); at most 4 kB.</summary>
    private static async Task<string> ReadReplyAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        var n = 0;
        while (n < buffer.Length)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(n), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            n += read;
            if (Array.IndexOf(buffer, (byte)0, n - read, read) >= 0)
            {
                break;
            }
        }

        return Encoding.UTF8.GetString(buffer, 0, n);
    }
}
