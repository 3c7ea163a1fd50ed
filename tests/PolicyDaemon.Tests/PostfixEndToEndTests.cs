using System.Diagnostics;
using System.Net;
using Gateway.Api.V1;
using Gateway.Core.Storage;
using Gateway.Testing;
using Google.Protobuf.WellKnownTypes;

namespace PolicyDaemon.Tests;

/// <summary>
/// End to end with a real Postfix (Debian's package, a private instance configured from deploy/postfix):
/// what an SMTP client is told, and that changes saved through gRPC reach it within a second.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class PostfixEndToEndTests(GatewayFixture gw) : IClassFixture<GatewayFixture>
{
    private static readonly TimeSpan OneSecond = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task Rcpt_UnmanagedDomain_Exact554NoDomain()
    {
        var recipient = $"bob@{DaemonFixture.NewName("stranger")}";

        var reply = await gw.RcptAsync("someone@elsewhere.example", recipient);

        Assert.Equal(GatewayFixture.NoDomain(recipient), reply.ToString());
        var log = await gw.Postfix.WaitForMaillogAsync($"to=<{recipient}>", TimeSpan.FromSeconds(5));
        Assert.Contains("NO-DOMAIN", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rcpt_NoRowMatches_550UnknownRecipientAtRcpt()
    {
        // Requirements §11.1: a recipient that no inbound row routes is refused at RCPT (no 10-day wait and later bounce).
        var domain = DaemonFixture.NewName("rows");
        await gw.Domains.CreateDomainAsync(new CreateDomainRequest
        {
            Domain = new Domain
            {
                Name = domain,
                InboundEnabled = true,
                InboundServers = { new Gateway.Api.V1.InboundServer { Recipient = "ann@" + domain, Host = "192.0.2.1" } },
            },
        });
        await Eventually.WaitAsync(async () => (await gw.RcptAsync("s@elsewhere.example", $"ann@{domain}")).Code == 250, OneSecond, "ann's row in the snapshot");

        var reply = await gw.RcptAsync("someone@elsewhere.example", $"carol@{domain}");

        Assert.Equal($"550 5.1.1 <carol@{domain}>: Recipient address rejected: unknown recipient", reply.ToString());
        var log = await gw.Postfix.WaitForMaillogAsync($"to=<carol@{domain}>", TimeSpan.FromSeconds(5));
        Assert.Contains("unknown recipient", log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Rcpt_ManagedDomain_Accepted_MessageHandedToIntakeByTransportMap()
    {
        var domain = await gw.CreateInboundDomainAsync();
        var subject = "e2e-" + Guid.NewGuid().ToString("N");
        await Eventually.WaitAsync(async () => (await gw.RcptAsync("s@elsewhere.example", $"x@{domain}")).Code == 250, OneSecond, "managed domain accepted");

        var (rcpt, data) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "sender@elsewhere.example",
            [$"Alice@{domain.ToUpperInvariant()}", $"bob@{DaemonFixture.NewName("stranger")}"],
            $"From: sender@elsewhere.example\nTo: alice@{domain}\nSubject: {subject}\n\nhello\n");

        Assert.Equal("250 2.1.5 Ok", rcpt[0].ToString());
        Assert.Equal(554, rcpt[1].Code);
        Assert.Equal(250, data!.Code);
        var message = await gw.Intake.WaitForMessageAsync(subject, TimeSpan.FromSeconds(30));
        Assert.Contains($"Alice@{domain.ToUpperInvariant()}", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Outbound_FromAuthorisedSourceAddress_Accepted_FromOtherAddress_Rejected()
    {
        var domain = DaemonFixture.NewName("out");
        await gw.Domains.CreateDomainAsync(new CreateDomainRequest
        {
            Domain = new Domain { Name = domain, Outbound = new Gateway.Api.V1.OutboundSettings { Enabled = true, CustomIps = { "127.0.0.7" } } },
        });
        await DaemonFixture.VerifyAsync(DaemonFixture.NewDomainManager(gw.RedisClient), domain);
        var recipient = "friend@" + DaemonFixture.NewName("external");
        await Eventually.WaitAsync(() => gw.Daemon.Snapshot.Find(domain) is { Verified: true }, OneSecond, "verified domain in the snapshot");

        var authorised = await gw.RcptAsync($"alice@{domain}", recipient, from: IPAddress.Parse("127.0.0.7"));
        var other = await gw.RcptAsync($"alice@{domain}", recipient, from: IPAddress.Parse("127.0.0.8"));

        Assert.Equal("250 2.1.5 Ok", authorised.ToString());
        Assert.Equal(GatewayFixture.NoDomain(recipient), other.ToString());
        var entries = await gw.RedisClient.GetDatabase().StreamRangeAsync(RedisKeys.DomainLog(domain));
        await Eventually.WaitAsync(async () => (entries = await gw.RedisClient.GetDatabase().StreamRangeAsync(RedisKeys.DomainLog(domain)))
            .Any(e => e["event"] == "policy_reject" && e["client_address"] == "127.0.0.8"), TimeSpan.FromSeconds(5), "outbound reject logged for the domain");
    }

    [Fact]
    public async Task GrpcChange_FlipsPostfixAnswer_WithinOneSecond()
    {
        var domain = await gw.CreateInboundDomainAsync("flip");
        var recipient = $"carol@{domain}";
        await Eventually.WaitAsync(async () => (await gw.RcptAsync("s@elsewhere.example", recipient)).Code == 250, TimeSpan.FromSeconds(5), "created domain accepted");

        // Disable inbound: Postfix must refuse within 1 s of the saved change.
        await gw.Domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = domain, InboundEnabled = false },
            UpdateMask = new FieldMask { Paths = { "inbound_enabled" } },
        });
        var off = await Eventually.WaitAsync(async () => (await gw.RcptAsync("s@elsewhere.example", recipient)).ToString() == GatewayFixture.NoDomain(recipient),
            OneSecond, "NO-DOMAIN after inbound was disabled");

        // Enable it again: accepted within 1 s.
        await gw.Domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = domain, InboundEnabled = true },
            UpdateMask = new FieldMask { Paths = { "inbound_enabled" } },
        });
        var on = await Eventually.WaitAsync(async () => (await gw.RcptAsync("s@elsewhere.example", recipient)).Code == 250, OneSecond, "accepted after inbound was enabled");

        // Delete it: NO-DOMAIN within 1 s (requirements §3.15).
        await gw.Domains.DeleteDomainAsync(new DeleteDomainRequest { Name = domain });
        var deleted = await Eventually.WaitAsync(async () => (await gw.RcptAsync("s@elsewhere.example", recipient)).ToString() == GatewayFixture.NoDomain(recipient),
            OneSecond, "NO-DOMAIN after deletion");

        Assert.All(new[] { off, on, deleted }, t => Assert.True(t < OneSecond, t.ToString()));
    }

    [Fact]
    public async Task PolicyContext_PerListener_LimitsDirection()
    {
        var inbound = await gw.CreateInboundDomainAsync("ctx");
        var outbound = DaemonFixture.NewName("ctxout");
        await gw.Domains.CreateDomainAsync(new CreateDomainRequest
        {
            Domain = new Domain { Name = outbound, Outbound = new Gateway.Api.V1.OutboundSettings { Enabled = true, CustomIps = { "127.0.0.9" } } },
        });
        await DaemonFixture.VerifyAsync(DaemonFixture.NewDomainManager(gw.RedisClient), outbound);
        await Eventually.WaitAsync(() => gw.Daemon.Snapshot.Find(outbound) is { Verified: true } && gw.Daemon.Snapshot.Find(inbound) is not null, OneSecond, "domains in the snapshot");
        var from = IPAddress.Parse("127.0.0.9");
        var external = "x@" + DaemonFixture.NewName("external");

        // Public listener: both directions.
        Assert.Equal(250, (await gw.RcptAsync("s@elsewhere.example", $"a@{inbound}", from)).Code);
        Assert.Equal(250, (await gw.RcptAsync($"b@{outbound}", external, from)).Code);
        // MX listener (policy_context=inbound): no outbound relay, whoever connects.
        Assert.Equal(250, (await gw.RcptAsync("s@elsewhere.example", $"a@{inbound}", from, gw.Postfix.Listener("mx"))).Code);
        Assert.Equal(GatewayFixture.NoDomain(external), (await gw.RcptAsync($"b@{outbound}", external, from, gw.Postfix.Listener("mx"))).ToString());
        // Relay listener (policy_context=outbound): no inbound.
        Assert.Equal(GatewayFixture.NoDomain($"a@{inbound}"), (await gw.RcptAsync("s@elsewhere.example", $"a@{inbound}", from, gw.Postfix.Listener("relay"))).ToString());
        Assert.Equal(250, (await gw.RcptAsync($"b@{outbound}", external, from, gw.Postfix.Listener("relay"))).Code);
    }

    [Fact]
    public async Task DeployFiles_UsedAsShipped_OnlyInstanceSettingsOverridden()
    {
        var effective = await gw.Postfix.PostconfAsync(["-h", "smtpd_relay_restrictions", "relay_domains", "transport_maps", "smtpd_policy_service_default_action"]);
        var lines = effective.Trim().Split('\n');

        Assert.Equal("check_policy_service $gateway_policy_service defer", lines[0]);
        Assert.Equal("socketmap:$gateway_socketmap:domains", lines[1]);
        Assert.Equal("socketmap:$gateway_socketmap:transport", lines[2]);
        Assert.StartsWith("451 4.3.5", lines[3], StringComparison.Ordinal);
        Assert.DoesNotContain("permit_mynetworks", await gw.Postfix.PostconfAsync(["-h", "smtpd_relay_restrictions", "smtpd_recipient_restrictions"]), StringComparison.Ordinal);
    }
}
