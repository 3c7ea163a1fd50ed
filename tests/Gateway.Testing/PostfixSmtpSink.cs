using System.Diagnostics;
using System.Net;

namespace Gateway.Testing;

/// <summary>
/// A receiving SMTP server for end-to-end tests: Postfix's <c>smtp-sink</c> (package <c>postfix</c>) on a free
/// loopback port, accepting everything and keeping each message (with its envelope) as a file. Stands in for
/// a customer's inbound server, or for the Deliverer's intake in tests of Postfix's routing.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class PostfixSmtpSink : IAsyncDisposable
{
    public const string Binary = "/usr/sbin/smtp-sink";

    private readonly Process _process;

    private PostfixSmtpSink(Process process, IPEndPoint endPoint, string directory)
    {
        _process = process;
        EndPoint = endPoint;
        Directory = directory;
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>Where messages are stored, one file each.</summary>
    public string Directory { get; }

    public static async Task<PostfixSmtpSink> StartAsync(IPAddress? address = null, CancellationToken cancellationToken = default)
    {
        address ??= IPAddress.Loopback;
        var endPoint = new IPEndPoint(address, FreePort.Get(address));
        var dir = Path.Combine(Path.GetTempPath(), "gw-sink-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(dir);
        // smtp-sink drops root privileges to -u before writing; let that user write here.
        File.SetUnixFileMode(dir, (UnixFileMode)0b111_111_111);
        var psi = new ProcessStartInfo(Binary) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { "-u", "nobody", "-h", "sink.test.example", "-d", Path.Combine(dir, "msg."), $"{endPoint.Address}:{endPoint.Port}", "64" })
        {
            psi.ArgumentList.Add(a);
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("smtp-sink did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var sink = new PostfixSmtpSink(process, endPoint, dir);
        await Eventually.WaitAsync(async () =>
        {
            try
            {
                await using var c = await PostfixSmtpClient.ConnectAsync(endPoint, cancellationToken: cancellationToken).ConfigureAwait(false);
                return c.Greeting.Code == 220;
            }
            catch (System.Net.Sockets.SocketException) when (!process.HasExited)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(10), "smtp-sink greeting").ConfigureAwait(false);
        return sink;
    }

    /// <summary>Every message received so far (envelope lines and content, as smtp-sink dumps them).</summary>
    public IReadOnlyList<string> Messages() =>
        System.IO.Directory.GetFiles(Directory).Order(StringComparer.Ordinal).Select(File.ReadAllText).ToList();

    /// <summary>Waits for a message containing <paramref name="text"/> (e.g. a unique subject) and returns it.</summary>
    public async Task<string> WaitForMessageAsync(string text, TimeSpan timeout)
    {
        string? found = null;
        await Eventually.WaitAsync(() =>
        {
            found = Messages().FirstOrDefault(m => m.Contains(text, StringComparison.Ordinal));
            return found is not null;
        }, timeout, $"a message containing '{text}' at {EndPoint}").ConfigureAwait(false);
        return found!;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }

        _process.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
