using System.Diagnostics;
using Gateway.Testing;

namespace EndToEnd.Tests;

/// <summary>
/// README.md "See it work", step by step, with the real thing, from a fresh copy of the checkout under a private
/// (0700) directory, as a newcomer's clone in root's home is: <c>scripts/run.sh</c> builds the programs there and
/// starts Redis, the three programs, a private Postfix from deploy/postfix and an SMTP sink (every port moved to a
/// free one, DNS to a test server so nothing leaves the machine; data in the copy's <c>./data</c>); an SMTP client
/// (<c>scripts/send-mail.py</c>) talks to Postfix; the copy's gatewayctl runs as its own process;
/// <c>scripts/stop.sh</c> ends it all. Needs root, as every test with Postfix.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class NewcomerPathTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task NewcomerPath_UnmanagedRefused_ThenSetup_ThenAcceptedAndDelivered()
    {
        await using var dns = DnsTestServer.Start();
        await using var run = await RunSh.StartAsync(dns.Address);

        // 1. A message for a domain nobody manages: Postfix asks the PolicyDaemon, which refuses it.
        var refused = await run.SendMailAsync("someone@example.net", "postmaster@demo.example", "first try");
        Assert.True(refused.ExitCode == 1, refused.ToString());
        Assert.Contains("RCPT TO:<postmaster@demo.example>  ->  554 5.7.1 <postmaster@demo.example>: Recipient address rejected: NO-DOMAIN", refused.Out,
            StringComparison.Ordinal);

        // 2. A tenant, then the guided setup with the sink as the customer's server.
        var tenant = await run.CtlAsync("tenants", "create", "demo");
        Assert.True(tenant.ExitCode == 0, tenant.ToString());
        var setup = await run.CtlAsync("setup", "demo.example", "--yes", "--host", $"127.0.0.1:{run.SinkPort}");
        Assert.True(setup.ExitCode == 0, setup.ToString());
        Assert.Contains("Connected successfully.", setup.Out, StringComparison.Ordinal);
        Assert.Contains("Delivered: test message", setup.Out, StringComparison.Ordinal);
        Assert.Contains("demo.example.  IN MX  10 demo.in.", setup.Out, StringComparison.Ordinal);
        await Eventually.WaitAsync(() => run.SinkMessages().Any(m => m.Contains("demo.example", StringComparison.Ordinal)), Wait, "the test message in the sink");

        // 3. The same message again: accepted by Postfix, handed to the Deliverer, delivered to the customer's server.
        var accepted = await run.SendMailAsync("someone@example.net", "postmaster@demo.example", "second try");
        Assert.True(accepted.ExitCode == 0, accepted.ToString());
        Assert.Contains("RCPT TO:<postmaster@demo.example>  ->  250 2.1.5 Ok", accepted.Out, StringComparison.Ordinal);
        Assert.Contains("DATA  ->  250 2.0.0 Ok: queued as", accepted.Out, StringComparison.Ordinal);
        await Eventually.WaitAsync(() => run.SinkMessages().Any(m => m.Contains("Subject: second try", StringComparison.Ordinal)), Wait, "the message in the sink");
        var delivered = run.SinkMessages().Single(m => m.Contains("Subject: second try", StringComparison.Ordinal));
        Assert.Contains("postmaster@demo.example", delivered, StringComparison.Ordinal);

        // 4. What the README shows next: the queue is empty, the metrics counted the deliveries, /healthz is happy.
        var queue = await run.CtlAsync("queue", "list", "demo.example");
        Assert.Contains("(none)", queue.Out, StringComparison.Ordinal);
        var scrape = await Scrape.GetAsync($"http://127.0.0.1:{run.DelivererHttpPort}");
        Assert.True(scrape.Value("gateway_deliverer_deliveries_total", ("outcome", "delivered")) >= 2, scrape.Text);
        var policy = await Scrape.GetAsync($"http://127.0.0.1:{run.PolicyHttpPort}");
        Assert.True(policy.Value("gateway_policy_decisions_total", ("outcome", "reject")) >= 1);
        Assert.True(policy.Value("gateway_policy_decisions_total", ("outcome", "accept")) >= 1);

        // 5. A local process without the password cannot use the gateway's Redis (security review M13); the password is
        // the owner's alone (0600) and opens it.
        var passwordFile = Path.Combine(run.Data, "redis.password");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(passwordFile));
        Assert.StartsWith("-NOAUTH", await RedisSayAsync(run.RedisPort, "PING"), StringComparison.Ordinal);
        var password = (await File.ReadAllTextAsync(passwordFile)).Trim();
        Assert.Equal("+OK", await RedisSayAsync(run.RedisPort, "AUTH " + password));
    }

    private static async Task<string> RedisSayAsync(int port, string inline)
    {
        using var client = new System.Net.Sockets.TcpClient();
        await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
        var stream = client.GetStream();
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(inline + "\r\n"));
        using var reader = new StreamReader(stream, System.Text.Encoding.ASCII);
        return await reader.ReadLineAsync() ?? string.Empty;
    }

    /// <summary>One <c>scripts/run.sh --background</c> on free ports and a temporary data folder; disposing runs stop.sh.</summary>
    private sealed class RunSh : IAsyncDisposable
    {
        private readonly Dictionary<string, string> _env;

        private RunSh(string home, string root, Dictionary<string, string> env)
        {
            Home = home;
            Root = root;
            Data = Path.Combine(root, "data");
            _env = env;
        }

        /// <summary>The private directory (mode 0700, like root's home) that holds the copy.</summary>
        public string Home { get; }

        /// <summary>The copy of the checkout, where run.sh runs.</summary>
        public string Root { get; }

        public string Data { get; }

        public int SinkPort => int.Parse(_env["GATEWAY_SINK_PORT"], System.Globalization.CultureInfo.InvariantCulture);

        public int DelivererHttpPort => int.Parse(_env["GATEWAY_DELIVERER_HTTP_PORT"], System.Globalization.CultureInfo.InvariantCulture);

        public int PolicyHttpPort => int.Parse(_env["GATEWAY_POLICY_HTTP_PORT"], System.Globalization.CultureInfo.InvariantCulture);

        public int RedisPort => int.Parse(_env["GATEWAY_REDIS_PORT"], System.Globalization.CultureInfo.InvariantCulture);

        public static async Task<RunSh> StartAsync(string dnsServer)
        {
            var home = Path.Combine(Path.GetTempPath(), "gw-home-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var root = Path.Combine(home, "gw");
            CopyCheckout(Processes.RepositoryRoot(), root);
            var env = new Dictionary<string, string>
            {
                ["GATEWAY_CONFIGURATION"] = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug",
                // Every DNS question of every program goes to the test server; no provider-range refresh.
                ["Gateway__Dns__Servers__0"] = dnsServer,
                ["Gateway__ProviderRanges__RefreshInterval"] = "00:00:00",
                // rspamd's compiled expressions are shared with the other tests' instances (its first start compiles them).
                ["GATEWAY_RSPAMD_HS_CACHE"] = RspamdInstance.SharedCacheDirectory,
            };
            foreach (var name in new[]
                     {
                         "GATEWAY_REDIS_PORT", "GATEWAY_GRPC_PORT", "GATEWAY_HTTP_PORT", "GATEWAY_POLICY_PORT", "GATEWAY_SOCKETMAP_PORT", "GATEWAY_POLICY_HTTP_PORT",
                         "GATEWAY_INTAKE_PORT", "GATEWAY_DELIVERER_HTTP_PORT", "GATEWAY_SMTP_PORT", "GATEWAY_SINK_PORT",
                         "GATEWAY_RSPAMD_PORT", "GATEWAY_RSPAMD_CONTROLLER_PORT", "GATEWAY_CLAMD_PORT", "GATEWAY_RSPAMD_REDIS_PORT",
                     })
            {
                env[name] = FreePort.Get().ToString(System.Globalization.CultureInfo.InvariantCulture);
            }

            var run = new RunSh(home, root, env);
            var started = await run.RunAsync("bash", [Path.Combine(root, "scripts", "run.sh"), "--background"], TimeSpan.FromMinutes(8));
            if (started.ExitCode != 0)
            {
                var logs = run.Logs();
                await run.DisposeAsync();
                throw new InvalidOperationException("scripts/run.sh failed: " + started + logs);
            }

            return run;
        }

        public Task<CliResult> SendMailAsync(string from, string to, string subject) =>
            RunAsync("python3", [Path.Combine(Root, "scripts", "send-mail.py"), from, to, "--subject", subject], Wait);

        /// <summary>The copy's own gatewayctl, as the README's alias runs it.</summary>
        public Task<CliResult> CtlAsync(params string[] args) =>
            GatewayCtl.RunAsync(new Dictionary<string, string>
            {
                ["GATEWAY_ENDPOINT"] = "127.0.0.1:" + _env["GATEWAY_GRPC_PORT"],
                ["GATEWAY_KEY_FILE"] = Path.Combine(Data, "operator.key"),
                ["GATEWAY_COMPANY"] = "demo",
            }, args, dll: Path.Combine(Root, "src", "Cli", "bin", _env["GATEWAY_CONFIGURATION"], "net10.0", "gatewayctl.dll"));

        public IReadOnlyList<string> SinkMessages()
        {
            var dir = Path.Combine(Data, "sink");
            return Directory.Exists(dir) ? Directory.GetFiles(dir).Select(File.ReadAllText).ToList() : [];
        }

        public string Logs()
        {
            var logs = Path.Combine(Data, "logs");
            var parts = Directory.Exists(logs) ? Directory.GetFiles(logs).Select(f => $"\n--- {f}\n{File.ReadAllText(f)}") : [];
            var maillog = Path.Combine(Data, "postfix", "maillog");
            return string.Concat(parts) + (File.Exists(maillog) ? "\n--- maillog\n" + File.ReadAllText(maillog) : string.Empty);
        }

        public async ValueTask DisposeAsync()
        {
            await RunAsync("bash", [Path.Combine(Root, "scripts", "stop.sh")], TimeSpan.FromMinutes(1));
            try
            {
                Directory.Delete(Home, recursive: true);
            }
            catch (IOException)
            {
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        private Task<CliResult> RunAsync(string file, IReadOnlyList<string> args, TimeSpan timeout) => Processes.RunAsync(Root, _env, timeout, file, args);

        /// <summary>
        /// What a clone of the checkout holds: the files git tracks (as they are in the working tree, so uncommitted
        /// changes are tested too) and new files it does not ignore; no build output, no data.
        /// </summary>
        private static void CopyCheckout(string from, string to)
        {
            var psi = new ProcessStartInfo("git") { RedirectStandardOutput = true, UseShellExecute = false, WorkingDirectory = from };
            foreach (var a in new[] { "ls-files", "-z", "--cached", "--others", "--exclude-standard" })
            {
                psi.ArgumentList.Add(a);
            }

            using var git = Process.Start(psi) ?? throw new InvalidOperationException("git did not start");
            var files = git.StandardOutput.ReadToEnd().Split('\0', StringSplitOptions.RemoveEmptyEntries);
            git.WaitForExit();
            if (git.ExitCode != 0 || files.Length == 0)
            {
                throw new InvalidOperationException($"git ls-files in {from} failed (exit {git.ExitCode})");
            }

            foreach (var file in files)
            {
                var source = Path.Combine(from, file);
                if (!File.Exists(source))
                {
                    continue; // deleted in the working tree
                }

                var target = Path.Combine(to, file);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(source, target);
                File.SetUnixFileMode(target, File.GetUnixFileMode(source));
            }
        }
    }
}
