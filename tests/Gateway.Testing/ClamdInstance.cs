using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Gateway.Testing;

/// <summary>
/// A real, private clamd (Debian's <c>clamav-daemon</c>) for tests, on a free loopback port: the repository's
/// <c>deploy/clamav/clamd-gateway.conf</c> plus the instance lines (<c>TCPSocket</c>, <c>TCPAddr</c>,
/// <c>DatabaseDirectory</c>, <c>LogFile</c>, <c>PidFile</c>, <c>User</c>, <c>Foreground</c>), and the shipped signature
/// database <c>deploy/clamav/db</c> (EICAR and the gateway's test signature; no freshclam, no internet).
/// <see cref="StopAsync"/> and <see cref="RestartAsync"/> stop it and start it again on the same port.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ClamdInstance : IAsyncDisposable
{
    public const string ClamdBinary = "/usr/sbin/clamd";

    /// <summary>The text of the gateway's own test signature (deploy/clamav/db/gateway.ndb): any part containing it is malware.</summary>
    public const string TestSignature = "GATEWAY-PROTECTION-TEST-SIGNATURE-7d41c2e9";

    /// <summary>The 68-byte EICAR anti-virus test file.</summary>
    public static readonly byte[] Eicar = Encoding.ASCII.GetBytes(@"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*");

    private Process? _process;

    private ClamdInstance(string directory, int port)
    {
        Directory = directory;
        Port = port;
    }

    public string Directory { get; }

    public int Port { get; }

    /// <summary><c>127.0.0.1:port</c>, the form of <c>Gateway:Protection:ClamdServers</c> entries.</summary>
    public string Address => $"127.0.0.1:{Port}";

    public string LogPath => Path.Combine(Directory, "clamd.log");

    public static async Task<ClamdInstance> StartAsync(CancellationToken cancellationToken = default)
    {
        if (!File.Exists(ClamdBinary))
        {
            throw new InvalidOperationException("clamd is not installed (Debian package 'clamav-daemon'); run scripts/install-deps.sh");
        }

        var root = Path.Combine(Path.GetTempPath(), "gw-clamd-" + Guid.NewGuid().ToString("N")[..10]);
        var instance = new ClamdInstance(root, FreePort.Get());
        try
        {
            var db = Path.Combine(root, "db");
            System.IO.Directory.CreateDirectory(db);
            var deploy = RspamdInstance.RepositoryPath("deploy", "clamav");
            foreach (var file in System.IO.Directory.GetFiles(Path.Combine(deploy, "db")).Where(f => f.EndsWith(".hdb", StringComparison.Ordinal) || f.EndsWith(".ndb", StringComparison.Ordinal)))
            {
                File.Copy(file, Path.Combine(db, Path.GetFileName(file)));
            }

            var conf = await File.ReadAllTextAsync(Path.Combine(deploy, "clamd-gateway.conf"), cancellationToken).ConfigureAwait(false);
            var root_ = Environment.UserName == "root";
            conf += $"\nTCPSocket {instance.Port}\nTCPAddr 127.0.0.1\nDatabaseDirectory {db}\nLogFile {instance.LogPath}\nPidFile {Path.Combine(root, "clamd.pid")}\nForeground yes\n" +
                    (root_ ? "User clamav\n" : string.Empty);
            await File.WriteAllTextAsync(Path.Combine(root, "clamd.conf"), conf, cancellationToken).ConfigureAwait(false);
            if (root_)
            {
                await EngineProcess.RunAsync("chown", ["-R", "clamav", root], cancellationToken).ConfigureAwait(false);
            }

            await instance.RestartAsync(cancellationToken).ConfigureAwait(false);
            return instance;
        }
        catch
        {
            await instance.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Starts clamd (again) on the instance's port and waits for PING → PONG.</summary>
    public async Task RestartAsync(CancellationToken cancellationToken = default)
    {
        var psi = new ProcessStartInfo(ClamdBinary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(Path.Combine(Directory, "clamd.conf"));
        _process = Process.Start(psi) ?? throw new InvalidOperationException("clamd did not start");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var started = Stopwatch.StartNew();
        while (true)
        {
            if (await PingAsync(cancellationToken).ConfigureAwait(false))
            {
                return;
            }

            if (_process.HasExited || started.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new InvalidOperationException($"clamd did not answer PING on {Address}: {(File.Exists(LogPath) ? await File.ReadAllTextAsync(LogPath, cancellationToken).ConfigureAwait(false) : "no log")}");
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    public async Task<bool> PingAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(IPAddress.Loopback, Port, cancellationToken).ConfigureAwait(false);
            await socket.SendAsync("zPING\0"u8.ToArray(), SocketFlags.None, cancellationToken).ConfigureAwait(false);
            var buffer = new byte[16];
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            return Encoding.ASCII.GetString(buffer, 0, n).StartsWith("PONG", StringComparison.Ordinal);
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public async Task StopAsync() => _process = await EngineProcess.KillAsync(_process).ConfigureAwait(false);

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
