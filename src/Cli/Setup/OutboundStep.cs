using System.CommandLine;
using System.Net;
using Gateway.Api.V1;
using Gateway.Cli.Commands;

namespace Gateway.Cli.Setup;

/// <summary>
/// The outbound part of <c>gatewayctl setup</c> (the seed's provisioning flow, docs/requirements.md §3 "Outbound
/// servers"): whether the domain sends through the gateway, from which sources (Microsoft 365, Google Workspace,
/// single IP addresses of its own servers), that outbound relay needs a verified domain, what to configure on the
/// customer's side (the SPF include, the outbound relay host per kind of server), and the SPF check at the end.
/// </summary>
internal static partial class SetupCommand
{
    /// <summary>The outbound flags of <c>setup</c>; each one is a question on a terminal.</summary>
    private sealed class OutboundOptions
    {
        public readonly Option<bool> Outbound = new("--outbound") { Description = "The domain sends outbound mail through the gateway (implied by a source flag)" };
        public readonly Option<bool> Office365 = new("--office365") { Description = "Outbound source: Microsoft 365 (Exchange Online)" };
        public readonly Option<string?> Office365TenantId = new("--office365-tenant-id")
        {
            Description = "With --office365: the customer's Microsoft 365 tenant id (a GUID; Entra admin center > Overview). Mail from Microsoft's ranges must carry it",
        };
        public readonly Option<bool> GoogleWorkspace = new("--google-workspace") { Description = "Outbound source: Google Workspace" };
        public readonly Option<string?> GoogleDkimSelector = new("--google-dkim-selector")
        {
            Description = "With --google-workspace: the selector of the DKIM key set up in Google Admin (usually google). Mail from Google's ranges must be signed with it",
        };
        public readonly Option<string[]> CustomIps = new("--custom-ip") { Description = "Outbound source: the public IP address of one of your own sending servers; repeat for more" };

        public OutboundFlags Read(ParseResult p) =>
            new(p.GetValue(Outbound), p.GetValue(Office365) || p.GetValue(Office365TenantId) is not null,
                p.GetValue(GoogleWorkspace) || p.GetValue(GoogleDkimSelector) is not null, p.GetValue(CustomIps) ?? [])
            {
                Office365TenantId = p.GetValue(Office365TenantId)?.Trim(),
                GoogleDkimSelector = p.GetValue(GoogleDkimSelector)?.Trim(),
            };
    }

    private sealed record OutboundFlags(bool Outbound, bool Office365, bool GoogleWorkspace, string[] CustomIps)
    {
        /// <summary>Microsoft 365's tenant id (requirements §3.9 provider binding); without it Microsoft 365 mail is refused.</summary>
        public string? Office365TenantId { get; init; }

        /// <summary>Google Workspace's DKIM selector (requirements §3.9 provider binding); without it Google mail is refused.</summary>
        public string? GoogleDkimSelector { get; init; }

        public bool AnySource => Office365 || GoogleWorkspace || CustomIps.Length > 0;
    }

    private static string Sources(OutboundSettings o)
    {
        var names = new[] { o.Office365 ? (o.Office365TenantId.Length > 0 ? $"Microsoft 365 (tenant {o.Office365TenantId})" : "Microsoft 365") : null, o.GoogleWorkspace ? (o.GoogleWorkspaceDkimSelector.Length > 0 ? $"Google Workspace (DKIM selector {o.GoogleWorkspaceDkimSelector})" : "Google Workspace") : null }.OfType<string>().Concat(o.CustomIps).ToList();
        return names.Count == 0 ? "no sending source" : string.Join(", ", names);
    }

    private sealed partial class Flow
    {
        public OutboundFlags OutboundFlags { get; init; } = new(false, false, false, []);

        /// <summary>The outbound settings to save, or null when the domain does not send through the gateway (nothing changes).</summary>
        private OutboundSettings? ChooseOutbound(Domain d, bool verified)
        {
            Step("Outbound (mail from your users to the internet, relayed by the gateway)");
            var flags = OutboundFlags;
            var wanted = flags.Outbound || flags.AnySource;
            if (!wanted && prompt.Interactive)
            {
                wanted = prompt.Confirm($"Does {d.Name} send its outbound mail through the gateway?");
            }

            if (!wanted)
            {
                _w.WriteLine(d.Outbound?.Enabled == true
                    ? $"Keeping the saved outbound settings ({Sources(d.Outbound)})."
                    : "No: the gateway relays inbound mail only (run setup again with --outbound to add outbound later).");
                return null;
            }

            var o = new OutboundSettings { Enabled = true, Office365 = flags.Office365, GoogleWorkspace = flags.GoogleWorkspace, Office365TenantId = flags.Office365TenantId ?? string.Empty,
                GoogleWorkspaceDkimSelector = flags.GoogleDkimSelector ?? string.Empty };
            o.CustomIps.AddRange(flags.CustomIps.Select(ip => ip.Trim()));
            if (!flags.AnySource && prompt.Interactive)
            {
                _w.WriteLine("Which servers send it? The gateway relays only mail from these sources.");
                o.Office365 = prompt.Confirm("  Microsoft 365 (Exchange Online)?");
                o.GoogleWorkspace = prompt.Confirm("  Google Workspace?");
                _w.WriteLine("  Your own mail servers: their public IP addresses, one by one (no ranges).");
                while (prompt.Ask(o.CustomIps.Count == 0 ? "  IP address (empty: none):" : "  Another IP address (empty when done):") is { Length: > 0 } line)
                {
                    if (IPAddress.TryParse(line, out _) && !line.Contains('/', StringComparison.Ordinal))
                    {
                        o.CustomIps.Add(line);
                    }
                    else
                    {
                        _w.WriteLine($"  '{line}' is not a single IPv4 or IPv6 address.");
                    }
                }
            }

            if (!o.Office365 && !o.GoogleWorkspace && o.CustomIps.Count == 0)
            {
                throw new CliException("outbound needs at least one sending source: --office365, --google-workspace or --custom-ip ADDRESS (repeatable)");
            }

            // Microsoft 365's ranges are shared by every tenant: only mail stamped with this customer's tenant id is relayed
            // (requirements §3.9, docs/operations.md "Microsoft 365 tenant binding").
            if (o.Office365 && o.Office365TenantId.Length == 0 && prompt.Interactive)
            {
                _w.WriteLine("  Microsoft 365's addresses are shared by every Microsoft 365 customer, so the gateway relays only mail that");
                _w.WriteLine("  Exchange Online stamped with your tenant id (Microsoft Entra admin center > Overview > Tenant ID).");
                o.Office365TenantId = prompt.Ask("  Tenant id (a GUID; empty: later, Microsoft 365 mail is refused until then):")?.Trim() ?? string.Empty;
            }

            if (o.Office365 && o.Office365TenantId.Length == 0)
            {
                _w.WriteLine("Warning: no Microsoft 365 tenant id: the gateway refuses mail from Microsoft 365 for this domain until one is set " +
                             "(gatewayctl domains update DOMAIN --office365-tenant-id GUID).");
            }

            if (o.GoogleWorkspace && o.GoogleWorkspaceDkimSelector.Length == 0)
            {
                // Google's ranges are shared by every Google customer: only mail signed with this customer's DKIM key is relayed.
                _w.WriteLine("Warning: no Google Workspace DKIM selector: the gateway refuses mail from Google for this domain until DKIM is set up in " +
                             "Google Admin (Gmail > Authenticate email) and the selector is set (gatewayctl domains update DOMAIN --google-dkim-selector google).");
            }

            _w.WriteLine($"Sending sources: {Sources(o)}.");

            _w.WriteLine(verified
                ? $"{d.Name} is verified, so the gateway relays its outbound mail as soon as the settings are saved."
                : $"Outbound relay needs a verified domain: until {d.Name} is verified (the TXT record above), the gateway refuses its outbound " +
                  "mail (NO-DOMAIN). Inbound relay does not wait for it.");
            return o;
        }

        /// <summary>The customer-side steps of outbound protection: the SPF include and where their servers relay.</summary>
        private void ShowOutboundSteps(Domain d)
        {
            var o = d.Outbound;
            _w.WriteLine("Outbound protection, on your side:");
            _w.WriteLine($"  1. Add the gateway to the domain's one SPF record (keep what it lists; a second SPF record breaks SPF):");
            _w.WriteLine();
            _w.WriteLine($"    {d.SpfInclude}        e.g.  {d.Name}.  IN TXT  \"v=spf1 {d.SpfInclude} ~all\"");
            _w.WriteLine();
            _w.WriteLine($"  2. Relay outbound mail to the gateway's outbound relay host: {d.OutboundRelayHost}");
            if (o.Office365)
            {
                _w.WriteLine($"     Microsoft 365: an outbound connector (from Office 365 to your partner organisation) for all recipient domains, smart host {d.OutboundRelayHost}.");
            }

            if (o.GoogleWorkspace)
            {
                _w.WriteLine($"     Google Workspace: Apps > Gmail > Routing > Outbound gateway: {d.OutboundRelayHost}.");
            }

            if (o.CustomIps.Count > 0)
            {
                _w.WriteLine($"     Your servers ({string.Join(", ", o.CustomIps)}): Postfix 'relayhost = [{RelayHostName(d.OutboundRelayHost)}]{RelayPort(d.OutboundRelayHost)}', " +
                    $"Exchange Server: a send connector with smart host {d.OutboundRelayHost}, other MTAs: their smart host setting.");
            }

            _w.WriteLine();
        }

        /// <summary>The SPF findings of CheckDomain, last: usually "not yet", since the customer publishes the include after setup.</summary>
        private async Task CheckSpfAsync(string name)
        {
            Step("Check SPF");
            var r = await _domains.CheckDomainAsync(new CheckDomainRequest { Name = name }, cancellationToken: ct).ConfigureAwait(false);
            var outbound = r.Findings.Where(f => f.Code.StartsWith("SPF_", StringComparison.Ordinal) || f.Code.StartsWith("OUTBOUND_", StringComparison.Ordinal)).ToList();
            var ok = outbound.All(f => f.Severity is Severity.Info or Severity.Unspecified);
            foreach (var f in outbound)
            {
                _w.WriteLine($"  [{DomainCommands.Severity(f.Severity)}] {f.Code}: {f.Message}");
            }

            _w.WriteLine(ok ? $"SPF: {name} authorises the gateway."
                : outbound.Any(f => f.Code == "SPF_TEMPERROR") ? $"SPF: could not be checked now (DNS); check again with: gatewayctl domains check {name}"
                : $"SPF: not yet. Publish the record above, then check again with: gatewayctl domains check {name}");
        }

        private static string RelayHostName(string hostPort) =>
            hostPort.LastIndexOf(':') is var i and > 0 && !hostPort.Contains(']', StringComparison.Ordinal) && hostPort.IndexOf(':') == i ? hostPort[..i] : hostPort;

        private static string RelayPort(string hostPort)
        {
            var host = RelayHostName(hostPort);
            return host.Length < hostPort.Length ? hostPort[host.Length..] : string.Empty;
        }
    }
}
