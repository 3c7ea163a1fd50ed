using System.Diagnostics;
using StackExchange.Redis;

namespace Gateway.Testing;

/// <summary>
/// A real Redis Cluster of three masters on loopback (no replicas), built with
/// <c>redis-cli --cluster create</c>, for the cluster variants of the store tests.
/// </summary>
public sealed class RedisCluster : IAsyncDisposable
{
    private readonly List<Process> _processes = [];

    private RedisCluster(string directory, IReadOnlyList<int> ports)
    {
        Directory = directory;
        Ports = ports;
    }

    public string Directory { get; }

    public IReadOnlyList<int> Ports { get; }

    /// <summary>StackExchange.Redis configuration string naming every master.</summary>
    public string ConnectionString => string.Join(',', Ports.Select(p => $"127.0.0.1:{p}"));

    public static async Task<RedisCluster> StartAsync(int masters = 3, CancellationToken cancellationToken = default)
    {
        var dir = Path.Combine(Path.GetTempPath(), "gw-cluster-" + Guid.NewGuid().ToString("N")[..12]);
        System.IO.Directory.CreateDirectory(dir);
        var ports = Enumerable.Range(0, masters).Select(_ => FreePort.Get()).ToList();
        var cluster = new RedisCluster(dir, ports);
        try
        {
            foreach (var port in ports)
            {
                cluster.StartNode(port, FreePort.Get());
            }

            foreach (var port in ports)
            {
                await WaitPingAsync(port, cancellationToken).ConfigureAwait(false);
            }

            var create = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            create.ArgumentList.Add("--cluster");
            create.ArgumentList.Add("create");
            foreach (var port in ports)
            {
                create.ArgumentList.Add($"127.0.0.1:{port}");
            }

            create.ArgumentList.Add("--cluster-replicas");
            create.ArgumentList.Add("0");
            create.ArgumentList.Add("--cluster-yes");
            using (var p = Process.Start(create)!)
            {
                // Both streams drained at once: a full pipe on the one not read would block redis-cli.
                var output = p.StandardOutput.ReadToEndAsync(cancellationToken);
                var errors = p.StandardError.ReadToEndAsync(cancellationToken);
                await p.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
                if (p.ExitCode != 0)
                {
                    throw new InvalidOperationException("redis-cli --cluster create failed: " + await output.ConfigureAwait(false) + await errors.ConfigureAwait(false));
                }
            }

            // Wait until every node agrees the cluster is up.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            using var mux = await ConnectionMultiplexer.ConnectAsync(cluster.ConnectionString + ",allowAdmin=true").ConfigureAwait(false);
            while (true)
            {
                var ok = true;
                foreach (var port in ports)
                {
                    var info = (string?)await mux.GetServer("127.0.0.1", port).ExecuteAsync("CLUSTER", "INFO").ConfigureAwait(false);
                    ok &= info?.Contains("cluster_state:ok", StringComparison.Ordinal) == true;
                }

                if (ok)
                {
                    break;
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new InvalidOperationException("the cluster did not reach cluster_state:ok");
                }

                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }

            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async Task<ConnectionMultiplexer> ConnectAsync() =>
        await ConnectionMultiplexer.ConnectAsync(ConnectionString + ",allowAdmin=true").ConfigureAwait(false);

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _processes)
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync().ConfigureAwait(false);
            }

            p.Dispose();
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private void StartNode(int port, int busPort)
    {
        var nodeDir = Path.Combine(Directory, port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        System.IO.Directory.CreateDirectory(nodeDir);
        var psi = new ProcessStartInfo("redis-server") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
                 {
                     "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--dir", nodeDir,
                     "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
                     "--cluster-port", busPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", Path.Combine(nodeDir, "redis.log"),
                 })
        {
            psi.ArgumentList.Add(a);
        }

        var process = Process.Start(psi) ?? throw new InvalidOperationException("redis-server did not start");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _processes.Add(process);
    }

    private static async Task WaitPingAsync(int port, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                using var tcp = new System.Net.Sockets.TcpClient();
                await tcp.ConnectAsync("127.0.0.1", port, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (System.Net.Sockets.SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50, cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
