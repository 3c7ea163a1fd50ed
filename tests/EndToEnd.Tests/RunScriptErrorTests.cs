using System.Net;
using System.Net.Sockets;
using Gateway.Testing;

namespace EndToEnd.Tests;

/// <summary>
/// When a step of <c>scripts/run.sh</c> or <c>scripts/demo-postfix.sh</c> fails, the terminal says which step and
/// shows the log line that tells why (it used to exit 1 after "Redis on …" with the reason only in a log file).
/// Real scripts, a real Postfix and real programs, on free ports and a temporary data directory.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class RunScriptErrorTests
{
    [Fact]
    public async Task DemoPostfix_SmtpPortTaken_PrintsReasonAndMaillogLine()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var data = NewDataDirectory();
        var env = new Dictionary<string, string>
        {
            ["GATEWAY_DATA"] = data,
            ["GATEWAY_SMTP_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["GATEWAY_SINK_PORT"] = FreePort.Get().ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        try
        {
            var r = await RunAsync(env, "scripts/demo-postfix.sh", "start");
            Assert.True(r.ExitCode == 1, r.ToString());
            Assert.Contains("error: the demo Postfix did not start", r.Err, StringComparison.Ordinal);
            Assert.Contains($"from {data}/postfix/maillog", r.Err, StringComparison.Ordinal);
            Assert.Contains($"fatal: bind 127.0.0.1 port {port}: Address already in use", r.Err, StringComparison.Ordinal);
        }
        finally
        {
            await RunAsync(env, "scripts/demo-postfix.sh", "stop");
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task RunSh_ProgramCannotStart_PrintsWhichAndItsLogLine()
    {
        var data = NewDataDirectory();
        var env = new Dictionary<string, string>
        {
            ["GATEWAY_DATA"] = data,
            // A build configuration that does not exist: the ControlPlane's dll is missing and dotnet says so in its log.
            ["GATEWAY_CONFIGURATION"] = "Missing",
        };
        foreach (var name in new[]
                 {
                     "GATEWAY_REDIS_PORT", "GATEWAY_GRPC_PORT", "GATEWAY_HTTP_PORT", "GATEWAY_POLICY_PORT", "GATEWAY_SOCKETMAP_PORT", "GATEWAY_POLICY_HTTP_PORT",
                     "GATEWAY_INTAKE_PORT", "GATEWAY_DELIVERER_HTTP_PORT",
                     "GATEWAY_RSPAMD_PORT", "GATEWAY_RSPAMD_CONTROLLER_PORT", "GATEWAY_CLAMD_PORT", "GATEWAY_RSPAMD_REDIS_PORT",
                 })
        {
            env[name] = FreePort.Get().ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        try
        {
            var r = await RunAsync(env, "scripts/run.sh", "--background", "--no-build", "--no-demo");
            Assert.DoesNotContain("rspamd", r.Out, StringComparison.Ordinal); // reported before the engines start
            Assert.True(r.ExitCode == 1, r.ToString());
            Assert.Contains("Redis on 127.0.0.1:", r.Out, StringComparison.Ordinal);
            Assert.Contains("error: the ControlPlane stopped before listening on 127.0.0.1:" + env["GATEWAY_GRPC_PORT"], r.Err, StringComparison.Ordinal);
            Assert.Contains($"from {data}/logs/controlplane.log", r.Err, StringComparison.Ordinal);
            Assert.Contains("Gateway.ControlPlane.dll", r.Err, StringComparison.Ordinal);
        }
        finally
        {
            await RunAsync(env, "scripts/stop.sh");
            Directory.Delete(data, recursive: true);
        }
    }

    private static Task<CliResult> RunAsync(Dictionary<string, string> env, string script, params string[] args)
    {
        var root = Processes.RepositoryRoot();
        return Processes.RunAsync(root, env, TimeSpan.FromMinutes(2), "bash", [Path.Combine(root, script), .. args]);
    }

    private static string NewDataDirectory() => Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "gw-runerr-" + Guid.NewGuid().ToString("N")[..8])).FullName;

}
