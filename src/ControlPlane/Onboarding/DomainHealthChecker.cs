using System.Net.Sockets;
using Gateway.Core.Domains;
using Gateway.Core.Spf;
using Gateway.Core.Dkim;
using Gateway.Core.Dns;

namespace Gateway.ControlPlane.Onboarding;

/// <summary>
/// The findings of requirements §3.11 for one domain, from its saved configuration and live DNS and TCP:
/// verification, MX or A/AAAA presence, the inbound connection test, outbound sources and SPF.
/// The parts run in parallel; each finding says exactly what to change. Codes and severities are listed
/// in docs/onboarding.md.
/// </summary>
public sealed class DomainHealthChecker(IMailDns dns, DomainVerifier verifier, ConnectionTester tester, SpfFindings spf, TimeProvider clock)
{
    /// <param name="domain">The saved domain.</param>
    /// <param name="verification">The DNS check just made for an unverified domain (its DNS problem is reported), or null.</param>
    public async Task<HealthReport> CheckAsync(DomainConfig domain, VerificationCheck? verification, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(domain);
        var dnsTask = MxAndAddressFindingsAsync(domain, cancellationToken);
        var inboundTask = InboundFindingsAsync(domain, cancellationToken);
        var outboundTask = OutboundFindingsAsync(domain, cancellationToken);

        var findings = new List<Finding>();
        if (!domain.Verification.Verified)
        {
            findings.Add(new Finding(FindingCodes.DomainNotVerified, FindingSeverity.Error,
                verifier.NotVerifiedMessage(domain, verification), verifier.SuggestedTxt(domain)));
        }

        findings.AddRange(await dnsTask.ConfigureAwait(false));
        findings.AddRange(await inboundTask.ConfigureAwait(false));
        findings.AddRange(await outboundTask.ConfigureAwait(false));
        return new HealthReport(domain.Name, HealthReport.StatusOf(findings), findings, clock.GetUtcNow(), domain.Revision);
    }

    private async Task<IReadOnlyList<Finding>> MxAndAddressFindingsAsync(DomainConfig domain, CancellationToken ct)
    {
        var gatewayMx = verifier.MxHost(domain);
        var mxRecord = new SuggestedRecord(domain.Name, "MX", $"10 {gatewayMx}");
        var mx = await dns.MxAsync(domain.Name, ct).ConfigureAwait(false);
        if (mx.Outcome == DnsOutcome.Failed)
        {
            return [new Finding(FindingCodes.DnsLookupFailed, FindingSeverity.Warning,
                $"Could not look up the MX records of {domain.Name} ({mx.Error}); the check is repeated automatically, or run it again later.")];
        }

        if (mx.Records.Count > 0)
        {
            if (!domain.Settings.InboundEnabled || mx.Records.Any(r => r.Exchange.Equals(gatewayMx, StringComparison.OrdinalIgnoreCase)))
            {
                return [];
            }

            // Not an error: the MX moves last, when the customer switches the mail path (requirements §3, the seed's Step 3).
            var current = string.Join(", ", mx.Records.Select(r => r.IsNullMx ? "a null MX (no mail)" : r.Exchange));
            return [new Finding(FindingCodes.MxNotGateway, FindingSeverity.Info,
                $"Inbound mail for {domain.Name} still goes to {current}, not through the gateway. When you are ready to switch, replace the MX " +
                $"record(s) of {domain.Name} with: {domain.Name} MX 10 {gatewayMx}.", mxRecord)];
        }

        // No MX: mail falls back to the A/AAAA of the domain (RFC 5321 §5.1); with neither, nobody can deliver to it
        // and many receivers refuse mail from it.
        var v4Task = dns.AddressesAsync(domain.Name, AddressFamily.InterNetwork, ct);
        var v6Task = dns.AddressesAsync(domain.Name, AddressFamily.InterNetworkV6, ct);
        var v4 = await v4Task.ConfigureAwait(false);
        var v6 = await v6Task.ConfigureAwait(false);
        if (v4.Records.Count > 0 || v6.Records.Count > 0)
        {
            return domain.Settings.InboundEnabled
                ? [new Finding(FindingCodes.MxNotGateway, FindingSeverity.Info,
                    $"{domain.Name} has no MX record, so inbound mail goes to its A/AAAA address, not through the gateway. When you are ready to " +
                    $"switch, add the MX record: {domain.Name} MX 10 {gatewayMx}.", mxRecord)]
                : [];
        }

        if (v4.Outcome == DnsOutcome.Failed || v6.Outcome == DnsOutcome.Failed)
        {
            return [new Finding(FindingCodes.DnsLookupFailed, FindingSeverity.Warning,
                $"Could not look up the addresses of {domain.Name} ({v4.Error ?? v6.Error}); the check is repeated automatically, or run it again later.")];
        }

        return [new Finding(FindingCodes.NoMxOrAddress, FindingSeverity.Error,
            $"{domain.Name} has neither an MX record nor an A/AAAA record in DNS, so mail servers cannot deliver to it and many refuse mail from it. " +
            $"Publish an MX record: {domain.Name} MX 10 {gatewayMx} to receive through the gateway (or an MX of your own mail server for outbound-only use).",
            mxRecord)];
    }

    private async Task<IReadOnlyList<Finding>> InboundFindingsAsync(DomainConfig domain, CancellationToken ct)
    {
        var servers = domain.Settings.InboundServers;
        if (!domain.Settings.InboundEnabled || servers.Count == 0)
        {
            return [];
        }

        var test = await tester.TestAsync(servers, ct).ConfigureAwait(false);
        return test.Success
            ? []
            : [new Finding(FindingCodes.InboundConnectionFailed, FindingSeverity.Error,
                $"{test.Message} Inbound mail for {domain.Name} waits in the queue until these servers accept connections from the gateway: " +
                "check the host and port of each inbound server, that the server is running, and that its firewall allows the gateway.")];
    }

    private async Task<IReadOnlyList<Finding>> OutboundFindingsAsync(DomainConfig domain, CancellationToken ct)
    {
        var outbound = domain.Settings.Outbound;
        if (!outbound.Enabled)
        {
            return [];
        }

        var findings = new List<Finding>();
        if (outbound.HasNoSource)
        {
            findings.Add(new Finding(FindingCodes.OutboundNoSource, FindingSeverity.Error,
                $"Outbound is enabled for {domain.Name} but no sending server is allowed, so all outbound mail is refused. Turn on Microsoft 365 " +
                "or Google Workspace, or add the public IP addresses of your own sending servers (custom_ips); or disable outbound."));
        }

        if (outbound.Office365 && outbound.Office365TenantId is null)
        {
            // requirements §3.9: Microsoft's ranges are shared by every Microsoft 365 customer; without the tenant id the
            // intake cannot tell this customer's mail from anyone else's and refuses it.
            findings.Add(new Finding(FindingCodes.Office365NoTenantId, FindingSeverity.Error,
                $"Microsoft 365 is allowed to send for {domain.Name} but no Microsoft 365 tenant id is set, so mail from Microsoft 365 is refused " +
                "(550 5.7.1): any Microsoft 365 customer sends from the same addresses. Set outbound.office365_tenant_id to your tenant id " +
                "(Microsoft Entra admin center, Overview, Tenant ID; gatewayctl domains update --office365-tenant-id)."));
        }

        findings.AddRange(await GoogleWorkspaceFindingsAsync(domain.Name, outbound, ct).ConfigureAwait(false));
        findings.AddRange(await spf.CheckAsync(domain.Name, ct).ConfigureAwait(false));
        return findings;
    }

    /// <summary>
    /// requirements §3.9: Google's ranges are shared by every Google customer; mail from them is relayed only with a DKIM
    /// signature made with the key the customer published for Google Workspace (Relay/GoogleWorkspaceBinding.cs).
    /// </summary>
    private async Task<IReadOnlyList<Finding>> GoogleWorkspaceFindingsAsync(string name, OutboundSettings outbound, CancellationToken ct)
    {
        if (!outbound.GoogleWorkspace)
        {
            return [];
        }

        if (outbound.GoogleWorkspaceDkimSelector is not { } selector)
        {
            return [new Finding(FindingCodes.GoogleWorkspaceNoDkimSelector, FindingSeverity.Error,
                $"Google Workspace is allowed to send for {name} but no Google Workspace DKIM selector is set, so mail from Google is refused " +
                "(550 5.7.1): any Google customer sends from the same addresses. Turn on DKIM signing in Google Admin (Apps, Google Workspace, " +
                "Gmail, Authenticate email), publish its TXT record, and set outbound.google_workspace_dkim_selector to its prefix " +
                "(google unless you chose another; gatewayctl domains update --google-dkim-selector).")];
        }

        var record = $"{selector}._domainkey.{name}";
        var answer = await dns.TxtAsync(record, ct).ConfigureAwait(false);
        if (answer.Outcome == DnsOutcome.Failed)
        {
            return [];
        }

        var keys = answer.Records.Where(r => r.Contains("p=", StringComparison.Ordinal) && DkimRecord.ParseTags(r) is { } tags &&
                                             tags.TryGetValue("p", out var p) && p.Length > 0).ToList();
        return keys.Count == 1
            ? []
            : [new Finding(FindingCodes.GoogleWorkspaceDkimKeyMissing, FindingSeverity.Error,
                $"No Google Workspace DKIM key is published at {record} ({(keys.Count == 0 ? "no TXT record with a key" : $"{keys.Count} key records, one is needed")}), " +
                $"so mail from Google for {name} is refused (550 5.7.1). In Google Admin (Apps, Google Workspace, Gmail, Authenticate email) " +
                "generate the key, publish the TXT record it shows, click Start authentication; or correct outbound.google_workspace_dkim_selector.")];
    }
}
