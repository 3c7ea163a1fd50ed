using System.Diagnostics;
using System.Text.Json;

namespace Gateway.Testing;

/// <summary>One DKIM signature as the independent verifier judged it.</summary>
/// <param name="Status"><c>pass</c>, <c>fail</c>, <c>neutral</c>, <c>temperror</c>, <c>permerror</c>, <c>none</c>.</param>
public sealed record DkimVerdict(string Status, string Comment, string Domain, string Selector, string Algo, string Canon, string Headers, string Info);

/// <summary>
/// An independent DKIM verifier for tests: the npm package <c>mailauth</c> (tests/tools/mailauth, installed by
/// scripts/install-deps.sh) run with Node.js, looking keys up only on the given DNS server (the tests' <see cref="DnsTestServer"/>).
/// The gateway signs with MimeKit; checking with MimeKit would only prove that MimeKit agrees with itself.
/// </summary>
public static class MailauthVerifier
{
    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNameCaseInsensitive = true };

    public static async Task<IReadOnlyList<DkimVerdict>> VerifyAsync(byte[] message, DnsTestServer dns, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(dns);
        var script = Path.Combine(RepositoryRoot(), "tests", "tools", "mailauth", "verify.mjs");
        if (!Directory.Exists(Path.Combine(Path.GetDirectoryName(script)!, "node_modules", "mailauth")))
        {
            throw new InvalidOperationException("mailauth is not installed: run scripts/install-deps.sh");
        }

        var file = Path.Combine(Path.GetTempPath(), $"gw-dkim-{Guid.NewGuid():N}.eml");
        await File.WriteAllBytesAsync(file, message, cancellationToken).ConfigureAwait(false);
        try
        {
            var psi = new ProcessStartInfo("node") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add(script);
            psi.ArgumentList.Add(dns.Address);
            psi.ArgumentList.Add(file);
            using var process = Process.Start(psi) ?? throw new InvalidOperationException("node did not start");
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            limit.CancelAfter(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(limit.Token).ConfigureAwait(false);
            var output = await stdout.ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"mailauth failed ({process.ExitCode}): {await stderr.ConfigureAwait(false)}");
            }

            return JsonSerializer.Deserialize<List<DkimVerdict>>(output, JsonOptions) ?? [];
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static string RepositoryRoot() => RepositoryPaths.Get();
}
