using System.Net;
using Gateway.Api.V1;
using Gateway.Core.Quarantine;
using Gateway.Core.Snapshot;
using Gateway.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Deliverer.Tests;

/// <summary>The whole gateway (Redis, ControlPlane, PolicyDaemon, Deliverer, a real Postfix from deploy/postfix), once for the class.</summary>
public sealed class WholeGatewayFixture : IAsyncLifetime
{
    public WholeGateway Gateway { get; private set; } = null!;

    public async Task InitializeAsync() => Gateway = await WholeGateway.StartAsync();

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}

/// <summary>The whole gateway with Postfix in after-queue mode (<c>smtpd_proxy_filter</c> empty): Postfix queues, then relays to the intake.</summary>
public sealed class AfterQueueGatewayFixture : IAsyncLifetime
{
    public WholeGateway Gateway { get; private set; } = null!;

    public async Task InitializeAsync() => Gateway = await WholeGateway.StartAsync(new Dictionary<string, string> { ["smtpd_proxy_filter"] = string.Empty });

    public async Task DisposeAsync() => await Gateway.DisposeAsync();
}

/// <summary>
/// Policy rules end to end through a real Postfix: an envelope REJECT is the SMTP client's RCPT reply (550 5.7.1),
/// a QUARANTINE by client address holds the message at the Deliverer (Postfix forwards the client by XFORWARD),
/// a content REJECT is the Deliverer's reply to the client's DATA (Postfix passes it on: before-queue), and other
/// mail is delivered.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class PostfixRuleTests(WholeGatewayFixture fx) : IClassFixture<WholeGatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    internal static string Message(string subject) =>
        $"From: <s@remote.test>\r\nSubject: {subject}\r\nMessage-ID: <{Guid.NewGuid():N}@client.test>\r\n\r\nHello through Postfix.\r\n";

    /// <summary>A domain delivering to <paramref name="sink"/> with three rules (envelope REJECT, client QUARANTINE, content REJECT), applied by both programs.</summary>
    internal static async Task<(string Name, string Recipient)> RulesDomainAsync(WholeGateway gw, SmtpSink sink)
    {
        var (_, key) = await gw.ControlPlane.NewTenantAsync("pr");
        var domains = new DomainService.DomainServiceClient(gw.ControlPlane.WithKey(key));
        var rules = new PolicyRuleService.PolicyRuleServiceClient(gw.ControlPlane.WithKey(key));
        var name = $"pr{Guid.NewGuid().ToString("N")[..8]}.example.com";
        var created = await domains.CreateDomainAsync(new CreateDomainRequest
        {
            Domain = new Domain { Name = name, InboundEnabled = true, InboundServers = { new Gateway.Api.V1.InboundServer { Recipient = "*@" + name, Host = sink.Host, Port = sink.Port } } },
        });
        await gw.WaitAppliedAsync(name, created.Etag);
        foreach (var rule in new[]
        {
            new PolicyRule { Senders = { "*@blocked.example" }, Action = RuleAction.Reject, RejectText = "Sender blocked by policy" },
            new PolicyRule { ClientIps = { "127.0.0.66" }, Action = RuleAction.Quarantine, Description = "suspicious relay" },
            new PolicyRule { SubjectContains = "lottery", Action = RuleAction.Reject, RejectText = "No lotteries" },
        })
        {
            await rules.CreateRuleAsync(new CreateRuleRequest { Domain = name, Rule = rule });
        }

        await Eventually.WaitAsync(() => new[] { gw.PolicyDaemon, gw.Deliverer }.All(a => a.Services.GetRequiredService<ConfigSnapshot>().Find(name)?.Rules?.Rules.Length == 3),
            TimeSpan.FromSeconds(1), "rules applied by the PolicyDaemon and the Deliverer");

        return (name, "alice@" + name);
    }

    [Fact]
    public async Task Rules_ThroughPostfix_RejectAtRcpt_QuarantineByClient_RejectContentAtIntake()
    {
        var gw = fx.Gateway;
        await using var sink = SmtpSink.Start("127.0.0.2");
        var (name, recipient) = await RulesDomainAsync(gw, sink);

        // 1. Envelope REJECT: the client hears it at RCPT from Postfix.
        var (rcpt, _) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "x@blocked.example", [recipient]);
        Assert.Equal($"550 5.7.1 <{recipient}>: Recipient address rejected: Sender blocked by policy", rcpt[0].ToString());

        // 2. QUARANTINE by client address: accepted at RCPT, held by the Deliverer that learned the client by XFORWARD.
        var (held, heldData) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "s@remote.test", [recipient], Message("held one"),
            localAddress: IPAddress.Parse("127.0.0.66"));
        Assert.Equal(250, held[0].Code);
        Assert.Equal(250, heldData!.Code);
        var store = gw.ControlPlane.Services.GetRequiredService<QuarantineStore>();
        await Eventually.WaitAsync(async () => await store.CountAsync(name) == 1, Wait, "message quarantined");

        // 3. Content REJECT: the Deliverer refuses the DATA with the rule's text and Postfix passes that reply to the
        // client (before-queue proxy): the client keeps the message, and nobody gets a bounce.
        var (_, lotteryData) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "s@remote.test", [recipient], Message("Win the lottery"));
        Assert.Equal(550, lotteryData!.Code);
        Assert.Contains("5.7.1 No lotteries", lotteryData.ToString(), StringComparison.Ordinal);
        await gw.Postfix.WaitForMaillogAsync("proxy-reject: END-OF-MESSAGE: 550 5.7.1 No lotteries", Wait);

        // 4. Everything else is delivered; the quarantined message is the client's of 127.0.0.66.
        var (_, okData) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "s@remote.test", [recipient], Message("plain mail"));
        Assert.Equal(250, okData!.Code);
        var delivered = Assert.Single(await sink.WaitForMessagesAsync(1, Wait));
        Assert.Contains("plain mail", delivered.Text, StringComparison.Ordinal);
        var (items, _) = await store.ListAsync(name, new QuarantineFilter(), null, 10);
        var q = Assert.Single(items);
        Assert.Equal("127.0.0.66", q.ClientAddress);
        Assert.Equal("held one", q.Subject);
    }
}

/// <summary>
/// After-queue mode (<c>smtpd_proxy_filter</c> empty): Postfix accepts the DATA first, so a content REJECT at the
/// intake becomes Postfix's own bounce, which must reach the internet sender (null sender to an unmanaged domain:
/// <c>gateway_bounce_transport</c>), not the intake that would refuse it.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class AfterQueuePostfixRuleTests(AfterQueueGatewayFixture fx) : IClassFixture<AfterQueueGatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task ContentReject_AfterQueue_PostfixBouncesToTheSender_OtherMailDelivered()
    {
        var gw = fx.Gateway;
        await using var sink = SmtpSink.Start("127.0.0.2");
        var (_, recipient) = await PostfixRuleTests.RulesDomainAsync(gw, sink);

        var (_, lotteryData) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "s@remote.test", [recipient], PostfixRuleTests.Message("Win the lottery"));
        Assert.Equal(250, lotteryData!.Code);
        var maillog = await gw.Postfix.WaitForMaillogAsync("550 5.7.1 No lotteries", Wait);
        Assert.Contains("status=bounced", maillog, StringComparison.Ordinal);
        var bounce = Assert.Single(await gw.PostfixBounces.WaitForMessagesAsync(1, Wait));
        Assert.Equal(string.Empty, bounce.MailFrom);
        Assert.Equal(["s@remote.test"], bounce.Recipients);
        Assert.Contains("No lotteries", bounce.Text, StringComparison.Ordinal);
        Assert.Contains("Win the lottery", bounce.Text, StringComparison.Ordinal);

        var (_, okData) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "s@remote.test", [recipient], PostfixRuleTests.Message("plain mail"));
        Assert.Equal(250, okData!.Code);
        Assert.Contains("plain mail", Assert.Single(await sink.WaitForMessagesAsync(1, Wait)).Text, StringComparison.Ordinal);
        await gw.Postfix.WaitForMaillogAsync("status=sent", Wait);
    }
}
