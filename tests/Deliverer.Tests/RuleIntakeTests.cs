using System.Net;
using Gateway.Api.V1;
using Gateway.Core.Quarantine;
using Gateway.Core.Snapshot;
using Gateway.Core.Storage;
using Gateway.Testing;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.DependencyInjection;
using Gateway.Core.Mail;

namespace Deliverer.Tests;

/// <summary>A Deliverer for the policy rule tests (own Redis, so the quarantine and queue counts are the tests' own).</summary>
public sealed class RulesFixture : GatewayFixture
{
    /// <summary>PolicyRuleService as the fixture's tenant (operator key acting for it).</summary>
    public PolicyRuleService.PolicyRuleServiceClient Rules => new(AsTenant());

    public QuarantineService.QuarantineServiceClient Quarantine => new(AsTenant());

    public CallInvoker AsTenant() => Channel.Intercept(metadata =>
    {
        metadata.Add("authorization", "Bearer " + OperatorKey);
        metadata.Add("x-company-id", CompanyId);
        return metadata;
    });

    /// <summary>Creates a rule and waits until the in-process Deliverer's snapshot carries it (requirements §3.14: within 1 second).</summary>
    public async Task<PolicyRule> AddRuleAsync(string domain, PolicyRule rule)
    {
        var created = await Rules.CreateRuleAsync(new CreateRuleRequest { Domain = domain, Rule = rule });
        var snapshot = DelivererServices!.GetRequiredService<ConfigSnapshot>();
        await Eventually.WaitAsync(() => snapshot.Find(domain)?.Rules?.Rules.Any(r => r.Rule.Id == created.Id) == true, TimeSpan.FromSeconds(5), $"rule {created.Id} in the snapshot");
        return created;
    }
}

/// <summary>Policy rules at the Deliverer's intake over real SMTP: content rules (subject, attachment, size) and QUARANTINE.</summary>
[Trait("Kind", "Integration")]
public sealed class RuleIntakeTests(RulesFixture fx) : IClassFixture<RulesFixture>
{
    private async Task<(string Domain, SmtpSink Sink)> DomainAsync()
    {
        var sink = SmtpSink.Start("127.0.0.2");
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("ru"), ("*@{d}", sink.Host, sink.Port, 10));
        return (d, sink);
    }

    private static string Message(string subject, string body = "Hello.", string? attachment = null)
    {
        var head = $"From: a@remote.test\r\nTo: u@x\r\nSubject: {subject}\r\nMessage-ID: <{Guid.NewGuid():N}@client.test>\r\nMIME-Version: 1.0\r\n";
        if (attachment is null)
        {
            return head + "Content-Type: text/plain\r\n\r\n" + body + "\r\n";
        }

        return head + "Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\n" + body +
               $"\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{attachment}\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b1--\r\n";
    }

    private async Task<long> QueuedAsync(string d) => await fx.RedisClient.GetDatabase().SortedSetLengthAsync(RedisKeys.DomainQueue(d));

    [Fact]
    public async Task Intake_SubjectRule_Rejects550WithText_OtherMailDelivered()
    {
        var (d, sink) = await DomainAsync();
        await using var _ = sink;
        var rule = await fx.AddRuleAsync(d, new PolicyRule { SubjectContains = "lottery", Action = RuleAction.Reject, RejectText = "No lotteries here" });

        var refused = await RawSmtp.SendAsync(fx.Intake, "a@remote.test", ["u@" + d], Message("You won the LOTTERY"));
        Assert.Equal("550 5.7.1 No lotteries here", refused);
        Assert.Equal(0, await QueuedAsync(d));
        var logged = await fx.WaitForLogAsync(d, e => e["event"] == "policy_reject", "policy_reject at intake");
        Assert.Contains(rule.Id, logged["detail"], StringComparison.Ordinal);
        Assert.Equal("u@" + d, logged["recipient"]);

        Assert.StartsWith("250 ", await RawSmtp.SendAsync(fx.Intake, "a@remote.test", ["u@" + d], Message("Minutes of the meeting")), StringComparison.Ordinal);
        var delivered = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10)));
        Assert.Contains("Minutes of the meeting", delivered.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Intake_AttachmentRule_Rejects_DefaultText()
    {
        var (d, sink) = await DomainAsync();
        await using var _ = sink;
        await fx.AddRuleAsync(d, new PolicyRule { AttachmentNames = { "*.exe" }, Action = RuleAction.Reject });

        Assert.Equal("550 5.7.1 " + Gateway.Core.Rules.RuleDefaults.RejectText,
            await RawSmtp.SendAsync(fx.Intake, "a@remote.test", ["u@" + d], Message("Setup", attachment: "Setup.EXE")));
        Assert.StartsWith("250 ", await RawSmtp.SendAsync(fx.Intake, "a@remote.test", ["u@" + d], Message("Report", attachment: "report.pdf")), StringComparison.Ordinal);
        Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Intake_SizeRule_RejectsOnlyLargerMessages()
    {
        var (d, sink) = await DomainAsync();
        await using var _ = sink;
        await fx.AddRuleAsync(d, new PolicyRule { SizeAbove = 4000, Action = RuleAction.Reject, RejectText = "Too big for us" });

        Assert.Equal("550 5.7.1 Too big for us", await RawSmtp.SendAsync(fx.Intake, "a@remote.test", ["u@" + d], Message("big", new string('x', 70) + "\r\n" + string.Concat(Enumerable.Repeat(new string('y', 70) + "\r\n", 80)))));
        Assert.StartsWith("250 ", await RawSmtp.SendAsync(fx.Intake, "a@remote.test", ["u@" + d], Message("small")), StringComparison.Ordinal);
        Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Intake_EnvelopeRejectRule_AlsoAppliedAtIntake()
    {
        var (d, sink) = await DomainAsync();
        await using var _ = sink;
        await fx.AddRuleAsync(d, new PolicyRule { Senders = { "*@blocked.test" }, Action = RuleAction.Reject, RejectText = "Blocked sender" });
        // Refused at RCPT, worded as Postfix words the policy service's refusal of the same rule.
        Assert.Equal($"550 5.7.1 <u@{d}>: Recipient address rejected: Blocked sender", await RawSmtp.SendAsync(fx.Intake, "x@blocked.test", ["u@" + d], Message("hi")));
        Assert.Equal(0, await QueuedAsync(d));
    }

    [Fact]
    public async Task Intake_QuarantineRule_StoredInQuarantineNotQueued_Logged()
    {
        var (d, sink) = await DomainAsync();
        await using var _ = sink;
        var deliver = await fx.AddRuleAsync(d, new PolicyRule { Senders = { "boss@suspicious.test" }, Action = RuleAction.Deliver });
        var rule = await fx.AddRuleAsync(d, new PolicyRule { Senders = { "suspicious.test" }, Action = RuleAction.Quarantine, Description = "suspicious senders" });

        var before = await Scrape.GetAsync(fx.DelivererHttp!);
        var reply = await RawSmtp.SendAsync(fx.Intake, "x@suspicious.test", ["u@" + d, "v@" + d], Message("Check this"));
        Assert.StartsWith("250 ", reply, StringComparison.Ordinal);
        var id = reply.Split(' ')[^1];
        Assert.Equal(0, await QueuedAsync(d));
        var store = fx.ControlPlaneServices.GetRequiredService<QuarantineStore>();
        var held = await store.GetAsync(d, id);
        Assert.NotNull(held);
        Assert.Equal(rule.Id, held!.RuleId);
        Assert.Equal("suspicious senders", held.RuleDescription);
        Assert.Equal(["u@" + d, "v@" + d], held.Recipients);
        Assert.Equal("Check this", held.Subject);
        Assert.Equal(Direction.Inbound, held.Direction);
        Assert.Equal(1, await fx.RedisClient.GetDatabase().SortedSetLengthAsync(RedisKeys.DomainQuarantine(d)));
        Scrape after = before;
        await Eventually.WaitAsync(async () => (after = await Scrape.GetAsync(fx.DelivererHttp!)).Value("gateway_deliverer_intake_messages_total", ("result", "quarantined"))
            >= before.Value("gateway_deliverer_intake_messages_total", ("result", "quarantined")) + 1, TimeSpan.FromSeconds(10), "quarantined message counted");
        var logged = await fx.WaitForLogAsync(d, e => e["event"] == "quarantined", "quarantined event");
        Assert.Equal(id, logged["message_id"]);
        Assert.Contains(rule.Id, logged["detail"], StringComparison.Ordinal);

        // The DELIVER rule before it lets the boss through.
        Assert.StartsWith("250 ", await RawSmtp.SendAsync(fx.Intake, "boss@suspicious.test", ["u@" + d], Message("From the boss")), StringComparison.Ordinal);
        Assert.Contains("From the boss", Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10))).Text, StringComparison.Ordinal);
        Assert.Equal(1, await fx.RedisClient.GetDatabase().SortedSetLengthAsync(RedisKeys.DomainQuarantine(d)));
        Assert.NotNull(deliver);
    }

    [Fact]
    public async Task Intake_ClientIpRule_UsesXforwardAddress()
    {
        var (d, sink) = await DomainAsync();
        await using var _ = sink;
        await fx.AddRuleAsync(d, new PolicyRule { ClientIps = { "2001:db8:77::/48" }, Action = RuleAction.Quarantine });

        await using (var c = await RawSmtp.ConnectAsync(fx.Intake))
        {
            await c.ReadReplyAsync();
            await c.WriteAsync("EHLO postfix.test\r\n");
            Assert.Contains("XFORWARD", await c.ReadReplyAsync(), StringComparison.Ordinal);
            await c.WriteAsync("XFORWARD NAME=spam.example ADDR=IPV6:2001:db8:77::5\r\n");
            Assert.Equal("250 2.0.0 Ok", await c.ReadReplyAsync());
            await c.WriteAsync($"MAIL FROM:<a@remote.test>\r\nRCPT TO:<u@{d}>\r\nDATA\r\n");
            Assert.StartsWith("250", await c.ReadReplyAsync(), StringComparison.Ordinal);
            Assert.StartsWith("250", await c.ReadReplyAsync(), StringComparison.Ordinal);
            Assert.StartsWith("354", await c.ReadReplyAsync(), StringComparison.Ordinal);
            await c.WriteAsync(Message("via v6") + ".\r\n");
            Assert.StartsWith("250 ", await c.ReadReplyAsync(), StringComparison.Ordinal);

            // The next transaction has no XFORWARD: the client is the connection's own (127.0.0.1), the rule does not match.
            await c.WriteAsync($"MAIL FROM:<a@remote.test>\r\nRCPT TO:<u@{d}>\r\nDATA\r\n");
            await c.ReadReplyAsync();
            await c.ReadReplyAsync();
            await c.ReadReplyAsync();
            await c.WriteAsync(Message("direct") + ".\r\n");
            Assert.StartsWith("250 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        }

        Assert.Equal(1, await fx.RedisClient.GetDatabase().SortedSetLengthAsync(RedisKeys.DomainQuarantine(d)));
        Assert.Contains("direct", Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10))).Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Intake_RejectForOneDomainOfTwo_OthersDelivered_SenderGetsDsn()
    {
        await using var senderSink = SmtpSink.Start("127.0.0.3");
        await using var otherSink = SmtpSink.Start("127.0.0.4");
        var (strict, strictSink) = await DomainAsync();
        await using var _ = strictSink;
        var senderDomain = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("snd"), ("*@{d}", senderSink.Host, senderSink.Port, 10));
        var other = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("oth"), ("*@{d}", otherSink.Host, otherSink.Port, 10));
        await fx.AddRuleAsync(strict, new PolicyRule { SubjectContains = "lottery", Action = RuleAction.Reject, RejectText = "No lotteries" });

        var reply = await RawSmtp.SendAsync(fx.Intake, "me@" + senderDomain, ["a@" + strict, "b@" + other], Message("lottery news"));

        Assert.StartsWith("250 ", reply, StringComparison.Ordinal);
        Assert.Equal(["b@" + other], Assert.Single(await otherSink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10))).Recipients);
        var dsn = Assert.Single(await senderSink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10)));
        Assert.Equal(string.Empty, dsn.MailFrom);
        Assert.Contains("multipart/report", dsn.Text, StringComparison.Ordinal);
        Assert.Contains("a@" + strict, dsn.Text, StringComparison.Ordinal);
        Assert.Contains("550 5.7.1 No lotteries", dsn.Text, StringComparison.Ordinal);
        Assert.Empty(strictSink.Messages);
    }
}
