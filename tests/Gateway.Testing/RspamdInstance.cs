using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;

namespace Gateway.Testing;

/// <summary>How to build a private rspamd.</summary>
public sealed class RspamdOptions
{
    /// <summary>The gateway's rspamd configuration (<c>deploy/rspamd</c>, found above the test binaries) copied as the instance's <c>local.d</c>.</summary>
    public string? DeployDirectory { get; set; }

    /// <summary>The DNS server rspamd asks (SPF, DKIM, DMARC): the tests' <see cref="DnsTestServer"/>, <c>ip:port</c>. Required: never the internet.</summary>
    public required string DnsServer { get; set; }

    /// <summary>rspamd's Redis (Bayes, caches), <c>ip:port</c>.</summary>
    public required string Redis { get; set; }

    /// <summary>clamd for rspamd's antivirus module (<c>ip:port</c>); null leaves deploy/rspamd's default.</summary>
    public string? Clamd { get; set; }

    /// <summary>Also run the proxy worker in milter mode (Postfix <c>smtpd_milters</c>), forwarding to this instance's normal worker.</summary>
    public bool Milter { get; set; }

    /// <summary>
    /// Check SPF, DMARC and the other "not for local clients" rules for loopback clients too (<c>check_local</c>): every
    /// test client is on 127.0.0.0/8. On by default; deploy/rspamd keeps rspamd's default (off) for production.
    /// </summary>
    public bool CheckLocal { get; set; } = true;

    /// <summary>Normal worker processes (rspamd's default is one).</summary>
    public int Workers { get; set; } = 1;

    /// <summary>Files for <c>override.d</c> (name → content), applied over everything else.</summary>
    public Dictionary<string, string> Overrides { get; } = new(StringComparer.Ordinal);

    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(90);
}

/// <summary>
/// A real, private rspamd (Debian's <c>rspamd</c> package) for tests, as <see cref="RedisServer"/> and
/// <see cref="PostfixInstance"/> are for theirs: Debian's main configuration, the repository's <c>deploy/rspamd/local.d</c>
/// as the local configuration, and an <c>override.d</c> with what the instance changes: its workers on free loopback
/// ports, its DNS server and Redis, its clamd, a log file, <c>check_local</c>. Started as
/// <c>rspamd -f -u _rspamd -g _rspamd -c /etc/rspamd/rspamd.conf --var=LOCAL_CONFDIR=… --var=DBDIR=… …</c>.
/// Compiled regular expressions (hyperscan) are cached in one folder shared by every instance
/// (<see cref="SharedCacheDirectory"/>): the first start on a machine takes ~10 s, later ones 2-3 s.
/// <see cref="StopAsync"/> and <see cref="RestartAsync"/> stop it and start it again on the same ports.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class RspamdInstance : IAsyncDisposable
{
    public const string RspamdBinary = "/usr/bin/rspamd";
    public const string User = "_rspamd";

    /// <summary>Where the compiled regular expressions are kept between instances.</summary>
    public static readonly string SharedCacheDirectory = Path.Combine(Path.GetTempPath(), "gw-rspamd-hs-cache");

    private readonly RspamdOptions _options;
    private Process? _process;

    private RspamdInstance(string directory, RspamdOptions options, int normal, int controller, int proxy)
    {
        Directory = directory;
        _options = options;
        NormalPort = normal;
        ControllerPort = controller;
        ProxyPort = proxy;
    }

    public string Directory { get; }

    public int NormalPort { get; }

    public int ControllerPort { get; }

    /// <summary>The milter (proxy worker) port; 0 without <see cref="RspamdOptions.Milter"/>.</summary>
    public int ProxyPort { get; }

    /// <summary>The normal worker: what <c>Gateway:Protection:RspamdUrls</c> names.</summary>
    public Uri NormalUrl => new($"http://127.0.0.1:{NormalPort}/");

    /// <summary>The controller (learning, statistics).</summary>
    public Uri ControllerUrl => new($"http://127.0.0.1:{ControllerPort}/");

    public string LogPath => Path.Combine(Directory, "log", "rspamd.log");

    public static async Task<RspamdInstance> StartAsync(RspamdOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!File.Exists(RspamdBinary))
        {
            throw new InvalidOperationException("rspamd is not installed (Debian package 'rspamd'); run scripts/install-deps.sh");
        }

        var deploy = options.DeployDirectory ?? RepositoryPath("deploy", "rspamd");
        for (var attempt = 1; ; attempt++)
        {
            var root = Path.Combine(Path.GetTempPath(), "gw-rspamd-" + Guid.NewGuid().ToString("N")[..10]);
            var instance = new RspamdInstance(root, options, FreePort.Get(), FreePort.Get(), options.Milter ? FreePort.Get() : 0);
            try
            {
                await instance.ConfigureAsync(deploy, cancellationToken).ConfigureAwait(false);
                await instance.StartProcessAsync(cancellationToken).ConfigureAwait(false);
                return instance;
            }
            catch (InvalidOperationException) when (attempt < 3 && instance.ReadLog().Contains("Address already in use", StringComparison.Ordinal))
            {
                await instance.DisposeAsync().ConfigureAwait(false);
            }
            catch
            {
                await instance.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    /// <summary>A file of the repository (walking up from the test binaries to <c>Gateway.sln</c>).</summary>
    public static string RepositoryPath(params string[] parts) => RepositoryPaths.Get(parts);

    /// <summary>The log so far.</summary>
    public string ReadLog()
    {
        try
        {
            using var stream = new FileStream(LogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    /// <summary>Stops rspamd (the intake then answers 451 unless a domain passes unscanned mail).</summary>
    public async Task StopAsync()
    {
        _process = await EngineProcess.KillAsync(_process).ConfigureAwait(false);

        // Workers may outlive the main process for a moment; wait until the ports are free again.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline && (Listening(NormalPort) || Listening(ControllerPort)))
        {
            await Task.Delay(50).ConfigureAwait(false);
        }
    }

    /// <summary>Starts it again on the same ports with the same data (after <see cref="StopAsync"/>).</summary>
    public Task RestartAsync(CancellationToken cancellationToken = default) => StartProcessAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        if (Environment.GetEnvironmentVariable("GW_KEEP_RSPAMD") != "1")
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
    }

    private async Task ConfigureAsync(string deploy, CancellationToken cancellationToken)
    {
        var conf = Path.Combine(Directory, "conf");
        var local = Path.Combine(conf, "local.d");
        var overrides = Path.Combine(conf, "override.d");
        foreach (var d in new[] { Directory, conf, local, overrides, Path.Combine(Directory, "db"), Path.Combine(Directory, "run"), Path.Combine(Directory, "log"), SharedCacheDirectory })
        {
            System.IO.Directory.CreateDirectory(d);
        }

        foreach (var file in System.IO.Directory.GetFiles(Path.Combine(deploy, "local.d")))
        {
            File.Copy(file, Path.Combine(local, Path.GetFileName(file)));
        }

        var o = _options;
        var files = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["worker-normal.inc"] = $"bind_socket = \"127.0.0.1:{NormalPort}\";\ncount = {o.Workers};\n",
            ["worker-controller.inc"] = $"bind_socket = \"127.0.0.1:{ControllerPort}\";\n",
            // GW_RSPAMD_LOG=info logs every scan with its symbols (rspamd's default level); GW_KEEP_RSPAMD=1 keeps the folder.
            ["logging.inc"] = $"type = \"file\";\nfilename = \"{LogPath}\";\nlevel = \"{Environment.GetEnvironmentVariable("GW_RSPAMD_LOG") ?? "notice"}\";\n",
            ["options.inc"] = $"dns {{\n  nameserver = [\"{o.DnsServer}\"];\n  timeout = 1s;\n  retransmits = 1;\n}}\nhs_cache_dir = \"{SharedCacheDirectory}/\";\n" +
                              (o.CheckLocal ? "check_local = true;\n" : string.Empty),
            ["redis.conf"] = $"servers = \"{o.Redis}\";\n",
        };
        if (o.Milter)
        {
            files["worker-proxy.inc"] = $"bind_socket = \"127.0.0.1:{ProxyPort}\";\nenabled = true;\nmilter = yes;\ntimeout = 120s;\n" +
                                        $"upstream \"local\" {{\n  default = yes;\n  hosts = \"127.0.0.1:{NormalPort}\";\n}}\n";
        }

        if (o.Clamd is { } clamd)
        {
            var antivirus = await File.ReadAllTextAsync(Path.Combine(local, "antivirus.conf"), cancellationToken).ConfigureAwait(false);
            files["antivirus.conf"] = antivirus.Replace("servers = \"127.0.0.1:3310\";", $"servers = \"{clamd}\";", StringComparison.Ordinal);
        }

        foreach (var (name, content) in o.Overrides)
        {
            files[name] = content;
        }

        foreach (var (name, content) in files)
        {
            await File.WriteAllTextAsync(Path.Combine(overrides, name), content, cancellationToken).ConfigureAwait(false);
        }

        if (Environment.UserName == "root")
        {
            await EngineProcess.RunAsync("chown", ["-R", $"{User}:{User}", Directory, SharedCacheDirectory], cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task StartProcessAsync(CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(RspamdBinary) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        var args = new List<string> { "-f" };
        if (Environment.UserName == "root")
        {
            args.AddRange(["-u", User, "-g", User]);
        }

        args.AddRange([
            "-c", "/etc/rspamd/rspamd.conf",
            $"--var=LOCAL_CONFDIR={Path.Combine(Directory, "conf")}",
            $"--var=DBDIR={Path.Combine(Directory, "db")}",
            $"--var=RUNDIR={Path.Combine(Directory, "run")}",
            $"--var=LOGDIR={Path.Combine(Directory, "log")}",
        ]);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        var output = new StringBuilder();
        _process = Process.Start(psi) ?? throw new InvalidOperationException("rspamd did not start");
        _process.OutputDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        _process.ErrorDataReceived += (_, e) => { lock (output) { output.AppendLine(e.Data); } };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var started = Stopwatch.StartNew();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (await PingAsync(http, NormalUrl, cancellationToken).ConfigureAwait(false) && await PingAsync(http, ControllerUrl, cancellationToken).ConfigureAwait(false)
                && (ProxyPort == 0 || Listening(ProxyPort)))
            {
                return;
            }

            if (_process.HasExited || started.Elapsed > _options.StartTimeout)
            {
                string text;
                lock (output)
                {
                    text = output.ToString();
                }

                throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
                    $"rspamd did not answer on 127.0.0.1:{NormalPort} within {_options.StartTimeout.TotalSeconds:F0} s (exited: {_process.HasExited}).\n{text}\nlog:\n{ReadLog()}"));
            }

            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async Task<bool> PingAsync(HttpClient http, Uri server, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await http.GetAsync(new Uri(server, "ping"), cancellationToken).ConfigureAwait(false);
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    private static bool Listening(int port)
    {
        try
        {
            using var tcp = new System.Net.Sockets.TcpClient();
            tcp.Connect(IPAddress.Loopback, port);
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }
}
