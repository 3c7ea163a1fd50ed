using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Gateway.Testing;

/// <summary>An extra SMTP listener of a <see cref="PostfixInstance"/> (master.cf service with <c>-o</c> overrides).</summary>
/// <param name="Name">How the test refers to it (also its <c>syslog_name</c> suffix: <c>postfix/&lt;name&gt;</c>).</param>
/// <param name="Overrides">master.cf <c>-o name=value</c> settings, e.g. <c>smtpd_policy_service_policy_context=outbound</c>.</param>
public sealed record PostfixListener(string Name, IReadOnlyDictionary<string, string> Overrides);

/// <summary>How to build a private Postfix instance.</summary>
public sealed class PostfixOptions
{
    /// <summary>
    /// The folder with the gateway's main.cf and master.cf; default: <c>deploy/postfix</c> of the repository
    /// (found by walking up from the test binaries), so tests run the configuration that ships.
    /// </summary>
    public string? DeployDirectory { get; set; }

    /// <summary>
    /// main.cf parameters set after the deploy file's (with <c>postconf -e</c>), e.g.
    /// <c>gateway_policy_service = inet:127.0.0.1:PORT</c>, <c>gateway_socketmap</c>, <c>gateway_intake</c>,
    /// or <c>minimal_backoff_time</c> for delivery tests. Applied last: they win over the instance defaults.
    /// </summary>
    public Dictionary<string, string> Main { get; } = new(StringComparer.Ordinal);

    /// <summary>Address of the public SMTP listener (the deploy file's <c>smtp inet</c> service). Loopback only.</summary>
    public IPAddress ListenAddress { get; set; } = IPAddress.Loopback;

    /// <summary>More SMTP listeners, each on a free port of <see cref="ListenAddress"/>.</summary>
    public List<PostfixListener> ExtraListeners { get; } = [];

    /// <summary>How long start-up may take before the test fails.</summary>
    public TimeSpan StartTimeout { get; set; } = TimeSpan.FromSeconds(30);
}

/// <summary>
/// A real, private Postfix (Debian's <c>postfix</c> package) for tests: its own configuration, queue and
/// data directories under a temporary folder, its SMTP listener on a free loopback port, configured from
/// the repository's <c>deploy/postfix/main.cf</c> and <c>master.cf</c> plus per-test overrides, started and
/// stopped with <c>postfix -c DIR start|stop</c>, logging to a file (<see cref="MaillogPath"/>) instead of syslog.
/// <para>
/// What the instance changes from the deploy files, and why: instance paths (<c>queue_directory</c>,
/// <c>data_directory</c>); <c>maillog_file</c> and <c>maillog_file_prefixes</c> (there is no syslog; both are
/// needed or Postfix exits silently with status 1); the <c>smtp inet</c> listener rebound to
/// <c>ListenAddress:port</c>; <c>chroot = n</c> for every service (a chroot jail needs files copied into the
/// queue directory); <c>inet_interfaces</c>/<c>inet_protocols</c> loopback IPv4; a test <c>myhostname</c>;
/// TLS off (the snakeoil key of main.cf is not readable in CI and loopback tests need no TLS). Then
/// <see cref="PostfixOptions.Main"/>.
/// </para>
/// <example>
/// <code>
/// var options = new PostfixOptions();
/// options.Main["gateway_policy_service"] = $"inet:127.0.0.1:{policyPort}";   // the daemon under test
/// options.Main["gateway_socketmap"] = $"inet:127.0.0.1:{socketmapPort}";
/// options.Main["gateway_intake"] = $"smtp:[127.0.0.1]:{intakePort}";          // e.g. a Deliverer or a PostfixSmtpSink
/// options.ExtraListeners.Add(new("relay", new Dictionary&lt;string, string&gt; { ["smtpd_policy_service_policy_context"] = "outbound" }));
/// await using var postfix = await PostfixInstance.StartAsync(options);
/// var (rcpt, data) = await PostfixSmtpClient.SendAsync(postfix.SmtpEndPoint, "a@x.example", ["b@managed.example"], "Subject: hi\n\nbody\n");
/// await postfix.WaitForMaillogAsync("status=sent", TimeSpan.FromSeconds(10));
/// </code>
/// </example>
/// <para>
/// Needs root (the master process starts as root and drops to the <c>postfix</c> user), like
/// <c>postfix start</c> itself. Several instances can run at once. Set <c>GW_KEEP_POSTFIX=1</c> to keep the
/// folder of a finished instance for inspection.
/// </para>
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed partial class PostfixInstance : IAsyncDisposable
{
    public const string PostfixBinary = "/usr/sbin/postfix";
    public const string PostconfBinary = "/usr/sbin/postconf";

    private readonly Dictionary<string, IPEndPoint> _listeners;
    private bool _running;
    private int? _masterPid;

    private PostfixInstance(string directory, IPEndPoint smtp, Dictionary<string, IPEndPoint> listeners)
    {
        Directory = directory;
        SmtpEndPoint = smtp;
        _listeners = listeners;
    }

    /// <summary>The instance's root folder (config, queue, data and the maillog are inside).</summary>
    public string Directory { get; }

    public string ConfigDirectory => Path.Combine(Directory, "conf");

    public string QueueDirectory => Path.Combine(Directory, "queue");

    public string DataDirectory => Path.Combine(Directory, "data");

    /// <summary>Postfix's log (<c>maillog_file</c>).</summary>
    public string MaillogPath => Path.Combine(Directory, "maillog");

    /// <summary>The public SMTP listener (the deploy file's <c>smtp inet</c> service).</summary>
    public IPEndPoint SmtpEndPoint { get; }

    /// <summary>An extra listener by its <see cref="PostfixListener.Name"/>.</summary>
    public IPEndPoint Listener(string name) => _listeners[name];

    /// <summary>The repository's <c>deploy/postfix</c> folder.</summary>
    public static string DefaultDeployDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "deploy", "postfix");
            if (File.Exists(Path.Combine(candidate, "main.cf")) && File.Exists(Path.Combine(dir.FullName, "Gateway.sln")))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("deploy/postfix not found above " + AppContext.BaseDirectory);
    }

    public static async Task<PostfixInstance> StartAsync(PostfixOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new PostfixOptions();
        if (!File.Exists(PostfixBinary))
        {
            throw new InvalidOperationException("Postfix is not installed (Debian package 'postfix'); run scripts/install-deps.sh");
        }

        if (Environment.UserName != "root")
        {
            throw new InvalidOperationException("a private Postfix instance must be started as root (postfix start runs the master as root)");
        }

        var deploy = options.DeployDirectory ?? DefaultDeployDirectory();
        for (var attempt = 1; ; attempt++)
        {
            var root = Path.Combine(Path.GetTempPath(), "gw-postfix-" + Guid.NewGuid().ToString("N")[..10]);
            var smtp = new IPEndPoint(options.ListenAddress, FreePort.Get(options.ListenAddress));
            var listeners = options.ExtraListeners.ToDictionary(l => l.Name, _ => new IPEndPoint(options.ListenAddress, FreePort.Get(options.ListenAddress)));
            var instance = new PostfixInstance(root, smtp, listeners);
            try
            {
                await instance.ConfigureAsync(deploy, options, cancellationToken).ConfigureAwait(false);
                await instance.RunPostfixAsync("start", cancellationToken).ConfigureAwait(false);
                instance._running = true;
                instance._masterPid = instance.MasterPid();
                await instance.WaitForGreetingAsync(options.StartTimeout, cancellationToken).ConfigureAwait(false);
                return instance;
            }
            catch (InvalidOperationException) when (attempt < 3 && instance.ReadMaillog().Contains("Address already in use", StringComparison.Ordinal))
            {
                // A free port taken between FreePort.Get and Postfix's bind (e.g. by another test's outgoing connection): new ports.
                await instance.DisposeAsync().ConfigureAwait(false);
            }
            catch
            {
                await instance.DisposeAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    private async Task ConfigureAsync(string deploy, PostfixOptions options, CancellationToken cancellationToken)
    {
        // The postfix user must be able to reach its queue and data directories.
        const UnixFileMode Open = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
                                  UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        foreach (var dir in new[] { Directory, ConfigDirectory, QueueDirectory, DataDirectory })
        {
            System.IO.Directory.CreateDirectory(dir);
            File.SetUnixFileMode(dir, Open);
        }

        await RunAsync("chown", ["postfix", DataDirectory], cancellationToken).ConfigureAwait(false);
        File.Copy(Path.Combine(deploy, "main.cf"), Path.Combine(ConfigDirectory, "main.cf"));
        var master = await File.ReadAllTextAsync(Path.Combine(deploy, "master.cf"), cancellationToken).ConfigureAwait(false);
        await File.WriteAllTextAsync(Path.Combine(ConfigDirectory, "master.cf"), RewriteMaster(master, SmtpEndPoint, options.ExtraListeners, _listeners), cancellationToken).ConfigureAwait(false);

        var main = new List<string>
        {
            $"queue_directory={QueueDirectory}",
            $"data_directory={DataDirectory}",
            $"maillog_file={MaillogPath}",
            $"maillog_file_prefixes={Directory}",
            $"inet_interfaces={SmtpEndPoint.Address}",
            "inet_protocols=ipv4",
            $"myhostname=pf{Path.GetFileName(Directory)[^10..]}.test.example",
            "smtpd_tls_security_level=none",
            "smtp_tls_security_level=none",
        };
        main.AddRange(IntakeProxyDefaults(options.Main));
        main.AddRange(options.Main.Select(kv => $"{kv.Key}={kv.Value}"));
        await PostconfAsync(["-e", .. main], cancellationToken).ConfigureAwait(false);
        await PostconfAsync(["-F", "-e", "*/*/chroot = n"], cancellationToken).ConfigureAwait(false);
        await RunPostfixAsync("check", cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The before-queue proxy (main.cf's <c>smtpd_proxy_filter = $gateway_intake_proxy</c>) follows the test's
    /// <c>gateway_intake</c> (<c>smtp:[host]:port</c> → <c>host:port</c>) unless the test names the proxy itself.
    /// Without either (e.g. direct mode, <c>gateway_intake = smtp</c>) the proxy is off, so a test never reaches
    /// the deploy file's default 127.0.0.1:10025.
    /// </summary>
    public static IEnumerable<string> IntakeProxyDefaults(IReadOnlyDictionary<string, string> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        if (main.ContainsKey("gateway_intake_proxy") || main.ContainsKey("smtpd_proxy_filter"))
        {
            yield break;
        }

        var intake = main.TryGetValue("gateway_intake", out var value) ? IntakeNextHop().Match(value) : null;
        yield return intake is { Success: true }
            ? $"gateway_intake_proxy={intake.Groups["host"].Value}:{intake.Groups["port"].Value}"
            : "smtpd_proxy_filter=";
    }

    [GeneratedRegex(@"^smtp:\[(?<host>[^\]]+)\]:(?<port>\d+)$")]
    private static partial Regex IntakeNextHop();

    /// <summary>
    /// master.cf with the public listener (<c>smtp inet</c>) moved to <paramref name="smtp"/> and the extra
    /// listeners appended as copies of it with their <c>-o</c> overrides.
    /// </summary>
    public static string RewriteMaster(string master, IPEndPoint smtp, IEnumerable<PostfixListener> extra, IReadOnlyDictionary<string, IPEndPoint> endpoints)
    {
        ArgumentNullException.ThrowIfNull(master);
        ArgumentNullException.ThrowIfNull(smtp);
        ArgumentNullException.ThrowIfNull(extra);
        ArgumentNullException.ThrowIfNull(endpoints);
        var listener = SmtpInetService();
        if (!listener.IsMatch(master))
        {
            throw new InvalidOperationException("the deploy master.cf has no 'smtp inet … smtpd' service line to rebind");
        }

        var text = listener.Replace(master, m => $"{smtp.Address}:{smtp.Port}{m.Groups["rest"].Value}", 1);
        var sb = new StringBuilder(text);
        if (!text.EndsWith('\n'))
        {
            sb.Append('\n');
        }

        foreach (var l in extra)
        {
            var ep = endpoints[l.Name];
            sb.Append(CultureInfo.InvariantCulture, $"{ep.Address}:{ep.Port} inet n - n - - smtpd\n");
            sb.Append(CultureInfo.InvariantCulture, $"  -o syslog_name=postfix/{l.Name}\n");
            foreach (var (k, v) in l.Overrides)
            {
                sb.Append(CultureInfo.InvariantCulture, $"  -o {k}={v}\n");
            }
        }

        return sb.ToString();
    }

    /// <summary>The whole maillog so far.</summary>
    public string ReadMaillog()
    {
        if (!File.Exists(MaillogPath))
        {
            return string.Empty;
        }

        using var stream = new FileStream(MaillogPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    /// <summary>Waits until a maillog line contains <paramref name="text"/>; returns that line.</summary>
    public async Task<string> WaitForMaillogAsync(string text, TimeSpan timeout)
    {
        string? found = null;
        await Eventually.WaitAsync(() =>
        {
            found = ReadMaillog().Split('\n').FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal));
            return found is not null;
        }, timeout, $"maillog line with '{text}'").ConfigureAwait(false);
        return found!;
    }

    /// <summary>Runs <c>postconf -c DIR args</c> and returns its output (e.g. <c>-n</c>, <c>-e name=value</c>).</summary>
    public Task<string> PostconfAsync(IReadOnlyList<string> args, CancellationToken cancellationToken = default) =>
        RunAsync(PostconfBinary, ["-c", ConfigDirectory, .. args], cancellationToken);

    /// <summary>Re-reads main.cf/master.cf (after <see cref="PostconfAsync"/> changes).</summary>
    public Task ReloadAsync(CancellationToken cancellationToken = default) => RunPostfixAsync("reload", cancellationToken);

    /// <summary>Attempts delivery of every queued message now (<c>postqueue -f</c>).</summary>
    public Task FlushAsync(CancellationToken cancellationToken = default) =>
        RunAsync("/usr/sbin/postqueue", ["-c", ConfigDirectory, "-f"], cancellationToken);

    /// <summary>The queue listing (<c>postqueue -p</c>).</summary>
    public Task<string> QueueAsync(CancellationToken cancellationToken = default) =>
        RunAsync("/usr/sbin/postqueue", ["-c", ConfigDirectory, "-p"], cancellationToken);

    /// <summary>Stops the instance (<c>postfix stop</c>, then <c>abort</c> if the master lingers).</summary>
    public async Task StopAsync()
    {
        if (!_running)
        {
            return;
        }

        _running = false;
        var pid = _masterPid ?? MasterPid();
        try
        {
            await RunPostfixAsync("stop", CancellationToken.None).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            // Not stoppable the polite way: the kill below ends it.
        }

        if (pid is int p)
        {
            var deadline = DateTime.UtcNow.AddSeconds(15);
            while (IsAlive(p) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50).ConfigureAwait(false);
            }

            if (IsAlive(p))
            {
                using var master = Process.GetProcessById(p);
                master.Kill(entireProcessTree: true);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync().ConfigureAwait(false);
        }
        finally
        {
            if (Environment.GetEnvironmentVariable("GW_KEEP_POSTFIX") != "1")
            {
                try
                {
                    System.IO.Directory.Delete(Directory, recursive: true);
                }
                catch (IOException)
                {
                }
                catch (UnauthorizedAccessException)
                {
                }
            }
        }
    }

    private int? MasterPid()
    {
        // The master keeps a lock on its pid file: read it shared.
        var file = Path.Combine(QueueDirectory, "pid", "master.pid");
        try
        {
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            return int.TryParse(reader.ReadToEnd().Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private async Task WaitForGreetingAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        var started = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await using var client = await PostfixSmtpClient.ConnectAsync(SmtpEndPoint, cancellationToken: cancellationToken).ConfigureAwait(false);
                if (client.Greeting.Code == 220)
                {
                    await client.QuitAsync(cancellationToken).ConfigureAwait(false);
                    return;
                }
            }
            catch (Exception e) when (e is SocketException or IOException && started.Elapsed < timeout)
            {
            }

            if (started.Elapsed > timeout)
            {
                throw new InvalidOperationException($"Postfix did not greet on {SmtpEndPoint} within {timeout.TotalSeconds:F0} s; maillog:\n{ReadMaillog()}");
            }

            await Task.Delay(50, cancellationToken).ConfigureAwait(false);
        }
    }

    private Task<string> RunPostfixAsync(string command, CancellationToken cancellationToken) =>
        RunAsync(PostfixBinary, ["-c", ConfigDirectory, command], cancellationToken);

    private async Task<string> RunAsync(string file, IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException(file + " did not start");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        var output = await stdout.ConfigureAwait(false);
        var errors = await stderr.ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}: {errors}{output}\nmaillog:\n{ReadMaillog()}");
        }

        return output;
    }

    [GeneratedRegex(@"^smtp(?<rest>\s+inet\s.*smtpd.*)$", RegexOptions.Multiline)]
    private static partial Regex SmtpInetService();
}
