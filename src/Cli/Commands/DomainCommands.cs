using System.CommandLine;
using System.Globalization;
using Gateway.Api.V1;
using FieldMask = Google.Protobuf.WellKnownTypes.FieldMask;

namespace Gateway.Cli.Commands;

/// <summary>domains …: DomainService (tenant key, or operator key with --company).</summary>
internal static class DomainCommands
{
    public static Command Domains()
    {
        var domains = new Command("domains", "Managed domains of a tenant");
        domains.Subcommands.Add(Create());
        domains.Subcommands.Add(Get());
        domains.Subcommands.Add(List());
        domains.Subcommands.Add(Update());
        domains.Subcommands.Add(Delete());
        domains.Subcommands.Add(Verify());
        domains.Subcommands.Add(Check());
        domains.Subcommands.Add(TestConnection());
        domains.Subcommands.Add(SendTest());
        domains.Subcommands.Add(DkimCommands.Dkim());
        return domains;
    }

    /// <summary>The flags that edit a domain's settings, shared by create and update.</summary>
    private sealed class SettingFlags
    {
        public readonly Option<bool?> Inbound = new("--inbound") { Description = "Enable (true) or disable (false) inbound relay" };
        public readonly Option<string[]> Servers = new("--server")
        {
            Description = "Inbound server RECIPIENT=HOST[:PORT][/PREFERENCE][,tls=opportunistic|required|verify][,tls-name=NAME], " +
                          "e.g. '*@example.com=192.0.2.1:25/10,tls=verify,tls-name=mx.example.com'; repeat for more; replaces the list",
            AllowMultipleArgumentsPerToken = false,
        };
        public readonly Option<bool> ClearServers = new("--clear-servers") { Description = "Remove every inbound server" };
        public readonly Option<bool?> Outbound = new("--outbound") { Description = "Enable (true) or disable (false) outbound relay" };
        public readonly Option<bool?> Office365 = new("--office365") { Description = "Allow Microsoft 365's sending ranges" };
        public readonly Option<string?> Office365TenantId = new("--office365-tenant-id")
        {
            Description = "Your Microsoft 365 tenant id (a GUID; Entra admin center, Overview): mail from Microsoft 365 is relayed only when Exchange Online stamps it with this tenant; '' removes it",
        };
        public readonly Option<bool?> Google = new("--google-workspace") { Description = "Allow Google Workspace's sending ranges" };
        public readonly Option<string?> GoogleDkimSelector = new("--google-dkim-selector")
        {
            Description = "The DKIM selector of your Google Workspace key (Google Admin, Gmail, Authenticate email; usually google): mail from Google is relayed only when signed with it; '' removes it",
        };
        public readonly Option<string[]> CustomIps = new("--custom-ip") { Description = "A sending server's IP address; repeat for more; replaces the list" };
        public readonly Option<bool> ClearCustomIps = new("--clear-custom-ips") { Description = "Remove every custom sending IP" };
        public readonly ProtectionFlags Protection = new();
        public readonly VerificationFlags Verification = new();

        public void AddTo(Command c)
        {
            foreach (var o in new Option[] { Inbound, Servers, ClearServers, Outbound, Office365, Office365TenantId, Google, GoogleDkimSelector, CustomIps, ClearCustomIps })
            {
                c.Options.Add(o);
            }

            Protection.AddTo(c);
            Verification.AddTo(c);
        }

        /// <summary>Fills <paramref name="d"/> from the flags given and returns the update_mask paths they imply.</summary>
        public List<string> Apply(ParseResult p, Domain d)
        {
            var paths = new List<string>();
            d.Outbound ??= new OutboundSettings();
            if (p.GetValue(Inbound) is { } inbound)
            {
                d.InboundEnabled = inbound;
                paths.Add("inbound_enabled");
            }

            var servers = p.GetValue(Servers) ?? [];
            if (servers.Length > 0 || p.GetValue(ClearServers))
            {
                d.InboundServers.Clear();
                d.InboundServers.AddRange(servers.Select(ParseServer));
                paths.Add("inbound_servers");
            }

            if (p.GetValue(Outbound) is { } outbound)
            {
                d.Outbound.Enabled = outbound;
                paths.Add("outbound.enabled");
            }

            if (p.GetValue(Office365) is { } office)
            {
                d.Outbound.Office365 = office;
                paths.Add("outbound.office365");
            }

            if (p.GetValue(Office365TenantId) is { } tenant)
            {
                d.Outbound.Office365TenantId = tenant;
                paths.Add("outbound.office365_tenant_id");
            }

            if (p.GetValue(Google) is { } google)
            {
                d.Outbound.GoogleWorkspace = google;
                paths.Add("outbound.google_workspace");
            }

            if (p.GetValue(GoogleDkimSelector) is { } selector)
            {
                d.Outbound.GoogleWorkspaceDkimSelector = selector;
                paths.Add("outbound.google_workspace_dkim_selector");
            }

            var ips = p.GetValue(CustomIps) ?? [];
            if (ips.Length > 0 || p.GetValue(ClearCustomIps))
            {
                d.Outbound.CustomIps.Clear();
                d.Outbound.CustomIps.AddRange(ips);
                paths.Add("outbound.custom_ips");
            }

            paths.AddRange(Protection.Apply(p, d));
            paths.AddRange(Verification.Apply(p, d));
            return paths;
        }
    }

    private static Command Create()
    {
        var name = new Argument<string>("domain");
        var flags = new SettingFlags();
        var create = new Command("create", "Register a managed domain") { name };
        flags.AddTo(create);
        CommandRunner.SetAction(create, async (ctx, p, ct) =>
        {
            var d = new Domain { Name = p.GetValue(name) };
            flags.Apply(p, d);
            var created = await Client(ctx).CreateDomainAsync(new CreateDomainRequest { Domain = d }, cancellationToken: ct);
            ctx.Print(created, w =>
            {
                PrintDomain(w, created);
                w.WriteLine();
                w.WriteLine($"To verify ownership publish this TXT record at {created.Name}:  {created.Verification.TxtRecord}");
                w.WriteLine($"(or point the domain's MX at {created.Verification.MxHost}), then run: gatewayctl domains verify {created.Name}");
            });
        });
        return create;
    }

    private static Command Get()
    {
        var name = new Argument<string>("domain");
        var get = new Command("get", "Show a domain") { name };
        CommandRunner.SetAction(get, async (ctx, p, ct) =>
        {
            var d = await Client(ctx).GetDomainAsync(new GetDomainRequest { Name = p.GetValue(name) }, cancellationToken: ct);
            ctx.Print(d, w => PrintDomain(w, d));
        });
        return get;
    }

    private static Command List()
    {
        var pageSize = new Option<int>("--page-size") { Description = "Domains per request (all pages are read)", DefaultValueFactory = _ => 200 };
        var list = new Command("list", "List the tenant's domains") { pageSize };
        CommandRunner.SetAction(list, async (ctx, p, ct) =>
        {
            var all = new ListDomainsResponse();
            var token = string.Empty;
            do
            {
                var page = await Client(ctx).ListDomainsAsync(new ListDomainsRequest { PageSize = p.GetValue(pageSize), PageToken = token }, cancellationToken: ct);
                all.Domains.AddRange(page.Domains);
                token = page.NextPageToken;
            }
            while (token.Length > 0);

            ctx.Print(all, w => Output.Table(w, ["DOMAIN", "VERIFIED", "INBOUND", "SERVERS", "OUTBOUND", "UPDATED"],
                all.Domains.Select(d => (IReadOnlyList<string>)
                [
                    d.Name, Output.YesNo(d.Verification?.Verified == true), Output.YesNo(d.InboundEnabled),
                    d.InboundServers.Count.ToString(CultureInfo.InvariantCulture), Output.YesNo(d.Outbound?.Enabled == true), Output.Time(d.UpdateTime),
                ])));
        });
        return list;
    }

    private static Command Update()
    {
        var name = new Argument<string>("domain");
        var etag = new Option<string?>("--etag") { Description = "Refuse the change if the domain changed since this etag" };
        var flags = new SettingFlags();
        var update = new Command("update", "Change the settings given by flags; others stay as they are") { name, etag };
        flags.AddTo(update);
        CommandRunner.SetAction(update, async (ctx, p, ct) =>
        {
            var d = new Domain { Name = p.GetValue(name), Etag = p.GetValue(etag) ?? string.Empty };
            var paths = flags.Apply(p, d);
            if (paths.Count == 0)
            {
                throw new CliException("nothing to change: give --inbound, --server, --outbound, --office365, --office365-tenant-id, --google-workspace, --custom-ip or a protection flag (--spam-reject-score, --malware, …)");
            }

            var mask = new FieldMask();
            mask.Paths.AddRange(paths);
            var updated = await Client(ctx).UpdateDomainAsync(new UpdateDomainRequest { Domain = d, UpdateMask = mask }, cancellationToken: ct);
            ctx.Print(updated, w => PrintDomain(w, updated));
        });
        return update;
    }

    private static Command Delete()
    {
        var name = new Argument<string>("domain");
        var force = new Option<bool>("--force") { Description = "Delete even with queued or quarantined mail (it is discarded)" };
        var etag = new Option<string?>("--etag") { Description = "Refuse if the domain changed since this etag" };
        var delete = new Command("delete", "Stop the service for a domain and delete its settings, rules, quarantine and logs") { name, force, etag };
        CommandRunner.SetAction(delete, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).DeleteDomainAsync(new DeleteDomainRequest { Name = p.GetValue(name), Force = p.GetValue(force), Etag = p.GetValue(etag) ?? string.Empty },
                cancellationToken: ct);
            ctx.Print(r, w =>
            {
                w.WriteLine($"Deleted {r.Name}. Mail to and from it is now refused (554 5.7.1 NO-DOMAIN). Undo on your side:");
                foreach (var step in r.UndoSteps)
                {
                    w.WriteLine($"  [{step.Code}] {step.Instruction}");
                }
            });
        });
        return delete;
    }

    private static Command Verify()
    {
        var name = new Argument<string>("domain");
        var verify = new Command("verify", "Check DNS for the verification TXT record or MX now") { name };
        CommandRunner.SetAction(verify, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).VerifyDomainAsync(new VerifyDomainRequest { Name = p.GetValue(name) }, cancellationToken: ct);
            ctx.Print(r, w => w.WriteLine(r.Verified ? $"Verified. {r.Message}".TrimEnd() : $"Not verified. {r.Message}".TrimEnd()));
        });
        return verify;
    }

    private static Command Check()
    {
        var name = new Argument<string>("domain");
        var check = new Command("check", "Health findings of the domain's configuration and DNS") { name };
        CommandRunner.SetAction(check, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).CheckDomainAsync(new CheckDomainRequest { Name = p.GetValue(name) }, cancellationToken: ct);
            ctx.Print(r, w =>
            {
                w.WriteLine($"{r.Name}: {Status(r.Status)}");
                foreach (var f in r.Findings)
                {
                    w.WriteLine($"  [{Severity(f.Severity)}] {f.Code}: {f.Message}");
                }
            });
        });
        return check;
    }

    private static Command TestConnection()
    {
        var name = new Argument<string>("domain");
        var servers = new Option<string[]>("--server") { Description = "Test these rows instead of the saved ones: RECIPIENT=HOST[:PORT][/PREFERENCE]" };
        var test = new Command("test-connection", "Connection test to the inbound servers: TCP, SMTP, STARTTLS and the certificate") { name, servers };
        CommandRunner.SetAction(test, async (ctx, p, ct) =>
        {
            var request = new TestConnectionRequest { Name = p.GetValue(name) };
            request.InboundServers.AddRange((p.GetValue(servers) ?? []).Select(ParseServer));
            var r = await Client(ctx).TestConnectionAsync(request, cancellationToken: ct);
            ctx.Print(r, w =>
            {
                w.WriteLine(r.Message);
                Output.Table(w, ["HOST", "PORT", "RESULT", "MS", "STARTTLS", "TLS", "CERTIFICATE", "ERROR"], r.Results.Select(h => (IReadOnlyList<string>)
                [
                    h.Host, h.Port.ToString(CultureInfo.InvariantCulture), h.Connected ? (h.Error.Length == 0 ? "connected" : "refused by tls " + DkimCommands.TlsText(h.Tls)) : "failed",
                    h.ElapsedMs.ToString(CultureInfo.InvariantCulture), !h.Smtp ? "-" : Output.YesNo(h.StarttlsOffered), h.TlsVersion.Length > 0 ? h.TlsVersion : "-",
                    h.TlsVersion.Length == 0 ? "-" : h.CertificateVerified ? "verified" : "not verified", h.Error.Length > 0 ? h.Error : h.TlsError,
                ]));
            });
            if (!r.Success)
            {
                // A script that tests before saving (docs/operations.md) must see the failure, as `setup` reports it (exit 5).
                throw new CliException("the connection test failed", ExitCodes.Rejected);
            }
        });
        return test;
    }

    private static Command SendTest()
    {
        var name = new Argument<string>("domain");
        var recipient = new Argument<string>("recipient") { Description = "An address in the domain" };
        var send = new Command("send-test", "Send a generated message through the saved configuration") { name, recipient };
        CommandRunner.SetAction(send, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).SendTestMessageAsync(new SendTestMessageRequest { Name = p.GetValue(name), Recipient = p.GetValue(recipient) }, cancellationToken: ct);
            ctx.Print(r, w => w.WriteLine($"Queued test message {r.MessageId}."));
        });
        return send;
    }

    /// <summary>
    /// Parses <c>RECIPIENT=HOST[:PORT][/PREFERENCE]</c> with optional <c>,tls=MODE</c> and <c>,tls-name=NAME</c> (docs/outbound.md);
    /// IPv6 hosts in brackets when a port follows.
    /// </summary>
    internal static InboundServer ParseServer(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var options = text.Split(',');
        var row = ParseRow(options[0], text);
        foreach (var option in options.Skip(1))
        {
            var (key, value) = option.IndexOf('=', StringComparison.Ordinal) is var i and > 0 ? (option[..i].Trim(), option[(i + 1)..].Trim()) : (option.Trim(), string.Empty);
            switch (key)
            {
                case "tls":
                    row.Tls = DkimCommands.ParseTls(value) ?? throw new CliException($"--server '{text}': tls must be opportunistic, required or verify");
                    break;
                case "tls-name" or "tls_name":
                    row.TlsName = value;
                    break;
                default:
                    throw new CliException($"--server '{text}': unknown option '{key}' (tls=, tls-name=)");
            }
        }

        return row;
    }

    private static InboundServer ParseRow(string text, string whole)
    {
        var eq = text.IndexOf('=', StringComparison.Ordinal);
        if (eq <= 0 || eq == text.Length - 1)
        {
            throw new CliException($"--server '{whole}': expected RECIPIENT=HOST[:PORT][/PREFERENCE], e.g. '*@example.com=192.0.2.1:25/10'");
        }

        var server = new InboundServer { Recipient = text[..eq] };
        var rest = text[(eq + 1)..];
        var slash = rest.LastIndexOf('/');
        if (slash >= 0)
        {
            server.Preference = ParseNumber(rest[(slash + 1)..], "preference", text);
            rest = rest[..slash];
        }

        if (rest.StartsWith('['))
        {
            var close = rest.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw new CliException($"--server '{text}': missing ']'");
            }

            server.Host = rest[1..close];
            var after = rest[(close + 1)..];
            if (after.StartsWith(':'))
            {
                server.Port = ParseNumber(after[1..], "port", text);
            }
        }
        else if (rest.Count(c => c == ':') == 1)
        {
            var colon = rest.IndexOf(':', StringComparison.Ordinal);
            server.Host = rest[..colon];
            server.Port = ParseNumber(rest[(colon + 1)..], "port", text);
        }
        else
        {
            server.Host = rest;
        }

        return server;
    }

    private static int ParseNumber(string s, string what, string text) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw new CliException($"--server '{text}': {what} '{s}' is not a number");

    private static DomainService.DomainServiceClient Client(CliContext ctx) => new(ctx.Invoker);

    internal static string Status(DomainStatus s) => s switch
    {
        DomainStatus.Completed => "COMPLETED",
        DomainStatus.ConfigurationRequired => "CONFIGURATION_REQUIRED",
        _ => "UNKNOWN",
    };

    internal static string Severity(Api.V1.Severity s) => s switch
    {
        Api.V1.Severity.Error => "error",
        Api.V1.Severity.Warning => "warning",
        Api.V1.Severity.Info => "info",
        _ => "-",
    };

    internal static void PrintDomain(TextWriter w, Domain d)
    {
        var o = d.Outbound ?? new OutboundSettings();
        Output.Fields(w,
        [
            ("domain", d.Name),
            ("company", d.CompanyId),
            ("verified", d.Verification?.Verified == true ? $"yes ({d.Verification.Method}, {Output.Time(d.Verification.VerifyTime)})" : "no"),
            ("TXT record", d.Verification?.TxtRecord ?? "-"),
            ("MX host", d.InboundMxHost),
            ("inbound", Output.YesNo(d.InboundEnabled)),
            ("outbound", o.Enabled
                ? string.Join(", ", new[] { o.Office365 ? (o.Office365TenantId.Length > 0 ? $"Microsoft 365 (tenant {o.Office365TenantId})" : "Microsoft 365 (no tenant id: refused)") : null, o.GoogleWorkspace ? (o.GoogleWorkspaceDkimSelector.Length > 0 ? $"Google Workspace (DKIM selector {o.GoogleWorkspaceDkimSelector})" : "Google Workspace (no DKIM selector: refused)") : null }.OfType<string>().Concat(o.CustomIps)) is { Length: > 0 } s ? "yes: " + s : "yes (no sending source!)"
                : "no"),
            ("DKIM", DkimCommands.Summary(d.Dkim)),
            ("etag", d.Etag),
            ("updated", Output.Time(d.UpdateTime)),
            .. ProtectionFlags.Describe(d.Protection).Select(x => ("protection: " + x.Name, x.Value)),
            .. VerificationFlags.Describe(d.RecipientVerification),
        ]);
        if (d.InboundServers.Count > 0)
        {
            w.WriteLine();
            Output.Table(w, ["RECIPIENT", "HOST", "PORT", "PREFERENCE", "TLS"], d.InboundServers.Select(s => (IReadOnlyList<string>)
            [
                s.Recipient, s.Host, s.Port.ToString(CultureInfo.InvariantCulture), s.Preference.ToString(CultureInfo.InvariantCulture),
                DkimCommands.TlsText(s.Tls) + (s.TlsName.Length > 0 ? " (" + s.TlsName + ")" : string.Empty),
            ]));
        }
    }
}
