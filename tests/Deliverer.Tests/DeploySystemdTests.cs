using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Deliverer.Tests;

/// <summary>
/// deploy/systemd/ as shipped: each unit passes <c>systemd-analyze verify</c> without a single complaint, and
/// <c>systemd-analyze security</c> rates its exposure at most 2.0 ("OK"); a unit with a misspelt directive is caught,
/// so the check can fail.
/// </summary>
[Trait("Kind", "Integration")]
public sealed partial class DeploySystemdTests
{
    public static TheoryData<string> Units => new() { "gateway-controlplane.service", "gateway-policydaemon.service", "gateway-deliverer.service" };

    [Theory]
    [MemberData(nameof(Units))]
    public async Task Unit_VerifiesCleanly_Hardened_RestartsOnFailure(string unit)
    {
        var path = Path.Combine(DeployRedisTests.RepoRoot(), "deploy", "systemd", unit);
        var text = await File.ReadAllTextAsync(path);
        foreach (var directive in new[] { "DynamicUser=yes", "ProtectSystem=strict", "NoNewPrivileges=yes", "Restart=on-failure", "LoadCredential=redis-password:" })
        {
            Assert.Contains(directive, text, StringComparison.Ordinal);
        }

        if (unit != "gateway-controlplane.service")
        {
            // The workers remember the lineage they applied in their own state directory (restart during data loss).
            var name = unit[..^".service".Length];
            Assert.Contains($"StateDirectory={name}", text, StringComparison.Ordinal);
            Assert.Contains($"Gateway__LineageFile=%S/{name}/", text, StringComparison.Ordinal);
        }

        var (code, output) = await RunAsync("systemd-analyze", "verify", path);
        Assert.True(code == 0 && output.Length == 0, $"systemd-analyze verify {unit}: {code} {output}");

        var (_, security) = await RunAsync("systemd-analyze", "security", "--offline=true", "--no-pager", path);
        var level = Exposure().Match(security);
        Assert.True(level.Success, security);
        var exposure = double.Parse(level.Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(exposure <= 2.0, $"{unit}: exposure {exposure}");
    }

    [Fact]
    public async Task Verify_MisspeltDirective_Complains()
    {
        var path = Path.Combine(Path.GetTempPath(), $"gateway-typo-{Guid.NewGuid():N}.service");
        var unit = await File.ReadAllTextAsync(Path.Combine(DeployRedisTests.RepoRoot(), "deploy", "systemd", "gateway-deliverer.service"));
        await File.WriteAllTextAsync(path, unit.Replace("ProtectSystem=strict", "ProtectSytem=strict", StringComparison.Ordinal));
        try
        {
            var (_, output) = await RunAsync("systemd-analyze", "verify", path);
            Assert.Contains("ProtectSytem", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["SYSTEMD_COLORS"] = "0";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, args[0] == "verify" ? (await stderr).Trim() : await stdout + await stderr);
    }

    [GeneratedRegex(@"Overall exposure level for \S+: ([0-9.]+)")]
    private static partial Regex Exposure();
}
