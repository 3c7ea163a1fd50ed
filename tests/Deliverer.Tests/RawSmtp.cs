using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Deliverer.Tests;

/// <summary>A byte-level SMTP client for the intake tests: exact commands, pipelined writes, every reply read back.</summary>
internal sealed class RawSmtp : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly StringBuilder _pending = new();

    private RawSmtp(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public static async Task<RawSmtp> ConnectAsync(IPEndPoint intake, IPAddress? from = null)
    {
        var tcp = from is null ? new TcpClient() : new TcpClient(new IPEndPoint(from, 0));
        await tcp.ConnectAsync(intake);
        return new RawSmtp(tcp);
    }

    /// <summary>Sends one message with EHLO, MAIL, RCPT..., DATA in one pipelined write; returns the final reply.</summary>
    public static async Task<string> SendAsync(IPEndPoint intake, string from, IReadOnlyList<string> to, string data, bool eightBit = false)
    {
        await using var c = await ConnectAsync(intake);
        await c.ReadReplyAsync();
        await c.WriteAsync("EHLO client.test\r\n");
        await c.ReadReplyAsync();
        var cmds = new StringBuilder($"MAIL FROM:<{from}>{(eightBit ? " BODY=8BITMIME" : string.Empty)}\r\n");
        foreach (var t in to)
        {
            cmds.Append(Rcpt(t));
        }

        cmds.Append("DATA\r\n");
        await c.WriteAsync(cmds.ToString());
        for (var i = 0; i < to.Count + 2; i++)
        {
            var r = await c.ReadReplyAsync();
            if (!r.StartsWith('2') && !r.StartsWith("354", StringComparison.Ordinal))
            {
                return r;
            }
        }

        await c.WriteAsync(DotStuff(data) + ".\r\n");
        var final = await c.ReadReplyAsync();
        await c.WriteAsync("QUIT\r\n");
        return final;
    }

    public static string DotStuff(string data) =>
        string.Join("\r\n", data.Split("\r\n").Select(l => l.StartsWith('.') ? "." + l : l));

    public Task WriteAsync(string text) => WriteAsync(Encoding.UTF8.GetBytes(text));

    public async Task WriteAsync(byte[] bytes)
    {
        await _stream.WriteAsync(bytes);
        await _stream.FlushAsync();
    }

    /// <summary>One complete reply (all lines of a multi-line reply, joined by CRLF), or empty when the server closed.</summary>
    public async Task<string> ReadReplyAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        var lines = new List<string>();
        while (true)
        {
            var line = await ReadLineAsync(cts.Token);
            if (line is null)
            {
                return string.Join("\r\n", lines);
            }

            lines.Add(line);
            if (line.Length < 4 || line[3] != '-')
            {
                return string.Join("\r\n", lines);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _tcp.Dispose();
    }

    private static string Rcpt(string to) => $"RCPT TO:<{to}>\r\n";

    private async Task<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        var buffer = new byte[1];
        var bytes = new List<byte>();
        while (true)
        {
            var pending = _pending.ToString();
            var nl = pending.IndexOf('\n', StringComparison.Ordinal);
            if (nl >= 0)
            {
                _pending.Remove(0, nl + 1);
                return pending[..nl].TrimEnd('\r');
            }

            int n;
            try
            {
                n = await _stream.ReadAsync(buffer, cancellationToken);
            }
            catch (IOException)
            {
                n = 0;
            }

            if (n == 0)
            {
                return _pending.Length > 0 ? _pending.ToString() : null;
            }

            bytes.Add(buffer[0]);
            if (buffer[0] == '\n')
            {
                _pending.Append(Encoding.UTF8.GetString(bytes.ToArray()));
                bytes.Clear();
            }
        }
    }
}
