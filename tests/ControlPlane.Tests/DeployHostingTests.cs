using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Gateway.ControlPlane;
using Gateway.Testing;

namespace ControlPlane.Tests;

/// <summary>
/// What deploying on real hosts needs from the ControlPlane (docs/operations.md "Deploying on hosts"): TLS for the API
/// with Kestrel's certificate settings, verified by gatewayctl against a test CA and by openssl independently;
/// <c>/metrics</c> on a listener of its own; JSON console logs by configuration. Real Kestrel, real redis-server,
/// gatewayctl and the ControlPlane as processes.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class DeployHostingTests
{
    [Fact]
    public async Task Api_OverTlsWithTestCa_CliVerifiesChain_RefusesWithoutTheCa_OpensslAgrees()
    {
        await using var redis = await RedisServer.StartAsync();
        var dir = Directory.CreateTempSubdirectory("gw-tls-").FullName;
        try
        {
            var (caPem, certPem, keyPem) = TestCa(dir, "127.0.0.1");
            var (otherCa, _, _) = TestCa(Directory.CreateDirectory(Path.Combine(dir, "other")).FullName, "127.0.0.1");
            await using var host = await ControlPlaneHost.StartAsync(redis.ConnectionString,
                "--urls", "https://127.0.0.1:0", "--ControlPlane:HttpUrl", "",
                "--Kestrel:Certificates:Default:Path", certPem, "--Kestrel:Certificates:Default:KeyPath", keyPem);
            Assert.StartsWith("https://", host.Address, StringComparison.Ordinal);
            var keyFile = Path.Combine(dir, "operator.key");
            await File.WriteAllTextAsync(keyFile, ControlPlaneHost.OperatorKey);

            var ok = await GatewayCtl.RunAsync(null, ["--endpoint", host.Address, "--key-file", keyFile, "--ca-file", caPem, "tenants", "create", "tlsco"]);
            Assert.True(ok.ExitCode == 0, ok.ToString());
            var listed = await GatewayCtl.RunAsync(new Dictionary<string, string> { ["GATEWAY_CA_FILE"] = caPem },
                ["--endpoint", host.Address, "--key-file", keyFile, "tenants", "list"]);
            Assert.True(listed.ExitCode == 0 && listed.Out.Contains("tlsco", StringComparison.Ordinal), listed.ToString());

            // Not trusted: the system's store does not know the test CA, nor does another CA.
            var untrusted = await GatewayCtl.RunAsync(null, ["--endpoint", host.Address, "--key-file", keyFile, "tenants", "list"]);
            Assert.True(untrusted.ExitCode == 6, untrusted.ToString());
            var wrongCa = await GatewayCtl.RunAsync(null, ["--endpoint", host.Address, "--key-file", keyFile, "--ca-file", otherCa, "tenants", "list"]);
            Assert.True(wrongCa.ExitCode == 6, wrongCa.ToString());

            // An independent TLS implementation verifies the same chain and name.
            var port = new Uri(host.Address).Port;
            var (code, output) = await RunAsync("openssl", "s_client", "-connect", $"127.0.0.1:{port}", "-CAfile", caPem, "-verify_return_error",
                "-verify_ip", "127.0.0.1", "-alpn", "h2", "-brief");
            Assert.True(code == 0 && output.Contains("Verification: OK", StringComparison.Ordinal), output);
            (code, output) = await RunAsync("openssl", "s_client", "-connect", $"127.0.0.1:{port}", "-CAfile", otherCa, "-verify_return_error", "-brief");
            Assert.NotEqual(0, code);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Metrics_OnItsOwnListener_404OnTheHttpListener_HealthStays()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var host = await ControlPlaneHost.StartAsync(redis.ConnectionString, "--ControlPlane:MetricsUrl", "http://127.0.0.2:0");
        var metrics = ControlPlaneApp.MetricsAddress(host.App)!;
        Assert.StartsWith("http://127.0.0.2:", metrics, StringComparison.Ordinal);
        using var http = new HttpClient();
        using (var r = await http.GetAsync(new Uri(metrics + "/metrics")))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Contains("gateway_", await r.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        using (var r = await http.GetAsync(new Uri(host.HttpAddress + "/metrics")))
        {
            Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        }

        using (var r = await http.GetAsync(new Uri(host.HttpAddress + "/healthz")))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
    }

    [Fact]
    public async Task ConsoleLogs_FormatterJson_EveryLineAJsonObjectWithEventId()
    {
        await using var redis = await RedisServer.StartAsync();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[]
                 {
                     Path.Combine(AppContext.BaseDirectory, "Gateway.ControlPlane.dll"), "--urls", $"http://127.0.0.1:{FreePort.Get()}",
                     "--ControlPlane:HttpUrl", "", "--Gateway:Redis", redis.ConnectionString, "--Gateway:OperatorKey", "json-logs-operator-key-0123",
                     "--Gateway:Onboarding:BackgroundChecks", "false", "--Logging:Console:FormatterName", "json",
                 })
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        var lines = new List<string>();
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            // The durability check (event 110) logs at start: Redis here runs without AOF.
            while (!lines.Any(l => l.Contains("\"EventId\":110", StringComparison.Ordinal)))
            {
                var line = await p.StandardOutput.ReadLineAsync(cts.Token) ?? throw new InvalidOperationException("exited: " + string.Join('\n', lines));
                lines.Add(line);
            }
        }
        finally
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }

        foreach (var line in lines)
        {
            using var json = JsonDocument.Parse(line);
            Assert.True(json.RootElement.TryGetProperty("LogLevel", out _), line);
            Assert.True(json.RootElement.TryGetProperty("Category", out _), line);
            Assert.True(json.RootElement.TryGetProperty("Message", out _), line);
        }

        using var durability = JsonDocument.Parse(lines.Last());
        Assert.Equal("Warning", durability.RootElement.GetProperty("LogLevel").GetString());
        Assert.Contains("appendonly is no", durability.RootElement.GetProperty("Message").GetString(), StringComparison.Ordinal);
    }

    /// <summary>A CA and a server certificate for <paramref name="ip"/> (subject alternative name), as PEM files.</summary>
    private static (string Ca, string Cert, string Key) TestCa(string dir, string ip)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=Gateway Test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var ca = caRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=gateway api", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Parse(ip));
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var cert = request.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), RandomNumberGenerator.GetBytes(8));
        var caPath = Path.Combine(dir, "ca.pem");
        var certPath = Path.Combine(dir, "api.pem");
        var keyPath = Path.Combine(dir, "api.key");
        File.WriteAllText(caPath, ca.ExportCertificatePem());
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (caPath, certPath, keyPath);
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout + await stderr);
    }
}
