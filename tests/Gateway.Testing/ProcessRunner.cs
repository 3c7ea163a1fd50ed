using System.Diagnostics;

namespace Gateway.Testing;

/// <summary>Runs a command-line tool (openssl, install, stat …) for a test and fails the test when the tool fails.</summary>
public static class ProcessRunner
{
    /// <summary>Runs <paramref name="file"/> with <paramref name="args"/>; returns its standard output; throws (with its standard error) unless it exits with 0.</summary>
    public static async Task<string> RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var error = process.StandardError.ReadToEndAsync(cts.Token);
        var output = await process.StandardOutput.ReadToEndAsync(cts.Token).ConfigureAwait(false);
        await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}: {await error.ConfigureAwait(false)}");
        }

        return output;
    }
}
