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

    [Theory]
    [MemberData(nameof(Units))]
    public async Task Unit_StartsTheAssemblyThatItsPublishCommandProduces(string unit)
    {
        // systemd-analyze checks that /usr/bin/dotnet exists, not the DLL it is given: the units named Deliverer.dll and
        // the like while `dotnet publish` writes Gateway.Deliverer.dll (the projects' AssemblyName), so an installed unit
        // could not start.
        var root = DeployRedisTests.RepoRoot();
        var text = await File.ReadAllTextAsync(Path.Combine(root, "deploy", "systemd", unit));
        var publish = PublishCommand().Match(text);
        Assert.True(publish.Success, $"{unit}: no 'dotnet publish src/<project> -c Release -o <dir>' install line");
        var start = ExecStart().Match(text);
        Assert.True(start.Success, $"{unit}: no ExecStart=/usr/bin/dotnet <dir>/<assembly>.dll");
        Assert.Equal(publish.Groups["dir"].Value, start.Groups["dir"].Value);
        var project = Directory.GetFiles(Path.Combine(root, publish.Groups["project"].Value), "*.csproj").Single();
        var assembly = AssemblyName().Match(await File.ReadAllTextAsync(project));
        Assert.True(assembly.Success, project);
        Assert.Equal(assembly.Groups[1].Value + ".dll", start.Groups["dll"].Value);
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

    [GeneratedRegex(@"dotnet publish (?<project>src/[A-Za-z.]+) -c Release -o (?<dir>/\S+?)\)")]
    private static partial Regex PublishCommand();

    [GeneratedRegex(@"^ExecStart=/usr/bin/dotnet (?<dir>/\S+)/(?<dll>[^/\s]+\.dll)\s*$", RegexOptions.Multiline)]
    private static partial Regex ExecStart();

    [GeneratedRegex(@"<AssemblyName>([^<]+)</AssemblyName>")]
    private static partial Regex AssemblyName();

    [GeneratedRegex(@"Overall exposure level for \S+: ([0-9.]+)")]
    private static partial Regex Exposure();
}
