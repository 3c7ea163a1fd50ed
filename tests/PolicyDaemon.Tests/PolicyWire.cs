using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace PolicyDaemon.Tests;

/// <summary>A raw client of the daemon's two protocols, for socket-level tests.</summary>
internal sealed class PolicyWire : IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private readonly Socket _socket;
    private readonly byte[] _buffer = new byte[65536];
    private int _buffered;

    private PolicyWire(Socket socket) => _socket = socket;

    public static async Task<PolicyWire> ConnectAsync(EndPoint endPoint)
    {
        var unix = endPoint is UnixDomainSocketEndPoint;
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, unix ? ProtocolType.Unspecified : ProtocolType.Tcp);
        if (!unix)
        {
            socket.NoDelay = true;
        }

        await socket.ConnectAsync(endPoint);
        return new PolicyWire(socket);
    }

    /// <summary>A request in the shape Postfix 3.7 sends (attribute order and set as captured from it).</summary>
    public static string Request(string recipient, string sender = "someone@unmanaged.example", string client = "198.51.100.7", string state = "RCPT", string context = "") =>
        "request=smtpd_access_policy\n" +
        $"protocol_state={state}\nprotocol_name=ESMTP\nclient_address={client}\nclient_name=unknown\nclient_port=40000\n" +
        $"reverse_client_name=unknown\nserver_address=127.0.0.1\nserver_port=25\nhelo_name=client.example\nsender={sender}\n" +
        $"recipient={recipient}\nrecipient_count=0\nqueue_id=\ninstance=1a2b.3c4d.5e6f.0\nsize=0\netrn_domain=\nstress=\n" +
        "sasl_method=\nsasl_username=\nsasl_sender=\nccert_subject=\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\n" +
        "encryption_protocol=\nencryption_cipher=\nencryption_keysize=0\n" +
        $"policy_context={context}\n\n";

    public Task SendAsync(string text) => SendAsync(Encoding.UTF8.GetBytes(text));

    public async Task SendAsync(byte[] bytes) => await _socket.SendAsync(bytes, SocketFlags.None);

    /// <summary>Ends the sending side (TCP FIN), as a client that stops in the middle of a request.</summary>
    public void ShutdownSend() => _socket.Shutdown(SocketShutdown.Send);

    /// <summary>Sends a policy request; returns the action (without <c>action=</c>), or null if the server closed without a reply.</summary>
    public async Task<string?> AskAsync(string request)
    {
        await SendAsync(request);
        return await ReadPolicyReplyAsync();
    }

    public async Task<string?> ReadPolicyReplyAsync()
    {
        while (true)
        {
            var text = Encoding.UTF8.GetString(_buffer, 0, _buffered);
            var end = text.IndexOf("\n\n", StringComparison.Ordinal);
            if (end >= 0)
            {
                Consume(Encoding.UTF8.GetByteCount(text[..(end + 2)]));
                Assert.StartsWith("action=", text, StringComparison.Ordinal);
                return text["action=".Length..end];
            }

            if (!await FillAsync())
            {
                return null;
            }
        }
    }

    /// <summary>One socketmap lookup; returns the reply payload, or null if the server closed without a reply.</summary>
    public async Task<string?> LookupAsync(string map, string key)
    {
        var payload = Encoding.UTF8.GetBytes(map + " " + key);
        await SendAsync([.. Encoding.ASCII.GetBytes(payload.Length.ToString(CultureInfo.InvariantCulture) + ":"), .. payload, (byte)',']);
        return await ReadNetstringAsync();
    }

    public async Task<string?> ReadNetstringAsync()
    {
        while (true)
        {
            var colon = Array.IndexOf(_buffer, (byte)':', 0, _buffered);
            if (colon > 0)
            {
                var length = int.Parse(Encoding.ASCII.GetString(_buffer, 0, colon), CultureInfo.InvariantCulture);
                if (_buffered >= colon + 1 + length + 1)
                {
                    var value = Encoding.UTF8.GetString(_buffer, colon + 1, length);
                    Assert.Equal((byte)',', _buffer[colon + 1 + length]);
                    Consume(colon + length + 2);
                    return value;
                }
            }

            if (!await FillAsync())
            {
                return null;
            }
        }
    }

    /// <summary>True when the server closes the connection (reads end) with nothing more sent.</summary>
    public async Task<bool> ClosedWithoutReplyAsync()
    {
        var more = await FillAsync();
        return !more && _buffered == 0;
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }

    private void Consume(int n)
    {
        Buffer.BlockCopy(_buffer, n, _buffer, 0, _buffered - n);
        _buffered -= n;
    }

    private async Task<bool> FillAsync()
    {
        using var cts = new CancellationTokenSource(Timeout);
        try
        {
            var n = await _socket.ReceiveAsync(_buffer.AsMemory(_buffered), SocketFlags.None, cts.Token);
            _buffered += n;
            return n > 0;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
