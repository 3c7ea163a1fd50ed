using System.Diagnostics;
using Gateway.Testing;

namespace EndToEnd.Tests;

/// <summary>Runs the repository's scripts and an integrator's tools as their own processes, as a shell would.</summary>
internal static class Processes
{
    /// <summary>
    /// Runs <paramref name="file"/> in <paramref name="directory"/> with <paramref name="env"/> added, without the MSBuild
    /// variables <c>dotnet test</c> sets for its own build (a build started from here must not inherit them).
    /// </summary>
    public static async Task<CliResult> RunAsync(string directory, IReadOnlyDictionary<string, string> env, TimeSpan timeout, string file, params IReadOnlyList<string> args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = directory };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var name in psi.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase) || k.StartsWith("VSTEST", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            psi.Environment.Remove(name);
        }

        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["npm_config_update_notifier"] = "false";
        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException(file + " did not start");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish in {timeout}:\n{await stdout}\n{await stderr}");
        }

        return new CliResult(p.ExitCode, await stdout, await stderr);
    }

    /// <summary>The checkout these tests were built from.</summary>
    public static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Gateway.sln")) && File.Exists(Path.Combine(dir.FullName, "scripts", "run.sh")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
    }
}
