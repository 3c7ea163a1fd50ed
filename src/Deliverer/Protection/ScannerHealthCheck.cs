using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Gateway.Deliverer.Protection;

/// <summary>
/// <c>/healthz</c> check <c>scanners</c>: pings every configured rspamd (<c>/ping</c>) and clamd (<c>PING</c>). Degraded
/// when any does not answer (with every server of an engine down the intake answers 451 to everything: say so), healthy
/// otherwise, and healthy with a note when protection is off. Degraded rather than unhealthy: restarting the Deliverer
/// would not bring a scanner back, and the intake itself works (requirements §9: the sender retries).
/// </summary>
public sealed class ScannerHealthCheck(ProtectionOptions options, RspamdClient rspamd, ClamdClient clamd) : IHealthCheck
{
    private static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(2);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (options.Mode == ProtectionMode.Off)
        {
            return HealthCheckResult.Healthy("protection off (Gateway:Protection:Mode=Off): mail is not scanned");
        }

        var spam = await Task.WhenAll(rspamd.Servers.Select(async s => (Name: s.ToString(), Up: await rspamd.PingAsync(s, PingTimeout, cancellationToken).ConfigureAwait(false))))
            .ConfigureAwait(false);
        var malware = await Task.WhenAll(clamd.Servers.Select(async s => (Name: s.ToString() ?? "clamd", Up: await ClamdClient.PingAsync(s, PingTimeout, cancellationToken).ConfigureAwait(false))))
            .ConfigureAwait(false);
        var down = spam.Concat(malware).Where(s => !s.Up).Select(s => s.Name).ToList();
        if (down.Count == 0)
        {
            return HealthCheckResult.Healthy($"{spam.Length} rspamd, {malware.Length} clamd answering");
        }

        var allDown = (spam.Length > 0 && spam.All(s => !s.Up)) || (malware.Length > 0 && malware.All(s => !s.Up));
        return HealthCheckResult.Degraded((allDown ? "mail is answered 451 (or passed unscanned where a domain allows it): " : string.Empty) +
                                          "not answering: " + string.Join(", ", down));
    }
}
