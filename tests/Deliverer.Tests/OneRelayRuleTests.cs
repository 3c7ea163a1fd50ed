using System.Net;
using Gateway.Api.V1;
using Gateway.ControlPlane.Application;
using Gateway.Core.Storage;
using Gateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using Xunit.Abstractions;

namespace Deliverer.Tests;

/// <summary>
/// One relay rule and one address form (requirements §11.2, §11.3), through a real Postfix as deployed and at the
/// Deliverer's intake over real sockets: the intake grants no more than Postfix's client would get, routing syntax is
/// refused by both, other spellings of one address follow that address's route, and for adversarial paths the policy
/// service (Postfix's parse) and the intake name the same recipient or one of them refuses.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class OneRelayRuleTests(ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private WholeGateway _gw = null!;
    private DomainService.DomainServiceClient _domains = null!;
    private ConnectionMultiplexer _redis = null!;

    public async Task InitializeAsync()
    {
        _gw = await WholeGateway.StartAsync("--PolicyDaemon:LogAccepts=true");
        var (_, key) = await _gw.ControlPlane.NewTenantAsync("one");
        _domains = new DomainService.DomainServiceClient(_gw.ControlPlane.WithKey(key));
        _redis = await ConnectionMultiplexer.ConnectAsync(_gw.Redis.ConnectionString);
    }

    public async Task DisposeAsync()
    {
        await _redis.DisposeAsync();
        await _gw.DisposeAsync();
    }

    private static string NewName(string prefix) => $"{prefix}{Guid.NewGuid().ToString("N")[..8]}.example.com";

    private async Task<string> InboundDomainAsync(string name, params (string Recipient, SmtpSink Sink)[] rows)
    {
        var domain = new Domain { Name = name, InboundEnabled = true };
        foreach (var (recipient, sink) in rows)
        {
            // As in the worked example: an address's own row (10) before the catch-all (20).
            domain.InboundServers.Add(new Gateway.Api.V1.InboundServer
            {
                Recipient = recipient, Host = sink.Host, Port = sink.Port, Preference = recipient.StartsWith("*@", StringComparison.Ordinal) ? 20 : 10,
            });
        }

        var created = await _domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        await _gw.WaitAppliedAsync(name, created.Etag);
        return name;
    }

    private async Task<string> OutboundDomainAsync(string name, params string[] sources)
    {
        await _domains.CreateDomainAsync(new CreateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new Gateway.Api.V1.OutboundSettings { Enabled = true, CustomIps = { sources } } },
        });
        var verified = await _gw.ControlPlane.Services.GetRequiredService<DomainManager>().ChangeAsync(name,
            d => d with { Verification = d.Verification with { Verified = true, Method = Gateway.Core.Domains.VerificationMethod.Txt, VerifyTime = DateTimeOffset.UtcNow } },
            ConfigOps.Verify);
        await _gw.WaitAppliedAsync(name, verified.Etag);
        return name;
    }

    /// <summary>One transaction straight to the intake; returns the RCPT reply and, when accepted, the final reply.</summary>
    private async Task<(string Rcpt, string? Final)> IntakeAsync(string? xforward, string sender, string recipient)
    {
        await using var c = await RawSmtp.ConnectAsync(_gw.Intake);
        await c.ReadReplyAsync();
        await c.WriteAsync("EHLO local-process.test\r\n");
        await c.ReadReplyAsync();
        if (xforward is not null)
        {
            await c.WriteAsync($"XFORWARD {xforward}\r\n");
            Assert.StartsWith("250 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        }

        await c.WriteAsync($"MAIL FROM:<{sender}>\r\n");
        Assert.StartsWith("250 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync($"RCPT TO:<{recipient}>\r\n");
        var rcpt = await c.ReadReplyAsync();
        if (!rcpt.StartsWith('2'))
        {
            return (rcpt, null);
        }

        await c.WriteAsync("DATA\r\n");
        await c.ReadReplyAsync();
        await c.WriteAsync($"From: <{sender}>\r\nSubject: direct\r\n\r\nstraight to the intake\r\n.\r\n");
        return (rcpt, await c.ReadReplyAsync());
    }

    [Fact]
    public async Task Intake_WithoutXforwardOrWithForeignClient_NoDomain_NothingSent_TheSourceIsRelayed_AlsoThroughPostfix()
    {
        var mx = SmtpSink.Start("127.0.0.6", _gw.OutboundPort);
        await using var _ = mx;
        var external = $"ext{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        _gw.Dns.AddMx(external, 10, "mx." + external).AddA("mx." + external, "127.0.0.6");
        var name = await OutboundDomainAsync(NewName("out"), "127.0.0.7");
        var rcpt = $"victim@{external}";
        var noDomain = $"554 5.7.1 <{rcpt}>: Recipient address rejected: NO-DOMAIN";

        // A local process (the peer is 127.0.0.1, not a source), with and without a made-up client.
        Assert.Equal((noDomain, null), await IntakeAsync(null, $"ceo@{name}", rcpt));
        Assert.Equal((noDomain, null), await IntakeAsync("ADDR=198.51.100.99 NAME=[UNAVAILABLE]", $"ceo@{name}", rcpt));
        Assert.Equal((noDomain, null), await IntakeAsync("ADDR=IPV6:2001:db8::1", $"ceo@{name}", rcpt));

        // Through Postfix as deployed, from a client that is not a source: the same words.
        var (viaPostfix, _) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, $"ceo@{name}", [rcpt], localAddress: IPAddress.Parse("127.0.0.8"));
        Assert.Equal(noDomain, viaPostfix[0].ToString());

        // The domain's sending source, named as Postfix names it, is relayed; and through Postfix from the source itself.
        var (ok, final) = await IntakeAsync("ADDR=127.0.0.7", $"ceo@{name}", rcpt);
        Assert.Equal("250 2.1.5 Ok", ok);
        Assert.StartsWith("250 2.0.0 Ok: queued as", final, StringComparison.Ordinal);
        var (fromSource, data) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, $"ceo@{name}", [rcpt],
            $"From: <ceo@{name}>\r\nSubject: via postfix\r\n\r\nhello\r\n", localAddress: IPAddress.Parse("127.0.0.7"));
        Assert.True(fromSource[0].IsPositive && data!.IsPositive, fromSource[0] + " / " + data);

        var delivered = await mx.WaitForMessagesAsync(2, Wait);
        await Task.Delay(TimeSpan.FromSeconds(2)); // nothing else may arrive
        Assert.Equal(2, mx.Messages.Count);
        Assert.All(delivered, m => Assert.Equal([rcpt], m.Recipients));
    }

    [Theory]
    [InlineData("victim%evil.test@{d}")]
    [InlineData("evil.test!victim@{d}")]
    [InlineData("\"a@evil.test\"@{d}")]
    public async Task RoutingSyntax_RefusedThroughPostfixAndAtTheIntake(string template)
    {
        var sink = SmtpSink.Start("127.0.0.2");
        await using var _ = sink;
        var d = NewName("rt");
        await InboundDomainAsync(d, ("*@" + d, sink));
        var recipient = template.Replace("{d}", d, StringComparison.Ordinal);

        var (viaPostfix, _) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, "s@remote.test", [recipient]);
        Assert.StartsWith("550 5.7.1 <", viaPostfix[0].ToString(), StringComparison.Ordinal);
        Assert.EndsWith("Recipient address rejected: Sender-specified routing is not allowed", viaPostfix[0].ToString(), StringComparison.Ordinal);

        var (atIntake, _) = await IntakeAsync(null, "s@remote.test", recipient);
        Assert.StartsWith("550 5.7.1 <", atIntake, StringComparison.Ordinal);
        Assert.EndsWith("Recipient address rejected: Sender-specified routing is not allowed", atIntake, StringComparison.Ordinal);
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Empty(sink.Messages);
    }

    [Fact]
    public async Task QuotedAndTrailingDotSpellings_FollowJohnsRow_ThroughPostfixAndAtTheIntake()
    {
        var catchAll = SmtpSink.Start("127.0.0.2");
        var john = SmtpSink.Start("127.0.0.3");
        await using var _1 = catchAll;
        await using var _2 = john;
        var name = NewName("jn");
        await InboundDomainAsync(name, ("*@" + name, catchAll), ("john@" + name, john));

        foreach (var spelling in new[] { $"\"john\"@{name}", $"john@{name}.", $"JOHN@{name.ToUpperInvariant()}" })
        {
            var (rcpt, data) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, "s@remote.test", [spelling],
                $"From: <s@remote.test>\r\nSubject: {spelling}\r\n\r\nhi\r\n");
            Assert.True(rcpt[0].IsPositive && data!.IsPositive, spelling + ": " + rcpt[0] + " / " + data);
            var (direct, final) = await IntakeAsync(null, "s@remote.test", spelling);
            Assert.Equal("250 2.1.5 Ok", direct);
            Assert.StartsWith("250 ", final, StringComparison.Ordinal);
        }

        var atJohn = await john.WaitForMessagesAsync(6, Wait);
        Assert.All(atJohn, m => Assert.Contains(Assert.Single(m.Recipients), new[] { $"john@{name}", $"JOHN@{name}" }));
        Assert.Empty(catchAll.Messages);
    }

    /// <summary>
    /// The property of requirements §11.3: for random and adversarial RCPT paths, Postfix parses one recipient and asks
    /// the policy service about it, and forwards the raw path to the intake, which parses it again. Whenever both accept,
    /// they name the same recipient (canonical address, so the same domain, rules and route). Each path gets its own
    /// sender, so the policy's accept event and the intake's event pair up in the message log.
    /// </summary>
    [Fact]
    public async Task AdversarialPaths_PolicyAndIntakeNameTheSameRecipientOrOneRefuses()
    {
        var sink = SmtpSink.Start("127.0.0.2");
        var other = SmtpSink.Start("127.0.0.3");
        await using var _1 = sink;
        await using var _2 = other;
        var managed = NewName("pm");
        var second = NewName("po");
        await InboundDomainAsync(managed, ("*@" + managed, sink));
        await InboundDomainAsync(second, ("*@" + second, other));
        // Senders of this domain are relayed outbound from 127.0.0.1: a path the intake read with another domain than
        // Postfix would then be queued for that other domain, not refused, and show up below.
        var sending = await OutboundDomainAsync(NewName("ps"), "127.0.0.1");

        var seed = Environment.TickCount;
        output.WriteLine($"seed {seed}");
        var random = new Random(seed);
        var paths = Enumerable.Range(0, 150).Select(_ => AdversarialPath(random, managed, second)).ToList();
        var accepted = 0;
        for (var i = 0; i < paths.Count; i++)
        {
            var sender = $"s{i}@{(i % 2 == 0 ? "remote.test" : sending)}";
            await using var c = await PostfixSmtpClient.ConnectAsync(_gw.Postfix.SmtpEndPoint);
            await c.EhloAsync();
            await c.MailFromAsync(sender);
            var rcpt = await c.CommandAsync("RCPT TO:" + paths[i]);
            if (rcpt.Code == 250)
            {
                accepted++;
                Assert.True((await c.DataAsync($"Subject: p{i}\r\n\r\nx\r\n")).IsPositive, paths[i]);
            }

            await c.QuitAsync();
        }

        output.WriteLine($"{accepted} of {paths.Count} paths accepted by Postfix and the intake");
        Assert.True(accepted > 10, "the generator should produce some valid paths");

        // Every message the intake stored: the policy accepted the same sender's RCPT, naming the same recipient.
        var intake = new List<(string Sender, string Recipient)>();
        var policy = new Dictionary<string, string>(StringComparer.Ordinal);
        await Eventually.WaitAsync(async () =>
        {
            intake.Clear();
            policy.Clear();
            foreach (var d in new[] { managed, second, sending })
            {
                foreach (var e in await _redis.GetDatabase().StreamRangeAsync(RedisKeys.DomainLog(d)))
                {
                    var ev = e["event"].ToString();
                    if (ev == "intake")
                    {
                        intake.Add((e["sender"].ToString(), e["recipient"].ToString()));
                    }
                    else if (ev == "policy_accept")
                    {
                        policy[e["sender"].ToString()] = e["recipient"].ToString();
                    }
                }
            }

            return intake.Count >= accepted && intake.All(x => policy.ContainsKey(x.Sender));
        }, Wait, "every stored message logged with its policy decision");

        foreach (var (sender, recipient) in intake)
        {
            var index = int.Parse(sender[1..sender.IndexOf('@', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture);
            Assert.True(policy[sender] == recipient, $"path {paths[index]}: the policy service accepted {policy[sender]}, the intake stored {recipient}");
        }
    }

    /// <summary>
    /// A RCPT path made of the pieces that parsers disagree on: quotes, backslashes, dots, '@', routing characters,
    /// brackets, parameters; about half of them plain enough that Postfix and the intake accept them.
    /// </summary>
    private static string AdversarialPath(Random random, string managed, string second)
    {
        string[] plain = ["john", "a.b", "\"a\"", "\"a b\"", "\"a..b\"", "a..b", "\"j.o\"", "x-y", "Ann"];
        string[] hostile = ["\"a@" + second + "\"", "\"a\\\"b\"", "a\\\"b", ".a", "\"\"", "a%b", "b!a", "\"a\".b", "a\"b\"",
            "\"a\\\\\"", "\"a>b\"", "a(b)", "\"a\".\\\"b.\"", "a b", "<a"];
        string[] plainDomains = [managed, managed + ".", managed.ToUpperInvariant(), second];
        string[] hostileDomains = ["evil.example", "[127.0.0.1]", managed + ">", "\"@" + managed, second + ">ORCPT=rfc822;\"@" + managed,
            managed + " ORCPT=rfc822;a@" + second, managed + "..", "-" + managed];
        string Pick(string[] good, string[] bad) => random.Next(2) == 0 ? good[random.Next(good.Length)] : bad[random.Next(bad.Length)];
        var local = random.Next(4) == 0 ? Pick(plain, hostile) + Pick(plain, hostile) : Pick(plain, hostile);
        var domain = Pick(plainDomains, hostileDomains);
        var tail = random.Next(6) == 0 ? "\"" : string.Empty;
        return $"<{local}@{domain}>{tail}";
    }
}
