using Gateway.Api.V1;
using Gateway.Testing;
using Grpc.Core;

namespace Deliverer.Tests;

/// <summary>The ControlPlane resolves through the test DNS server, so the verification record can be published by the test.</summary>
public sealed class SetupFixture : GatewayFixture
{
    protected override IEnumerable<string> ControlPlaneSettings =>
        [$"--Gateway:Dns:Servers:0={Dns.Address}", "--Gateway:Dns:UseCache=false", "--Gateway:Dns:Timeout=00:00:02"];
}

/// <summary>
/// <c>gatewayctl setup</c> driven with flags as its own process against the ControlPlane, the Deliverer and an SMTP
/// sink standing in for the customer's server: the whole guided flow, and where it stops.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class SetupCliTests(SetupFixture fx) : IClassFixture<SetupFixture>
{
    private static readonly string[] Questions =
        ["Domain to protect", "Press Enter to check again", "Inbound server:", "Another one", "send its outbound mail through the gateway?", "Microsoft 365 (Exchange Online)?",
         "Google Workspace?", "IP address (empty: none):", "Another IP address (empty when done):", "Send the test message to", "Delivered:", "IN MX", "Check SPF"];

    private Task<CliResult> SetupAsync(params string[] args) => SetupWithInputAsync(null, args);

    private Task<CliResult> SetupWithInputAsync(string? stdin, params string[] args) =>
        GatewayCtl.RunAsync(new Dictionary<string, string>
        {
            ["GATEWAY_ENDPOINT"] = fx.ControlPlaneAddress,
            ["GATEWAY_KEY"] = GatewayFixture.OperatorKey,
            ["GATEWAY_COMPANY"] = fx.CompanyId,
        }, ["setup", .. args], stdin: stdin);

    [Fact]
    public async Task Setup_Interactive_AnswersFromInput_AsksEachStepInOrder()
    {
        var sink = SmtpSink.Start("127.0.0.11");
        await using var _ = sink;
        var d = GatewayFixture.NewDomainName("setupi");

        // Domain, "skip" verification, one server, end of servers, outbound: yes, Microsoft 365: no, Google Workspace:
        // yes, a bad address (asked again), one IP, end of IPs, the test recipient.
        var answers = $"{d}\nskip\n{sink.Host}:{sink.Port}\n\ny\nn\ny\n198.51.100.0/24\n198.51.100.9\n\nadmin@{d}\n";
        var result = await SetupWithInputAsync(answers, "--interactive");
        Assert.True(result.ExitCode == 0, result.ToString());
        var o = result.Out;
        var order = Questions.Select(q => o.IndexOf(q, StringComparison.Ordinal)).ToList();
        Assert.DoesNotContain(-1, order);
        Assert.Equal(order.Order().ToList(), order);
        Assert.Contains("'198.51.100.0/24' is not a single IPv4 or IPv6 address", o, StringComparison.Ordinal);
        var message = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10)));
        Assert.Equal(["admin@" + d], message.Recipients);
        var saved = await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = d });
        Assert.True(saved.Outbound.Enabled);
        Assert.False(saved.Outbound.Office365);
        Assert.True(saved.Outbound.GoogleWorkspace);
        Assert.Equal(["198.51.100.9"], saved.Outbound.CustomIps);
    }

    [Fact]
    public async Task Setup_OutboundWithFlags_SavesSourcesPrintsCustomerStepsAndChecksSpf()
    {
        var sink = SmtpSink.Start("127.0.0.22");
        await using var _ = sink;
        var d = GatewayFixture.NewDomainName("setupo");
        var include = $"include:_spf.{GatewayFixture.GatewayDomain}";
        fx.Dns.AddTxt(d, "v=spf1 mx ~all");

        var first = await SetupAsync(d, "--yes", "--host", $"{sink.Host}:{sink.Port}", "--outbound", "--custom-ip", "198.51.100.7", "--office365",
            "--office365-tenant-id", "72f988bf-86f1-41af-91ab-2d7cd011db47");
        Assert.True(first.ExitCode == 0, first.ToString());
        var o = first.Out;
        Assert.Contains("Sending sources: Microsoft 365 (tenant 72f988bf-86f1-41af-91ab-2d7cd011db47), 198.51.100.7.", o, StringComparison.Ordinal);
        Assert.DoesNotContain("no Microsoft 365 tenant id", o, StringComparison.Ordinal);
        Assert.Contains($"Outbound relay needs a verified domain: until {d} is verified", o, StringComparison.Ordinal);
        Assert.Contains("Saved: inbound relay is on", o, StringComparison.Ordinal);
        Assert.Contains($"Saved: outbound relay is on for Microsoft 365 (tenant 72f988bf-86f1-41af-91ab-2d7cd011db47), 198.51.100.7, and starts once {d} is verified.", o, StringComparison.Ordinal);
        Assert.Contains("Delivered: test message", o, StringComparison.Ordinal);
        // The customer-side steps: the SPF include, and the relay host for each kind of source.
        Assert.Contains($"{include}        e.g.  {d}.  IN TXT  \"v=spf1 {include} ~all\"", o, StringComparison.Ordinal);
        Assert.Contains($"outbound relay host: relay.{GatewayFixture.GatewayDomain}", o, StringComparison.Ordinal);
        Assert.Contains($"Microsoft 365: an outbound connector", o, StringComparison.Ordinal);
        Assert.Contains($"Postfix 'relayhost = [relay.{GatewayFixture.GatewayDomain}]'", o, StringComparison.Ordinal);
        // SPF checked last, on the shipped defaults (no sending addresses): the record lacks the include.
        Assert.Contains("SPF_GATEWAY_NOT_AUTHORIZED", o, StringComparison.Ordinal);
        Assert.Contains($"SPF: not yet. Publish the record above, then check again with: gatewayctl domains check {d}", o, StringComparison.Ordinal);
        Assert.True(o.IndexOf("Check SPF", StringComparison.Ordinal) > o.IndexOf("IN MX", StringComparison.Ordinal));
        var saved = await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = d });
        Assert.True(saved.Outbound.Enabled);
        Assert.True(saved.Outbound.Office365);
        Assert.Equal("72f988bf-86f1-41af-91ab-2d7cd011db47", saved.Outbound.Office365TenantId);
        Assert.False(saved.Outbound.GoogleWorkspace);
        Assert.Equal(["198.51.100.7"], saved.Outbound.CustomIps);

        // The customer publishes the include (through a provider's record) and the verification; run again.
        fx.Dns.Remove(d).AddTxt(d, "v=spf1 mx include:_spf.provider.example ~all").AddTxt(d, saved.Verification.TxtRecord);
        fx.Dns.AddTxt("_spf.provider.example", $"v=spf1 ip4:192.0.2.0/24 {include} -all");
        var again = await SetupAsync(d, "--yes", "--outbound", "--custom-ip", "198.51.100.7", "--no-test-message");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("Keeping the saved inbound servers.", again.Out, StringComparison.Ordinal);
        Assert.Contains($"{d} is verified, so the gateway relays its outbound mail", again.Out, StringComparison.Ordinal);
        Assert.Contains($"SPF: {d} authorises the gateway.", again.Out, StringComparison.Ordinal);
        Assert.False((await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = d })).Outbound.Office365);
    }

    [Fact]
    public async Task Setup_OutboundOnly_NoInboundStepsNoMx()
    {
        var d = GatewayFixture.NewDomainName("setupoo");
        var r = await SetupAsync(d, "--yes", "--no-inbound", "--google-workspace");
        Assert.True(r.ExitCode == 0, r.ToString());
        Assert.DoesNotContain("Connection test", r.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("IN MX", r.Out, StringComparison.Ordinal);
        Assert.Contains("Google Workspace: Apps > Gmail > Routing > Outbound gateway", r.Out, StringComparison.Ordinal);
        var saved = await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = d });
        Assert.False(saved.InboundEnabled);
        Assert.True(saved.Outbound.Enabled && saved.Outbound.GoogleWorkspace);

        var nothing = await SetupAsync(GatewayFixture.NewDomainName("setupoo"), "--yes", "--no-inbound");
        Assert.Equal(2, nothing.ExitCode);
        Assert.Contains("--no-inbound needs outbound", nothing.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Setup_WithFlags_RegistersWaitsForTxtVerifiesSavesDeliversAndPrintsDns()
    {
        var sink = SmtpSink.Start("127.0.0.9");
        await using var _ = sink;
        var d = GatewayFixture.NewDomainName("setup");

        var run = SetupAsync(d, "--yes", "--host", $"{sink.Host}:{sink.Port}", "--verify-wait", "60", "--verify-interval", "1");

        // The customer publishes the TXT record while setup waits and checks again.
        Domain? registered = null;
        await Eventually.WaitAsync(async () =>
        {
            try
            {
                registered = await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = d });
                return true;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), "setup registers the domain");
        await Eventually.WaitAsync(() => fx.Dns.QueryCount(d) > 0, TimeSpan.FromSeconds(60), "setup asks DNS a first time");
        fx.Dns.AddTxt(d, registered!.Verification.TxtRecord);

        var result = await run;
        Assert.True(result.ExitCode == 0, result.ToString());
        var o = result.Out;
        Assert.Contains($"Registered {d}", o, StringComparison.Ordinal);
        Assert.Contains($"{d}.  IN TXT  \"{registered.Verification.TxtRecord}\"", o, StringComparison.Ordinal);
        Assert.Contains("Not verified yet; checking every 1 s", o, StringComparison.Ordinal);
        Assert.Contains("Verified (by its TXT record)", o, StringComparison.Ordinal);
        Assert.Contains("Connected successfully.", o, StringComparison.Ordinal);
        Assert.Contains("Saved: inbound relay is on", o, StringComparison.Ordinal);
        // The protection policy in force: a new domain's defaults (docs/protection.md).
        Assert.Contains("Inbound protection: every message is scanned", o, StringComparison.Ordinal);
        Assert.Contains("spam: tag ≥ 6, quarantine ≥ 10, reject ≥ 15; outbound reject off", o, StringComparison.Ordinal);
        Assert.Contains("malware: reject", o, StringComparison.Ordinal);
        Assert.Contains("scanner failure: tempfail (451 4.7.1", o, StringComparison.Ordinal);
        Assert.Contains("Delivered: test message", o, StringComparison.Ordinal);
        // Followed through the message log: the host that took it and its reply.
        Assert.Contains($"attempt 1: {sink.Host}:{sink.Port} answered: 250", o, StringComparison.Ordinal);
        Assert.Contains($"was accepted by {sink.Host}:{sink.Port}: 250", o, StringComparison.Ordinal);
        Assert.Contains($"{d}.  IN MX  10 {fx.CompanyId}.in.{GatewayFixture.GatewayDomain}.", o, StringComparison.Ordinal);
        Assert.Contains($"include:_spf.{GatewayFixture.GatewayDomain}", o, StringComparison.Ordinal);
        // The DNS to publish comes last, after the test message.
        Assert.True(o.IndexOf("IN MX", StringComparison.Ordinal) > o.IndexOf("Delivered:", StringComparison.Ordinal));

        var message = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10)));
        Assert.Equal(["postmaster@" + d], message.Recipients);
        var saved = await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = d });
        Assert.True(saved.InboundEnabled);
        Assert.True(saved.Verification.Verified);
        Assert.Equal(sink.Port, Assert.Single(saved.InboundServers).Port);
    }

    [Fact]
    public async Task Setup_ServerUnreachable_StopsBeforeSaving_Exit5_ThenForceSavesAndReportsDeferral()
    {
        var sink = SmtpSink.Start("127.0.0.10");
        await using var _ = sink;
        sink.Refuse();
        var d = GatewayFixture.NewDomainName("setup");

        var refused = await SetupAsync(d, "--yes", "--host", $"{sink.Host}:{sink.Port}");
        Assert.Equal(5, refused.ExitCode);
        Assert.Contains("Cannot connect to the inbound server", refused.Out, StringComparison.Ordinal);
        Assert.Contains("nothing was saved", refused.Err, StringComparison.Ordinal);
        Assert.Contains("Going on unverified", refused.Out, StringComparison.Ordinal);
        Assert.False((await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = d })).InboundEnabled);

        // Run again for the registered domain: it continues; --force saves; the test message waits in the queue.
        var forced = await SetupAsync(d, "--yes", "--host", $"{sink.Host}:{sink.Port}", "--force", "--delivery-wait", "5", "--test-recipient", "it@" + d);
        Assert.Equal(1, forced.ExitCode);
        Assert.Contains("already registered; continuing", forced.Out, StringComparison.Ordinal);
        Assert.Contains("Saving anyway", forced.Out, StringComparison.Ordinal);
        Assert.Contains("attempt 1:", forced.Out, StringComparison.Ordinal);
        Assert.Contains("Not delivered yet", forced.Out, StringComparison.Ordinal);
        Assert.Contains("IN MX", forced.Out, StringComparison.Ordinal);
        Assert.Contains("not delivered within 5 s", forced.Err, StringComparison.Ordinal);
        Assert.True((await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = d })).InboundEnabled);
        Assert.Single((await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages);
    }

    [Fact]
    public async Task Setup_MissingServersOrRequiredVerification_ClearErrors()
    {
        var d = GatewayFixture.NewDomainName("setup");
        var noServers = await SetupAsync(d, "--yes");
        Assert.Equal(2, noServers.ExitCode);
        Assert.Contains("--host", noServers.Err, StringComparison.Ordinal);

        var unverified = await SetupAsync(d, "--yes", "--host", "127.0.0.1:25", "--require-verified");
        Assert.Equal(5, unverified.ExitCode);
        Assert.Contains("not verified", unverified.Err, StringComparison.Ordinal);

        var noDomain = await SetupAsync("--yes");
        Assert.Equal(2, noDomain.ExitCode);
        Assert.Contains("gatewayctl setup example.com", noDomain.Err, StringComparison.Ordinal);
        foreach (var r in new[] { noServers, unverified, noDomain })
        {
            Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
        }
    }
}
