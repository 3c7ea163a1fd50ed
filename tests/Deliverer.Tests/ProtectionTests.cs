using System.IO.Compression;
using System.Net;
using System.Text;
using Gateway.Api.V1;
using Gateway.ControlPlane.Application;
using Gateway.Core.Delivery;
using Gateway.Core.Mail;
using Gateway.Core.MessageLog;
using Gateway.Core.Quarantine;
using Gateway.Deliverer;
using Gateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace Deliverer.Tests;

/// <summary>The whole gateway (Redis, ControlPlane, PolicyDaemon, Deliverer, Postfix from deploy/postfix) scanning with a real rspamd and clamd.</summary>
public sealed class ProtectionFixture : IAsyncLifetime
{
    public ScanningEngines Engines { get; private set; } = null!;

    public WholeGateway Gateway { get; private set; } = null!;

    /// <summary>A multimap rule that fires when rspamd sees this envelope recipient (so a test can tell which recipients rspamd got).</summary>
    public const string MarkedRecipient = "marked@rcpt-check.test";

    public async Task InitializeAsync()
    {
        Engines = await ScanningEngines.StartAsync(o =>
        {
            o.Overrides["multimap.conf"] = "GW_TEST_MARKED_RCPT { type = \"rcpt\"; map = \"${LOCAL_CONFDIR}/override.d/marked-rcpt.map\"; score = 0.0; }\n";
            o.Overrides["marked-rcpt.map"] = MarkedRecipient + "\n";
        });
        Gateway = await WholeGateway.StartAsync(Engines.GatewaySettings);
    }

    public async Task DisposeAsync()
    {
        if (Gateway is not null)
        {
            await Gateway.DisposeAsync();
        }

        if (Engines is not null)
        {
            await Engines.DisposeAsync();
        }
    }
}

/// <summary>
/// Inbound protection end to end (docs/protection.md): internet client → Postfix (before-queue proxy) → the Deliverer's
/// intake → rspamd (/checkv2) and clamd (INSTREAM) → decision per recipient domain → sink or quarantine, and the client
/// hears the verdict as its DATA reply.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class ProtectionTests(ProtectionFixture fx) : IClassFixture<ProtectionFixture>
{
    /// <summary>The GTUBE test pattern: rspamd scores it 15 (its reject score).</summary>
    internal const string Gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private WholeGateway Gw => fx.Gateway;

    [Fact]
    public async Task Gtube_ThroughPostfix_RejectedAtDataQuarantinedOrTaggedPerDomainPolicy()
    {
        await using var rejectSink = SmtpSink.Start("127.0.0.2");
        await using var holdSink = SmtpSink.Start("127.0.0.2");
        await using var tagSink = SmtpSink.Start("127.0.0.2");
        var reject = await DomainAsync("rej", rejectSink, null); // the defaults: reject from 15
        var hold = await DomainAsync("hold", holdSink, new ProtectionSettings { Spam = new SpamProtection { RejectScore = 0 } });
        var tag = await DomainAsync("tag", tagSink, new ProtectionSettings { Spam = new SpamProtection { QuarantineScore = 0, RejectScore = 0, SubjectTag = true } });

        // Reject: the sending client hears 550 5.7.1 at the end of DATA (Postfix passes the intake's reply), nothing is queued.
        var (_, refused) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "spammer@remote.test", ["alice@" + reject], Text("spammer@remote.test", "alice@" + reject, "cheap", Gtube));
        Assert.Equal(550, refused!.Code);
        Assert.StartsWith("5.7.1 Message refused as spam", refused.Lines[0], StringComparison.Ordinal);
        await Gw.Postfix.WaitForMaillogAsync("proxy-reject: END-OF-MESSAGE: 550 5.7.1 Message refused as spam", Wait);
        var scannedReject = await LogEventAsync(reject, MessageLogEvents.Scanned);
        Assert.StartsWith("550 5.7.1", scannedReject.Reply, StringComparison.Ordinal);
        Assert.Contains("action=reject reason=spam score=15.00", scannedReject.Detail, StringComparison.Ordinal);
        Assert.Contains("GTUBE", scannedReject.Detail, StringComparison.Ordinal);

        // Quarantine: 250, held with the verdict.
        var (_, held) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "spammer@remote.test", ["bob@" + hold], Text("spammer@remote.test", "bob@" + hold, "held", Gtube));
        Assert.Equal(250, held!.Code);
        var store = Gw.ControlPlane.Services.GetRequiredService<QuarantineStore>();
        await Eventually.WaitAsync(async () => await store.CountAsync(hold) == 1, Wait, "GTUBE held");
        var (items, _) = await store.ListAsync(hold, new QuarantineFilter(), null, 10);
        Assert.Equal("protection:spam", Assert.Single(items).RuleId);
        Assert.Contains("spam score 15.00 (quarantine at 10.00)", items[0].RuleDescription, StringComparison.Ordinal);
        Assert.Contains("action=quarantine reason=spam", (await LogEventAsync(hold, MessageLogEvents.Scanned)).Detail, StringComparison.Ordinal);

        // Tag: delivered with the flag, the subject tag, the score and the gateway's Authentication-Results.
        var (_, tagged) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "spammer@remote.test", ["carol@" + tag], Text("spammer@remote.test", "carol@" + tag, "offer", Gtube));
        Assert.Equal(250, tagged!.Code);
        var text = Assert.Single(await tagSink.WaitForMessagesAsync(1, Wait)).Text;
        Assert.Contains("\r\nX-Spam-Flag: YES\r\n", text, StringComparison.Ordinal);
        Assert.Contains("\r\nSubject: [SPAM] offer\r\n", text, StringComparison.Ordinal);
        Assert.Contains("\r\nX-Spam-Score: 15.00\r\n", text, StringComparison.Ordinal);
        Assert.Contains("\r\nAuthentication-Results: gateway.test;", text, StringComparison.Ordinal);

        // Nothing of the refused message anywhere: not in the gateway's queue, not at its server, not in Postfix's queue.
        Assert.Equal(0, await Gw.ControlPlane.Services.GetRequiredService<MessageQueue>().CountAsync(reject));
        Assert.Empty(rejectSink.Messages);
        Assert.Empty(holdSink.Messages);
        Assert.Contains("Mail queue is empty", await Gw.Postfix.QueueAsync(), StringComparison.Ordinal);

        var metrics = await Scrape.GetAsync(DelivererApp.HttpAddress(Gw.Deliverer)!);
        foreach (var action in new[] { "reject", "quarantine", "tag" })
        {
            Assert.True(metrics.Value("gateway_protection_verdicts_total", ("action", action), ("reason", "spam"), ("direction", "inbound")) >= 1, action);
        }

        Assert.True(metrics.Has("gateway_protection_scan_duration_seconds_bucket", ("engine", "rspamd")));
        Assert.True(metrics.Has("gateway_protection_scan_duration_seconds_bucket", ("engine", "clamd")));
    }

    [Fact]
    public async Task Gtube_DomainsDisagree_AcceptedTaggedForOneHeldForTheRejectingOne()
    {
        await using var rejectSink = SmtpSink.Start("127.0.0.3");
        await using var tagSink = SmtpSink.Start("127.0.0.3");
        var reject = await DomainAsync("drej", rejectSink, null);
        var tag = await DomainAsync("dtag", tagSink, new ProtectionSettings { Spam = new SpamProtection { QuarantineScore = 0, RejectScore = 0 } });

        // One DATA reply serves both recipients: the tagging domain accepts, so the message is accepted, and the
        // rejecting domain's copy is held (no bounce to a probably forged sender).
        var (_, data) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "spammer@remote.test", ["a@" + reject, "b@" + tag],
            Text("spammer@remote.test", "a@" + reject, "both", Gtube));
        Assert.Equal(250, data!.Code);
        Assert.Contains("X-Spam-Flag: YES", Assert.Single(await tagSink.WaitForMessagesAsync(1, Wait)).Text, StringComparison.Ordinal);
        var store = Gw.ControlPlane.Services.GetRequiredService<QuarantineStore>();
        await Eventually.WaitAsync(async () => await store.CountAsync(reject) == 1, Wait, "the rejecting domain's copy held");
        var (items, _) = await store.ListAsync(reject, new QuarantineFilter(), null, 10);
        Assert.Contains("held: another recipient domain accepted the message", Assert.Single(items).RuleDescription, StringComparison.Ordinal);
        Assert.Empty(rejectSink.Messages);
    }

    [Fact]
    public async Task Eicar_PlainAndZipped_RejectedAlsoForUnverifiedDomainThatWouldDeliver_QuarantinedForVerifiedOne()
    {
        await using var sink = SmtpSink.Start("127.0.0.4");
        var lenient = new ProtectionSettings
        {
            Spam = new SpamProtection { TagScore = 0, QuarantineScore = 0, RejectScore = 0 },
            Malware = ProtectionAction.Quarantine, DmarcEnforce = false, Spoofing = ProtectionAction.Deliver,
        };
        var unverified = await DomainAsync("av", sink, lenient);
        var verified = await DomainAsync("avv", sink, lenient, verified: true);

        var plain = WithAttachment("a@remote.test", "x@" + unverified, "invoice", "invoice.com", ClamdInstance.Eicar);
        var (_, r1) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "a@remote.test", ["x@" + unverified], plain);
        Assert.Equal("550 5.7.1 Message refused: it contains malware (Eicar-Test-Signature.UNOFFICIAL)", r1!.ToString());

        var zipped = WithAttachment("a@remote.test", "x@" + unverified, "invoice", "invoice.zip", Zip("invoice.com", ClamdInstance.Eicar));
        var (_, r2) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "a@remote.test", ["x@" + unverified], zipped);
        Assert.Equal("550 5.7.1 Message refused: it contains malware (Eicar-Test-Signature.UNOFFICIAL)", r2!.ToString());

        // The gateway's own test signature, in an attached text file.
        var (_, r3) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "a@remote.test", ["x@" + unverified],
            WithAttachment("a@remote.test", "x@" + unverified, "sig", "notes.txt", Encoding.ASCII.GetBytes("hello " + ClamdInstance.TestSignature + "\r\n")));
        Assert.Equal("550 5.7.1 Message refused: it contains malware (Gateway-Test-Signature.UNOFFICIAL)", r3!.ToString());

        // A verified domain may choose quarantine.
        var (_, r4) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "a@remote.test", ["x@" + verified],
            WithAttachment("a@remote.test", "x@" + verified, "invoice", "invoice.zip", Zip("invoice.com", ClamdInstance.Eicar)));
        Assert.Equal(250, r4!.Code);
        var store = Gw.ControlPlane.Services.GetRequiredService<QuarantineStore>();
        await Eventually.WaitAsync(async () => await store.CountAsync(verified) == 1, Wait, "malware held");
        var (items, _) = await store.ListAsync(verified, new QuarantineFilter(), null, 10);
        Assert.Equal("protection:malware", Assert.Single(items).RuleId);
        Assert.Contains("malware=Eicar-Test-Signature.UNOFFICIAL", (await LogEventAsync(verified, MessageLogEvents.Scanned)).Detail, StringComparison.Ordinal);
        Assert.Empty(sink.Messages);
    }

    [Fact]
    public async Task Spoofing_ManagedFromSentOutsideItsSpf_RefusedByDmarcOrQuarantinedPerPolicy()
    {
        await using var sink = SmtpSink.Start("127.0.0.5");
        // A managed domain whose SPF (-all) allows only 192.0.2.10 and whose DMARC policy is reject; mail claiming it
        // comes from 127.0.0.1 here.
        var victim = await DomainAsync("victim", sink, null);
        fx.Engines.Dns.AddTxt(victim, "v=spf1 ip4:192.0.2.10 -all").AddTxt("_dmarc." + victim, "v=DMARC1; p=reject");
        var enforcing = await DomainAsync("dm", sink, null);
        var quarantining = await DomainAsync("sq", sink, new ProtectionSettings { DmarcEnforce = false });
        var rejecting = await DomainAsync("sr", sink, new ProtectionSettings { DmarcEnforce = false, Spoofing = ProtectionAction.Reject });
        var delivering = await DomainAsync("sd", sink, new ProtectionSettings { DmarcEnforce = false, Spoofing = ProtectionAction.Deliver });

        string Spoof(string to) => Text("ceo@" + victim, to, "urgent transfer", "Please pay the invoice today.");
        var (_, dmarc) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "ceo@" + victim, ["ap@" + enforcing], Spoof("ap@" + enforcing));
        Assert.Equal($"550 5.7.1 Message refused: DMARC policy of {victim} rejects unauthenticated mail", dmarc!.ToString());

        var (_, held) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "ceo@" + victim, ["ap@" + quarantining], Spoof("ap@" + quarantining));
        Assert.Equal(250, held!.Code);
        var store = Gw.ControlPlane.Services.GetRequiredService<QuarantineStore>();
        await Eventually.WaitAsync(async () => await store.CountAsync(quarantining) == 1, Wait, "spoofed mail held");
        Assert.Equal("protection:spoofing", Assert.Single((await store.ListAsync(quarantining, new QuarantineFilter(), null, 10)).Items).RuleId);

        var (_, spoofRefused) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "ceo@" + victim, ["ap@" + rejecting], Spoof("ap@" + rejecting));
        Assert.Equal(550, spoofRefused!.Code);
        Assert.Equal($"550 5.7.1 Message refused: the sender {victim} is a domain protected by this gateway and the message is not authenticated (spf=fail, dkim=none)", spoofRefused.ToString());

        // Delivered where the domain says so, and the headers say what failed.
        var (_, passed) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "ceo@" + victim, ["ap@" + delivering], Spoof("ap@" + delivering));
        Assert.Equal(250, passed!.Code);
        var text = Assert.Single(await sink.WaitForMessagesAsync(1, Wait)).Text;
        Assert.Contains($"spf=fail smtp.mailfrom=ceo@{victim}", text, StringComparison.Ordinal);
        Assert.Contains($"dmarc=fail (policy=reject) header.from={victim}", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Clean_Delivered_WithAuthenticationResultsNamingGateway_ForgedResultsRemoved()
    {
        await using var sink = SmtpSink.Start("127.0.0.6");
        var domain = await DomainAsync("clean", sink, null);
        var sender = $"good{Guid.NewGuid().ToString("N")[..8]}.example.net";
        fx.Engines.Dns.AddTxt(sender, "v=spf1 ip4:127.0.0.1 -all").AddTxt("_dmarc." + sender, "v=DMARC1; p=reject");

        var message = Text("alice@" + sender, "bob@" + domain, "lunch", "Lunch tomorrow at noon?",
            "Authentication-Results: gateway.test; spf=pass; dkim=pass header.d=bank.example; dmarc=pass",
            "Authentication-Results: (forged) GATEWAY.TEST; dkim=pass",
            "Authentication-Results: mx.other.example; spf=fail",
            "X-Spam-Score: -100",
            "X-Spam-Flag: NO");
        var (_, data) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "alice@" + sender, ["bob@" + domain], message);
        Assert.Equal(250, data!.Code);
        var text = Assert.Single(await sink.WaitForMessagesAsync(1, Wait)).Text;
        var header = text[..text.IndexOf("\r\n\r\n", StringComparison.Ordinal)];
        var ours = header.Split("\r\nAuthentication-Results:").Skip(1).Where(h => h.TrimStart().StartsWith("gateway.test", StringComparison.OrdinalIgnoreCase) || h.Contains("GATEWAY.TEST", StringComparison.Ordinal)).ToList();
        var only = Assert.Single(ours);
        Assert.Contains("dkim=none", only, StringComparison.Ordinal);
        Assert.Contains($"spf=pass smtp.mailfrom=alice@{sender}", only, StringComparison.Ordinal);
        Assert.Contains($"dmarc=pass header.from={sender}", only, StringComparison.Ordinal);
        Assert.Contains("Authentication-Results: mx.other.example; spf=fail", header, StringComparison.Ordinal);
        Assert.DoesNotContain("-100", header, StringComparison.Ordinal);
        Assert.DoesNotContain("X-Spam-Flag", header, StringComparison.Ordinal);
        Assert.Single(header.Split("\r\nX-Spam-Score: ").Skip(1));
        // The gateway's fields follow its own Received header (this hop's trace).
        Assert.StartsWith("Received: from ", text, StringComparison.Ordinal);
        Assert.Contains("\r\nAuthentication-Results: gateway.test;", text[..text.IndexOf("Subject:", StringComparison.Ordinal)], StringComparison.Ordinal);
        Assert.Contains("action=deliver reason=clean", (await LogEventAsync(domain, MessageLogEvents.Scanned)).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ScannerDown_Answers451NothingQueued_PassDomainsGetUnscannedHeader_DeliveredOnceBack()
    {
        await using var sink = SmtpSink.Start("127.0.0.7");
        var strict = await DomainAsync("down", sink, null);
        var pass = await DomainAsync("pass", sink, new ProtectionSettings { OnScannerFailure = ScannerFailureAction.Pass }, verified: true);
        var passUnverified = await DomainAsync("passu", sink, new ProtectionSettings { OnScannerFailure = ScannerFailureAction.Pass });
        var message = Text("a@remote.test", "x@" + strict, "while down", "Hello.");

        await fx.Engines.Rspamd.StopAsync();
        try
        {
            var (_, refused) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "a@remote.test", ["x@" + strict], message);
            Assert.Equal("451 4.7.1 Message could not be scanned now; try again later", refused!.ToString());
            await Gw.Postfix.WaitForMaillogAsync("proxy-reject: END-OF-MESSAGE: 451 4.7.1", Wait);
            Assert.Contains("Mail queue is empty", await Gw.Postfix.QueueAsync(), StringComparison.Ordinal);
            Assert.Equal(0, await Gw.ControlPlane.Services.GetRequiredService<MessageQueue>().CountAsync(strict));

            var (_, passed) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "a@remote.test", ["y@" + pass], Text("a@remote.test", "y@" + pass, "unscanned", "Hello."));
            Assert.Equal(250, passed!.Code);
            var unscanned = Assert.Single(await sink.WaitForMessagesAsync(1, Wait)).Text;
            Assert.Contains("\r\nX-Gateway-Unscanned: spam and sender authentication (rspamd: ", unscanned, StringComparison.Ordinal);
            Assert.DoesNotContain("Authentication-Results: gateway.test", unscanned, StringComparison.Ordinal);

            using var http = new HttpClient();
            var health = await http.GetAsync(new Uri(DelivererApp.HttpAddress(Gw.Deliverer) + "/healthz"));
            var body = await health.Content.ReadAsStringAsync();
            Assert.StartsWith("Degraded", body, StringComparison.Ordinal);
            Assert.Contains("scanners: Degraded", body, StringComparison.Ordinal);
            var metrics = await Scrape.GetAsync(DelivererApp.HttpAddress(Gw.Deliverer)!);
            Assert.True(metrics.Value("gateway_protection_scanner_calls_total", ("engine", "rspamd"), ("result", "unavailable")) >= 1);
            Assert.True(metrics.Value("gateway_protection_verdicts_total", ("action", "tempfail"), ("reason", "scanner_failure"), ("direction", "inbound")) >= 1);
        }
        finally
        {
            await fx.Engines.Rspamd.RestartAsync();
        }

        // The sender retries: now it is scanned and delivered.
        var (_, delivered) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "a@remote.test", ["x@" + strict], message);
        Assert.Equal(250, delivered!.Code);
        await Eventually.WaitAsync(() => sink.Messages.Any(m => m.Text.Contains("Subject: while down", StringComparison.Ordinal)), Wait, "delivered after rspamd came back");

        // clamd down: a verified domain that passes unscanned mail gets it with the header; an unverified one never
        // passes the malware check (requirements §9) and the sender is told 451.
        await fx.Engines.Clamd.StopAsync();
        try
        {
            var (_, unverifiedReply) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "a@remote.test", ["z@" + passUnverified],
                WithAttachment("a@remote.test", "z@" + passUnverified, "no av", "report.pdf", "%PDF-1.4 harmless"u8.ToArray()));
            Assert.Equal(451, unverifiedReply!.Code);
            var (_, verifiedReply) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "a@remote.test", ["y@" + pass],
                WithAttachment("a@remote.test", "y@" + pass, "no av", "report.pdf", "%PDF-1.4 harmless"u8.ToArray()));
            Assert.Equal(250, verifiedReply!.Code);
            await Eventually.WaitAsync(() => sink.Messages.Any(m => m.Text.Contains("Subject: no av", StringComparison.Ordinal)), Wait, "passed without the malware check");
            var text = sink.Messages.Single(m => m.Text.Contains("Subject: no av", StringComparison.Ordinal)).Text;
            Assert.Contains("\r\nX-Gateway-Unscanned: malware (clamd: ", text, StringComparison.Ordinal);
            Assert.Contains("\r\nAuthentication-Results: gateway.test;", text, StringComparison.Ordinal);

            // Mail without attachments is not clamd's (MalwareScope=Attachments, as rspamd's antivirus module): it flows on.
            var (_, plainReply) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "a@remote.test", ["z@" + passUnverified],
                Text("a@remote.test", "z@" + passUnverified, "plain text", "Hello."));
            Assert.Equal(250, plainReply!.Code);
        }
        finally
        {
            await fx.Engines.Clamd.RestartAsync();
        }
    }

    [Fact]
    public async Task Outbound_MalwareRefused_SpamScoredAndRefusedFromTheDomainsOutboundThreshold()
    {
        var mx = SmtpSink.Start("127.0.0.8", Gw.OutboundPort);
        await using var _ = mx;
        var external = $"ext{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        Gw.Dns.AddMx(external, 10, "mx." + external).AddA("mx." + external, "127.0.0.8");
        var client = IPAddress.Parse("127.0.0.9");
        var name = await DomainAsync("out", null, null, verified: true, outboundIp: client.ToString());
        var to = "bob@" + external;

        var (_, virus) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "alice@" + name, [to],
            WithAttachment("alice@" + name, to, "report", "report.zip", Zip("report.com", ClamdInstance.Eicar)), client);
        Assert.Equal("550 5.7.1 Message refused: it contains malware (Eicar-Test-Signature.UNOFFICIAL)", virus!.ToString());

        // Scored and logged, delivered unchanged (no gateway headers on outbound mail).
        var (_, spam) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "alice@" + name, [to], Text("alice@" + name, to, "newsletter", Gtube), client);
        Assert.Equal(250, spam!.Code);
        var sent = Assert.Single(await mx.WaitForMessagesAsync(1, Wait)).Text;
        Assert.DoesNotContain("X-Spam-Score", sent, StringComparison.Ordinal);
        Assert.DoesNotContain("Authentication-Results", sent, StringComparison.Ordinal);
        var scanned = await LogEventAsync(name, MessageLogEvents.Scanned);
        Assert.Equal(Direction.Outbound, scanned.Direction);
        Assert.Contains("action=deliver reason=clean score=15.00", scanned.Detail, StringComparison.Ordinal);

        var domains = new DomainService.DomainServiceClient(Gw.ControlPlane.WithKey(_keys[name]));
        var updated = await domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Protection = new ProtectionSettings { Spam = new SpamProtection { OutboundRejectScore = 10 } } },
            UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "protection.spam.outbound_reject_score" } },
        });
        Assert.Equal(10, updated.Protection.Spam.OutboundRejectScore);
        Assert.Equal(15, updated.Protection.Spam.RejectScore); // untouched by the mask
        await Gw.WaitAppliedAsync(name, updated.Etag);
        var (_, refused) = await PostfixSmtpClient.SendAsync(Gw.Postfix.SmtpEndPoint, "alice@" + name, [to], Text("alice@" + name, to, "newsletter 2", Gtube), client);
        Assert.Equal("550 5.7.1 Message refused as spam (outbound score 15.00, limit 10.00)", refused!.ToString());
    }

    [Fact]
    public async Task RspamdClient_SeveralRecipients_RspamdSeesEachOfThem()
    {
        using var client = new Gateway.Deliverer.Protection.RspamdClient(
            new Gateway.Deliverer.Protection.ProtectionOptions { RspamdUrls = [fx.Engines.Rspamd.NormalUrl.ToString()] }, TimeProvider.System);
        var message = Encoding.ASCII.GetBytes(Text("a@remote.test", "x@one.test", "rcpts", "Hello."));
        foreach (var (recipients, marked) in new (string[], bool)[]
        {
            (["x@one.test"], false),
            (["x@one.test", ProtectionFixture.MarkedRecipient], true),
            ([ProtectionFixture.MarkedRecipient, "x@one.test"], true),
            (["x@one.test", "y@two.test", ProtectionFixture.MarkedRecipient], true),
        })
        {
            var result = await client.CheckAsync(new Gateway.Deliverer.Protection.RspamdRequest("192.0.2.1", "mx.remote.test", null, "a@remote.test", recipients, "Q"), message,
                CancellationToken.None);
            Assert.True(marked == result.Has("GW_TEST_MARKED_RCPT"), string.Join(',', recipients));
        }
    }

    [Fact]
    public async Task ProtectionLearn_FolderOfMessages_TrainsBayesThroughTheController_KnownOnesSkipped()
    {
        var dir = Directory.CreateTempSubdirectory("gw-learn-");
        try
        {
            for (var i = 0; i < 3; i++)
            {
                await File.WriteAllTextAsync(Path.Combine(dir.FullName, $"{i}.eml"),
                    Text("promo@remote.test", "x@one.test", $"Cheap watches {i}", $"Buy replica watches number {i} now, {Guid.NewGuid():N} discount!"));
            }

            await File.WriteAllTextAsync(Path.Combine(dir.FullName, ".hidden"), "not a message");
            var before = await LearnedAsync();
            var run = await GatewayCtl.RunAsync(null, ["protection", "learn", "spam", dir.FullName, "--controller", fx.Engines.Rspamd.ControllerUrl.ToString()]);
            Assert.True(run.ExitCode == 0, run.ToString());
            Assert.Contains("Learned 3 message(s) as spam", run.Out, StringComparison.Ordinal);
            Assert.Equal(before + 3, await LearnedAsync());

            var again = await GatewayCtl.RunAsync(null, ["protection", "learn", "spam", dir.FullName, "--controller", fx.Engines.Rspamd.ControllerUrl.ToString(), "--json"]);
            Assert.True(again.ExitCode == 0, again.ToString());
            Assert.Contains("\"learned\":0", again.Out, StringComparison.Ordinal);
            Assert.Contains("\"skipped\":3", again.Out, StringComparison.Ordinal);

            var down = await GatewayCtl.RunAsync(null, ["protection", "learn", "ham", dir.FullName, "--controller", $"http://127.0.0.1:{FreePort.Get()}"]);
            Assert.Equal(6, down.ExitCode);
            Assert.Contains("3 of 3 message(s) could not be learned", down.Err, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>How many messages rspamd's controller has learned since it started (<c>GET /stat</c>, <c>learned</c>).</summary>
    private async Task<long> LearnedAsync()
    {
        using var http = new HttpClient();
        using var doc = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync(new Uri(fx.Engines.Rspamd.ControllerUrl, "stat")));
        return doc.RootElement.GetProperty("learned").GetInt64();
    }

    private readonly Dictionary<string, string> _keys = [];

    /// <summary>A domain of a new tenant delivering to <paramref name="sink"/> (inbound) with the given policy (null: defaults), applied by every program.</summary>
    private async Task<string> DomainAsync(string prefix, SmtpSink? sink, ProtectionSettings? protection, bool verified = false, string? outboundIp = null)
    {
        var (_, key) = await Gw.ControlPlane.NewTenantAsync(prefix);
        var domains = new DomainService.DomainServiceClient(Gw.ControlPlane.WithKey(key));
        var name = $"{prefix}{Guid.NewGuid().ToString("N")[..8]}.example.com";
        var d = new Domain { Name = name, Protection = protection };
        if (sink is not null)
        {
            d.InboundEnabled = true;
            d.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + name, Host = sink.Host, Port = sink.Port });
        }

        if (outboundIp is not null)
        {
            d.Outbound = new Gateway.Api.V1.OutboundSettings { Enabled = true, CustomIps = { outboundIp } };
        }

        var created = await domains.CreateDomainAsync(new CreateDomainRequest { Domain = d });
        var etag = created.Etag;
        if (verified)
        {
            etag = (await Gw.ControlPlane.Services.GetRequiredService<DomainManager>().ChangeAsync(name,
                c => c with { Verification = c.Verification with { Verified = true, Method = Gateway.Core.Domains.VerificationMethod.Txt, VerifyTime = DateTimeOffset.UtcNow } },
                Gateway.Core.Storage.ConfigOps.Verify)).Etag;
        }

        await Gw.WaitAppliedAsync(name, etag);
        _keys[name] = key;
        return name;
    }

    private async Task<MessageLogEvent> LogEventAsync(string domain, string name)
    {
        MessageLogEvent? found = null;
        var reader = Gw.ControlPlane.Services.GetRequiredService<MessageLogReader>();
        await Eventually.WaitAsync(async () =>
        {
            var (events, _) = await reader.ReadPageAsync(domain, new MessageLogFilter { Events = new HashSet<string> { name } }, true, null, 10, 10_000);
            found = events.Count > 0 ? events[0] : null;
            return found is not null;
        }, Wait, $"a {name} event in {domain}'s log");
        return found!;
    }

    internal static string Text(string from, string to, string subject, string body, params string[] headers)
    {
        var b = new StringBuilder();
        foreach (var h in headers)
        {
            b.Append(h).Append("\r\n");
        }

        b.Append("From: <").Append(from).Append(">\r\nTo: <").Append(to).Append(">\r\nSubject: ").Append(subject)
            .Append("\r\nDate: ").Append(DateTimeOffset.UtcNow.ToString("r", System.Globalization.CultureInfo.InvariantCulture))
            .Append("\r\nMessage-ID: <").Append(Guid.NewGuid().ToString("N")).Append("@client.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
            .Append(body).Append("\r\n");
        return b.ToString();
    }

    internal static string WithAttachment(string from, string to, string subject, string fileName, byte[] content)
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(from));
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = subject;
        var builder = new BodyBuilder { TextBody = "Please find the file attached." };
        builder.Attachments.Add(fileName, content, new ContentType("application", "octet-stream"));
        message.Body = builder.ToMessageBody();
        using var stream = new MemoryStream();
        message.WriteTo(FormatOptions.Default.Clone(), stream);
        return Encoding.ASCII.GetString(stream.ToArray());
    }

    internal static byte[] Zip(string name, byte[] content)
    {
        using var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
        {
            using var entry = zip.CreateEntry(name).Open();
            entry.Write(content);
        }

        return stream.ToArray();
    }
}
