using System.Diagnostics;

namespace Gateway.Testing;

/// <summary>What one run of gatewayctl printed and returned.</summary>
public sealed record CliResult(int ExitCode, string Out, string Err)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Out}\n--- stderr\n{Err}";
}

/// <summary>
/// Runs <c>gatewayctl</c> as its own process (<c>dotnet gatewayctl.dll …</c>, the build output copied next to the
/// test binaries by a project reference to src/Cli), with a clean environment: no GATEWAY_* variables and no
/// config file unless the test gives them.
/// </summary>
public static class GatewayCtl
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(2);

    /// <param name="dll">Another build of gatewayctl.dll to run (default: the one next to the test binaries).</param>
    public static async Task<CliResult> RunAsync(IReadOnlyDictionary<string, string>? env, IReadOnlyList<string> args, TimeSpan? timeout = null, string? stdin = null, string? dll = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(dll ?? Path.Combine(AppContext.BaseDirectory, "gatewayctl.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var name in new[] { "GATEWAY_ENDPOINT", "GATEWAY_KEY", "GATEWAY_KEY_FILE", "GATEWAY_COMPANY", "GATEWAYCTL_CONFIG" })
        {
            psi.Environment.Remove(name);
        }

        psi.Environment["XDG_CONFIG_HOME"] = Path.Combine(Path.GetTempPath(), "gwctl-none-" + Guid.NewGuid().ToString("N")[..8]);
        psi.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        using var p = Process.Start(psi) ?? throw new InvalidOperationException("gatewayctl did not start");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin).ConfigureAwait(false);
        }

        p.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            await p.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw new TimeoutException($"gatewayctl {string.Join(' ', args)} did not finish; output so far:\n{await stdout.ConfigureAwait(false)}\n{await stderr.ConfigureAwait(false)}");
        }

        return new CliResult(p.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }
}
