using System.Diagnostics;

namespace Gateway.Testing;

/// <summary>Process chores shared by the scanning engines' test instances (<see cref="RspamdInstance"/>, <see cref="ClamdInstance"/>).</summary>
internal static class EngineProcess
{
    /// <summary>Kills a started engine with its children (rspamd forks workers) and waits; null afterwards.</summary>
    public static async Task<Process?> KillAsync(Process? process)
    {
        if (process is null)
        {
            return null;
        }

        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync().ConfigureAwait(false);
        }

        process.Dispose();
        return null;
    }

    /// <summary>Runs a tool (e.g. <c>chown</c>) and fails with its error output when it does not succeed.</summary>
    public static async Task RunAsync(string file, IReadOnlyList<string> args, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var process = Process.Start(psi) ?? throw new InvalidOperationException(file + " did not start");
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        _ = await process.StandardOutput.ReadToEndAsync(cancellationToken).ConfigureAwait(false);
        await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}: {await stderr.ConfigureAwait(false)}");
        }
    }
}
