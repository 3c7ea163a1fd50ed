using System.Diagnostics;
using StackExchange.Redis;

namespace Gateway.Testing;

/// <summary>
/// A real redis-server on a free loopback port with its own data folder, started and stopped by a test.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private Process? _process;

    private string? _configFile;
    private IReadOnlyList<string> _extraArgs = [];

    private RedisServer(int port, string directory, bool appendOnly, string appendFsync)
    {
        Port = port;
        Directory = directory;
        AppendOnly = appendOnly;
        AppendFsync = appendFsync;
    }

    public int Port { get; }

    public string Directory { get; }

    public bool AppendOnly { get; }

    /// <summary>The AOF fsync policy: <c>everysec</c> by default, <c>always</c> for <see cref="StartDurableAsync"/>.</summary>
    public string AppendFsync { get; }

    /// <summary>StackExchange.Redis configuration string for the gateway's programs.</summary>
    public string ConnectionString => $"127.0.0.1:{Port}";

    public static Task<RedisServer> StartAsync(bool appendOnly = false, CancellationToken cancellationToken = default) =>
        StartNewAsync(appendOnly, "everysec", cancellationToken);

    /// <summary>
    /// A server configured as the gateway runs Redis in production (AOF, <c>appendfsync always</c>): every write
    /// acknowledged before a kill is there after <see cref="RestartAsync"/>.
    /// </summary>
    public static Task<RedisServer> StartDurableAsync(CancellationToken cancellationToken = default) =>
        StartNewAsync(appendOnly: true, "always", cancellationToken);

    /// <summary>
    /// A server started from a configuration file (as deployed, e.g. deploy/redis/redis-gateway.conf), with this test's
    /// port, folder and log, and <paramref name="extraArgs"/> (<c>--name value</c> pairs) over the file's settings.
    /// </summary>
    public static async Task<RedisServer> StartWithConfigAsync(string configFile, IReadOnlyList<string> extraArgs, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(configFile);
        ArgumentNullException.ThrowIfNull(extraArgs);
        var dir = Path.Combine(Path.GetTempPath(), "gw-redis-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(dir);
        var server = new RedisServer(FreePort.Get(), dir, appendOnly: true, "always") { _configFile = configFile, _extraArgs = extraArgs };
        await server.StartProcessAsync(cancellationToken).ConfigureAwait(false);
        return server;
    }

    /// <summary>Starts the server again on the same port and data (after <see cref="StopAsync"/>).</summary>
    public Task RestartAsync(CancellationToken cancellationToken = default) => StartProcessAsync(cancellationToken);

    /// <summary>Kills the server process (as a crash would); with AOF the data comes back on restart.</summary>
    public async Task StopAsync()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync().ConfigureAwait(false);
        }

        _process?.Dispose();
        _process = null;
    }

    public async Task<ConnectionMultiplexer> ConnectAsync() =>
        await ConnectionMultiplexer.ConnectAsync(ConnectionString + ",allowAdmin=true").ConfigureAwait(false);

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static async Task<RedisServer> StartNewAsync(bool appendOnly, string appendFsync, CancellationToken cancellationToken)
    {
        var dir = Path.Combine(Path.GetTempPath(), "gw-redis-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(dir);
        var server = new RedisServer(FreePort.Get(), dir, appendOnly, appendFsync);
        await server.StartProcessAsync(cancellationToken).ConfigureAwait(false);
        return server;
    }

    private async Task StartProcessAsync(CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo("redis-server")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (_configFile is not null)
        {
            psi.ArgumentList.Add(_configFile);
        }

        string[] own = _configFile is null
            ?
            [
                "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", Directory,
                "--save", "", "--appendonly", AppendOnly ? "yes" : "no", "--appendfsync", AppendFsync, "--daemonize", "no",
                "--logfile", Path.Combine(Directory, "redis.log"),
            ]
            :
            [
                "--port", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", Directory,
                "--daemonize", "no", "--logfile", Path.Combine(Directory, "redis.log"),
            ];
        foreach (var a in own.Concat(_extraArgs))
        {
            psi.ArgumentList.Add(a);
        }

        _process = Process.Start(psi) ?? throw new InvalidOperationException("redis-server did not start; is it installed?");
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                using var tcp = new System.Net.Sockets.TcpClient();
                await tcp.ConnectAsync("127.0.0.1", Port, cancellationToken).ConfigureAwait(false);
                var stream = tcp.GetStream();
                await stream.WriteAsync("PING\r\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
                var buffer = new byte[64];
                var n = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                // -NOAUTH: up, with the default user off (deploy/redis/users.acl).
                if (n > 0 && System.Text.Encoding.ASCII.GetString(buffer, 0, n) is var reply &&
                    (reply.StartsWith("+PONG", StringComparison.Ordinal) || reply.StartsWith("-NOAUTH", StringComparison.Ordinal)))
                {
                    return;
                }
            }
            catch (System.Net.Sockets.SocketException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
            }
            catch (IOException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
            }

            if (_process.HasExited || DateTime.UtcNow > deadline)
            {
                var log = Path.Combine(Directory, "redis.log");
                throw new InvalidOperationException("redis-server did not come up: " + (File.Exists(log) ? await File.ReadAllTextAsync(log, cancellationToken).ConfigureAwait(false) : "no log"));
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }
}
