using System.CommandLine;
using System.Globalization;
using Gateway.Api.V1;
using Gateway.Cli.Commands;
using Grpc.Core;
using FieldMask = Google.Protobuf.WellKnownTypes.FieldMask;

namespace Gateway.Cli.Setup;

/// <summary>
/// <c>gatewayctl setup</c>: the guided first-domain flow of the seed's provisioning wizard (requirements §8): register the
/// domain, show the TXT record, verify (waiting and checking again), add the inbound servers, test the connection,
/// choose the outbound sending sources (OutboundStep.cs), save, send a test message and show its delivery, then
/// print the MX record, the SPF include and the outbound relay host to publish last (the MX moves the mail path, so
/// it comes after everything works) and check SPF. Interactive on a terminal; with <c>--yes</c> (or without a
/// terminal) it never asks and takes everything from flags, for scripts. Running it again for a registered domain
/// continues with it.
/// </summary>
internal static partial class SetupCommand
{
    public static Command Create()
    {
        var domainArg = new Argument<string?>("domain") { Description = "The domain to protect, e.g. example.com (asked when missing)", Arity = ArgumentArity.ZeroOrOne };
        var hosts = new Option<string[]>("--host")
        {
            Description = "An inbound server for every address of the domain: HOST[:PORT] (port 25 when omitted); repeat for more",
        };
        var servers = new Option<string[]>("--server") { Description = "An inbound server row RECIPIENT=HOST[:PORT][/PREFERENCE], as in 'domains create'; repeat for more" };
        var yes = new Option<bool>("--yes", "-y", "--non-interactive") { Description = "Never ask: take everything from flags (scripts)" };
        var interactive = new Option<bool>("--interactive") { Description = "Ask even when the input is not a terminal (answers piped in)" };
        var verifyWait = new Option<int>("--verify-wait")
        {
            Description = "Seconds to keep checking DNS for the verification record before continuing unverified (non-interactive; default 0: check once)",
        };
        var verifyInterval = new Option<int>("--verify-interval") { Description = "Seconds between verification checks", DefaultValueFactory = _ => 10 };
        var requireVerified = new Option<bool>("--require-verified") { Description = "Stop (exit 5) if the domain is not verified after --verify-wait" };
        var force = new Option<bool>("--force") { Description = "Save the inbound servers even if the connection test fails" };
        var recipient = new Option<string?>("--test-recipient") { Description = "Address of the domain that gets the test message (default postmaster@DOMAIN)" };
        var noTest = new Option<bool>("--no-test-message") { Description = "Do not send a test message" };
        var deliveryWait = new Option<int>("--delivery-wait") { Description = "Seconds to wait for the test message's delivery", DefaultValueFactory = _ => 60 };
        var noInbound = new Option<bool>("--no-inbound") { Description = "Outbound only: no inbound servers, no connection test, no test message; the MX stays where it is" };
        var outbound = new OutboundOptions();
        var dkim = new Option<string?>("--dkim") { Description = "Also sign outbound mail with DKIM: rsa (RSA-2048) or ed25519; shows the record to publish" };
        var tls = new Option<string?>("--tls") { Description = "TLS towards the --host servers: opportunistic (default), required or verify" };
        var tlsName = new Option<string?>("--tls-name") { Description = "With --tls verify: the name their certificates must carry" };

        var setup = new Command("setup", "Guided first-domain setup: register, verify, inbound servers, connection test, outbound sources, save, test message, DNS to publish, SPF check")
        {
            domainArg, hosts, servers, yes, interactive, verifyWait, verifyInterval, requireVerified, force, recipient, noTest, deliveryWait, noInbound,
            outbound.Outbound, outbound.Office365, outbound.Office365TenantId, outbound.GoogleWorkspace, outbound.GoogleDkimSelector, outbound.CustomIps, dkim, tls, tlsName,
        };
        CommandRunner.SetAction(setup, async (ctx, p, ct) =>
        {
            if (ctx.Json)
            {
                throw new CliException("setup is a guided flow for people and scripts (exit codes); for JSON use the domains and queue commands with --json");
            }

            var flow = new Flow(ctx, new Prompter(ctx.Out, interactive: !p.GetValue(yes) && (p.GetValue(interactive) || !Console.IsInputRedirected)), ct)
            {
                VerifyWait = TimeSpan.FromSeconds(Math.Max(0, p.GetValue(verifyWait))),
                VerifyInterval = TimeSpan.FromSeconds(Math.Max(1, p.GetValue(verifyInterval))),
                RequireVerified = p.GetValue(requireVerified),
                Force = p.GetValue(force),
                TestRecipient = p.GetValue(recipient),
                SendTest = !p.GetValue(noTest),
                DeliveryWait = TimeSpan.FromSeconds(Math.Max(1, p.GetValue(deliveryWait))),
                NoInbound = p.GetValue(noInbound),
                OutboundFlags = outbound.Read(p),
                Dkim = p.GetValue(dkim),
                HostTls = p.GetValue(tls) is { } t ? DkimCommands.ParseTls(t) ?? throw new CliException("--tls: opportunistic, required or verify") : null,
                HostTlsName = p.GetValue(tlsName),
            };
            await flow.RunAsync(p.GetValue(domainArg), p.GetValue(hosts) ?? [], p.GetValue(servers) ?? []).ConfigureAwait(false);
        });
        return setup;
    }

    /// <summary>Questions on a terminal; none otherwise.</summary>
    private sealed class Prompter(TextWriter output, bool interactive)
    {
        public bool Interactive { get; } = interactive;

        /// <summary>The answer (trimmed), or null without a terminal or at end of input.</summary>
        public string? Ask(string question)
        {
            if (!Interactive)
            {
                return null;
            }

            output.Write(question + " ");
            output.Flush();
            return Console.In.ReadLine()?.Trim();
        }

        public bool Confirm(string question) => Ask(question + " [y/N]") is { } a && a.StartsWith('y');
    }

    private sealed partial class Flow(CliContext ctx, Prompter prompt, CancellationToken ct)
    {
        private readonly TextWriter _w = ctx.Out;
        private readonly DomainService.DomainServiceClient _domains = new(ctx.Invoker);
        private int _step;

        public TimeSpan VerifyWait { get; init; }

        public TimeSpan VerifyInterval { get; init; }

        public bool RequireVerified { get; init; }

        public bool Force { get; init; }

        public string? TestRecipient { get; init; }

        public bool SendTest { get; init; }

        public TimeSpan DeliveryWait { get; init; }

        public bool NoInbound { get; init; }

        /// <summary>rsa or ed25519: enable DKIM signing at the end (docs/outbound.md); null: leave it as it is.</summary>
        public string? Dkim { get; init; }

        public TlsMode? HostTls { get; init; }

        public string? HostTlsName { get; init; }

        public async Task RunAsync(string? name, string[] hosts, string[] servers)
        {
            name ??= prompt.Ask("Domain to protect (e.g. example.com):");
            if (string.IsNullOrWhiteSpace(name))
            {
                throw new CliException("give the domain to set up: gatewayctl setup example.com");
            }

            var domain = await RegisterAsync(name.Trim()).ConfigureAwait(false);
            ShowTxt(domain);
            var verified = await VerifyAsync(domain).ConfigureAwait(false);
            List<InboundServer>? rows = null;
            if (!NoInbound)
            {
                rows = InboundRows(domain, hosts, servers);
                await TestConnectionAsync(domain.Name, rows).ConfigureAwait(false);
            }

            var outbound = ChooseOutbound(domain, verified);
            if (rows is null && outbound is null)
            {
                throw new CliException("--no-inbound needs outbound: give --outbound with its sources (--office365, --google-workspace, --custom-ip)");
            }

            domain = await SaveAsync(domain.Name, rows, outbound).ConfigureAwait(false);
            var delivered = rows is null || !SendTest || await SendTestMessageAsync(domain).ConfigureAwait(false);
            if (Dkim is not null)
            {
                domain = await EnableDkimAsync(domain).ConfigureAwait(false);
            }

            ShowDnsToPublish(domain, verified, inbound: rows is not null, outbound: outbound is not null);
            if (outbound is not null)
            {
                await CheckSpfAsync(domain.Name).ConfigureAwait(false);
            }

            if (!delivered)
            {
                throw new CliException($"the test message was not delivered within {DeliveryWait.TotalSeconds:F0} s; the settings are saved, see above",
                    ExitCodes.Failure);
            }
        }

        private void Step(string title)
        {
            _w.WriteLine();
            _w.WriteLine($"[{++_step}] {title}");
        }

        private async Task<Domain> RegisterAsync(string name)
        {
            Step("Register the domain");
            try
            {
                var existing = await _domains.GetDomainAsync(new GetDomainRequest { Name = name }, cancellationToken: ct).ConfigureAwait(false);
                _w.WriteLine($"{existing.Name} is already registered; continuing with it.");
                return existing;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
            {
                // Not ours yet: register it (ALREADY_EXISTS if another tenant manages it).
            }

            var created = await _domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } }, cancellationToken: ct).ConfigureAwait(false);
            _w.WriteLine($"Registered {created.Name}. Its mail flow does not change until its DNS does.");
            return created;
        }

        private void ShowTxt(Domain d)
        {
            Step("Prove that you own it");
            if (d.Verification.Verified)
            {
                _w.WriteLine($"Already verified ({Method(d.Verification.Method)}).");
                return;
            }

            _w.WriteLine("Publish this TXT record in the domain's DNS:");
            _w.WriteLine();
            _w.WriteLine($"    {d.Name}.  IN TXT  \"{d.Verification.TxtRecord}\"");
            _w.WriteLine();
            _w.WriteLine($"(An MX record of {d.Name} pointing at {d.Verification.MxHost} proves it too.)");
        }

        private async Task<bool> VerifyAsync(Domain d)
        {
            Step("Verify");
            if (d.Verification.Verified)
            {
                _w.WriteLine("Verified.");
                return true;
            }

            var until = DateTimeOffset.UtcNow + VerifyWait;
            var announced = false;
            while (true)
            {
                var r = await _domains.VerifyDomainAsync(new VerifyDomainRequest { Name = d.Name }, cancellationToken: ct).ConfigureAwait(false);
                if (r.Verified)
                {
                    _w.WriteLine($"Verified ({Method(r.Domain.Verification.Method)}).");
                    return true;
                }

                if (prompt.Interactive)
                {
                    _w.WriteLine("Not verified yet: " + r.Message);
                    var answer = prompt.Ask("Press Enter to check again once the record is published, or type 'skip' to go on unverified:");
                    if (answer is null || answer.Equals("skip", StringComparison.OrdinalIgnoreCase))
                    {
                        break;
                    }

                    continue;
                }

                if (DateTimeOffset.UtcNow + VerifyInterval > until)
                {
                    _w.WriteLine("Not verified yet: " + r.Message);
                    break;
                }

                if (!announced)
                {
                    _w.WriteLine($"Not verified yet; checking every {VerifyInterval.TotalSeconds:F0} s for up to {VerifyWait.TotalSeconds:F0} s…");
                    announced = true;
                }

                await Task.Delay(VerifyInterval, ct).ConfigureAwait(false);
            }

            if (RequireVerified)
            {
                throw new CliException($"{d.Name} is not verified (--require-verified); publish the TXT record and run setup again", ExitCodes.Rejected);
            }

            _w.WriteLine("Going on unverified: inbound relay works without verification; outbound relay needs it. The gateway keeps checking DNS");
            _w.WriteLine($"in the background, or run: gatewayctl domains verify {d.Name}");
            return false;
        }

        private List<InboundServer> InboundRows(Domain d, string[] hosts, string[] servers)
        {
            Step("Inbound servers (where the gateway delivers mail for the domain)");
            var rows = hosts.Select(h => WithTls(Row(d.Name, h))).Concat(servers.Select(DomainCommands.ParseServer)).ToList();
            if (rows.Count == 0 && prompt.Interactive)
            {
                _w.WriteLine($"Your mail server(s), as HOST[:PORT] for every address of {d.Name} (or RECIPIENT=HOST[:PORT][/PREFERENCE] for one address).");
                while (prompt.Ask(rows.Count == 0 ? "Inbound server:" : "Another one (empty when done):") is { Length: > 0 } line)
                {
                    try
                    {
                        rows.Add(line.Contains('=', StringComparison.Ordinal) ? DomainCommands.ParseServer(line) : Row(d.Name, line));
                    }
                    catch (CliException e)
                    {
                        _w.WriteLine("  " + e.Message);
                    }
                }
            }

            if (rows.Count == 0 && d.InboundServers.Count > 0)
            {
                _w.WriteLine("Keeping the saved inbound servers.");
                rows.AddRange(d.InboundServers);
            }

            if (rows.Count == 0)
            {
                throw new CliException("give the inbound servers: --host HOST[:PORT] (every address of the domain) or --server RECIPIENT=HOST[:PORT][/PREFERENCE]");
            }

            Output.Table(_w, ["RECIPIENT", "HOST", "PORT", "PREFERENCE"], rows.Select(s => (IReadOnlyList<string>)
                [s.Recipient, s.Host, (s.Port == 0 ? 25 : s.Port).ToString(CultureInfo.InvariantCulture), (s.Preference == 0 ? 10 : s.Preference).ToString(CultureInfo.InvariantCulture)]));
            return rows;
        }

        private async Task TestConnectionAsync(string name, List<InboundServer> rows)
        {
            Step("Connection test (before saving)");
            var request = new TestConnectionRequest { Name = name };
            request.InboundServers.AddRange(rows);
            var r = await _domains.TestConnectionAsync(request, cancellationToken: ct).ConfigureAwait(false);
            foreach (var h in r.Results)
            {
                _w.WriteLine($"  {h.Host}:{h.Port}  {(h.Connected ? "connected" : "FAILED")}  {h.ElapsedMs} ms{(h.Error.Length > 0 ? "  " + h.Error : string.Empty)}");
            }

            _w.WriteLine(r.Message);
            if (r.Success)
            {
                _w.WriteLine("Only TCP was tested; the test message below shows that mail really arrives.");
                return;
            }

            if (Force || prompt.Confirm("Save these servers anyway?"))
            {
                _w.WriteLine("Saving anyway: mail waits in the queue until the servers answer.");
                return;
            }

            throw new CliException("the connection test failed: fix the servers (or give --force to save anyway); nothing was saved", ExitCodes.Rejected);
        }

        private async Task<Domain> SaveAsync(string name, List<InboundServer>? rows, OutboundSettings? outbound)
        {
            Step("Save");
            var d = new Domain { Name = name };
            var mask = new FieldMask();
            if (rows is not null)
            {
                d.InboundEnabled = true;
                d.InboundServers.AddRange(rows);
                mask.Paths.Add("inbound_enabled");
                mask.Paths.Add("inbound_servers");
            }

            if (outbound is not null)
            {
                d.Outbound = outbound;
                mask.Paths.Add("outbound");
            }

            var saved = await _domains.UpdateDomainAsync(new UpdateDomainRequest { Domain = d, UpdateMask = mask }, cancellationToken: ct).ConfigureAwait(false);
            if (rows is not null)
            {
                _w.WriteLine($"Saved: inbound relay is on. The gateway accepts mail for {saved.Name} within a second.");
            }

            ProtectionFlags.WriteSummary(_w, saved);
            if (rows is not null)
            {
                VerificationFlags.WriteSummary(_w, saved);
            }
            if (outbound is not null)
            {
                _w.WriteLine(saved.Verification.Verified
                    ? $"Saved: outbound relay is on for {Sources(saved.Outbound)}."
                    : $"Saved: outbound relay is on for {Sources(saved.Outbound)}, and starts once {saved.Name} is verified.");
            }
            return saved;
        }

        private async Task<bool> SendTestMessageAsync(Domain d)
        {
            Step("Test message");
            var to = TestRecipient ?? (prompt.Ask($"Send the test message to (Enter: postmaster@{d.Name}):") is { Length: > 0 } a ? a : "postmaster@" + d.Name);
            var sent = await _domains.SendTestMessageAsync(new SendTestMessageRequest { Name = d.Name, Recipient = to }, cancellationToken: ct).ConfigureAwait(false);
            _w.WriteLine($"Queued test message {sent.MessageId} to {to}; following it in the message log…");
            var attempts = 0;
            var report = await TestMessageFollower.FollowAsync(ctx.Invoker, d.Name, sent.MessageId, DeliveryWait, e =>
            {
                switch (e.Event)
                {
                    case "attempt":
                        _w.WriteLine($"  attempt {++attempts}: {e.Host} answered: {e.Reply}");
                        break;
                    case "deferred":
                        _w.WriteLine($"  deferred: {e.Detail}");
                        break;
                }
            }, ct).ConfigureAwait(false);

            switch (report.Fate)
            {
                case TestMessageFate.Delivered:
                    _w.WriteLine($"Delivered: test message {sent.MessageId} was accepted by {report.Last!.Host}: {report.Last.Reply}");
                    _w.WriteLine("Check that it arrived in the mailbox.");
                    return true;
                case TestMessageFate.Refused:
                    _w.WriteLine($"Not delivered: test message {sent.MessageId} was {report.Last!.Event}: {report.Last.Reply}");
                    _w.WriteLine($"See its whole story with: gatewayctl logs query {d.Name} --message-id {sent.MessageId}");
                    return false;
                default:
                    _w.WriteLine($"Not delivered yet: {(report.Last is { Reply.Length: > 0 } e ? $"{e.Host}: {e.Reply}" : "not attempted yet")}");
                    _w.WriteLine($"The gateway keeps retrying. Watch it with: gatewayctl logs follow {d.Name} --message-id {sent.MessageId}");
                    return false;
            }
        }

        private async Task<Domain> EnableDkimAsync(Domain d)
        {
            Step("DKIM signing of outbound mail");
            if (d.Dkim is { Enabled: true })
            {
                _w.WriteLine($"DKIM is already on: {DkimCommands.Summary(d.Dkim)}.");
                return d;
            }

            var algorithm = Dkim!.ToLowerInvariant() switch
            {
                "rsa" or "" => DkimAlgorithm.Rsa,
                "ed25519" => DkimAlgorithm.Ed25519,
                _ => throw new CliException("--dkim: rsa or ed25519"),
            };
            d = await _domains.EnableDkimAsync(new EnableDkimRequest { Name = d.Name, Algorithm = algorithm }, cancellationToken: ct).ConfigureAwait(false);
            _w.WriteLine($"Generated a {(algorithm == DkimAlgorithm.Ed25519 ? "Ed25519" : "RSA-2048")} key, selector {d.Dkim.Selector}; the record to publish is below.");
            return d;
        }

        private void ShowDnsToPublish(Domain d, bool verified, bool inbound, bool outbound)
        {
            Step("Publish last, when you switch the mail path");
            if (inbound)
            {
                _w.WriteLine("Inbound protection: point the domain's MX at the gateway (replace the old MX records):");
                _w.WriteLine();
                _w.WriteLine($"    {d.Name}.  IN MX  10 {d.InboundMxHost}.");
                _w.WriteLine();
            }

            if (outbound)
            {
                ShowOutboundSteps(d);
            }
            else
            {
                _w.WriteLine("Outbound protection (gatewayctl setup --outbound …): add the gateway to the domain's one SPF record:");
                _w.WriteLine();
                _w.WriteLine($"    {d.SpfInclude}        e.g.  {d.Name}.  IN TXT  \"v=spf1 {d.SpfInclude} ~all\"");
                _w.WriteLine();
            }

            if (d.Dkim is { Enabled: true } k)
            {
                _w.WriteLine("DKIM: publish the key record; the gateway signs outbound mail once it sees it:");
                _w.WriteLine();
                _w.WriteLine($"    {k.TxtRecord.Name}.  IN TXT  \"{k.TxtRecord.Value}\"");
                _w.WriteLine();
            }

            if (!verified)
            {
                _w.WriteLine($"And the verification record, if not done yet:  {d.Name}.  IN TXT  \"{d.Verification.TxtRecord}\"");
            }

            _w.WriteLine($"Then check everything with: gatewayctl domains check {d.Name}");
        }

        private static InboundServer Row(string domain, string host) => DomainCommands.ParseServer($"*@{domain}={host.Trim()}");

        /// <summary>--tls and --tls-name for the --host rows.</summary>
        private InboundServer WithTls(InboundServer row)
        {
            if (HostTls is { } mode)
            {
                row.Tls = mode;
            }

            if (!string.IsNullOrWhiteSpace(HostTlsName))
            {
                row.TlsName = HostTlsName;
            }

            return row;
        }

        private static string Method(VerificationMethod m) => m == VerificationMethod.Mx ? "by its MX record" : "by its TXT record";
    }
}
