using System.Net;
using System.Text;
using Gateway.Api.V1;
using Gateway.Core.Snapshot;
using Gateway.Core.Storage;
using Gateway.Deliverer.Protection;
using Gateway.Testing;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace Deliverer.Tests;

/// <summary>
/// The gateway of <see cref="OutboundProtectionFixture"/> (DKIM keys, the tests' DNS) scanning with a real rspamd and clamd
/// (<see cref="ScanningEngines"/>), with room for big messages in the engines' time limits.
/// </summary>
public sealed class ScanningGatewayFixture : OutboundProtectionFixture
{
    public ScanningEngines Engines { get; private set; } = null!;

    protected override IEnumerable<string> DelivererSettings =>
    [
        .. base.DelivererSettings, .. Engines.GatewaySettings,
        "--Gateway:Protection:RspamdTimeout=00:02:00", "--Gateway:Protection:ClamdTimeout=00:02:00",
    ];

    /// <summary>PolicyRuleService and QuarantineService as the fixture's tenant (the operator key acting for it).</summary>
    public CallInvoker AsTenant() => Channel.Intercept(metadata =>
    {
        metadata.Add("authorization", "Bearer " + OperatorKey);
        metadata.Add("x-company-id", CompanyId);
        return metadata;
    });

    public override async Task InitializeAsync()
    {
        Engines = await ScanningEngines.StartAsync();
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        if (Engines is not null)
        {
            await Engines.DisposeAsync();
        }
    }
}

/// <summary>
/// Bounded memory with scanning on, DKIM signing and the quarantine (requirements §11; docs/architecture.md "Bodies in pieces"):
/// a big message stays in its pieces in Redis while rspamd and clamd read it, while it is signed, and while it is held; each
/// copy's own header fields are a prefix in front of the one shared body. Real Redis, real rspamd and clamd, real sockets; the
/// DKIM signature is checked by an independent verifier (npm mailauth). The memory itself is measured by bench/deliverer (m).
/// </summary>
[Trait("Kind", "Integration")]
public sealed class BoundedMemoryScanTests(ScanningGatewayFixture fx) : IClassFixture<ScanningGatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(120);

    private IDatabase Db => fx.RedisClient.GetDatabase();

    private Task<List<RedisKey>> KeysAsync(string pattern) => RedisScan.KeysAsync(fx.RedisClient, pattern);

    /// <summary>
    /// An inbound domain whose spam policy only tags (quarantine and refusal off): the test messages come from loopback without
    /// reverse DNS, Message-ID or Date, which rspamd scores 12–17; malware is still refused.
    /// </summary>
    private async Task<string> TaggingDomainAsync(string label, string host, int port, bool subjectTag = false)
    {
        var name = GatewayFixture.NewDomainName(label);
        var domain = new Domain
        {
            Name = name, InboundEnabled = true,
            Protection = new ProtectionSettings { Spam = new SpamProtection { QuarantineScore = 0, RejectScore = 0, SubjectTag = subjectTag } },
        };
        domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + name, Host = host, Port = port, Preference = 10 });
        var created = await fx.Domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        await fx.WaitForSnapshotAsync(name, created.Etag);
        return created.Name;
    }

    /// <summary>A 2 MB message held by a QUARANTINE rule at a new domain: the domain, the held copy's id and the shared body it references.</summary>
    private async Task<(string Domain, string Id, string BodyId)> HoldBigMessageAsync(string label)
    {
        var held = await TaggingDomainAsync(label, "127.0.0.3", FreePort.Get(IPAddress.Parse("127.0.0.3")));
        var rules = new PolicyRuleService.PolicyRuleServiceClient(fx.AsTenant());
        var rule = await rules.CreateRuleAsync(new CreateRuleRequest
        {
            Domain = held, Rule = new PolicyRule { Recipients = { "*@" + held }, Action = RuleAction.Quarantine, Description = "hold" },
        });
        var snapshot = fx.DelivererServices!.GetRequiredService<ConfigSnapshot>();
        await Eventually.WaitAsync(() => snapshot.Find(held)?.Rules?.Rules.Any(r => r.Rule.Id == rule.Id) == true, TimeSpan.FromSeconds(5), "the rule in the snapshot");
        Assert.StartsWith("250", await SendAsync(fx.Intake, ["user@" + held], BoundedMemoryTests.Message(2 * 1024 * 1024, Guid.NewGuid().ToString("N"))),
            StringComparison.Ordinal);
        var quarantine = new QuarantineService.QuarantineServiceClient(fx.AsTenant());
        var listed = Assert.Single((await quarantine.ListQuarantineAsync(new ListQuarantineRequest { Domain = held })).Messages);
        var bodyId = (await Db.HashGetAsync(RedisKeys.QuarantineMessage(held, listed.MessageId), SharedBodies.Field)).ToString();
        Assert.True(await Db.KeyExistsAsync(RedisKeys.SharedBody(bodyId)), "the held copy names a stored shared body");
        return (held, listed.MessageId, bodyId);
    }

    /// <summary>A domain's message log in words, for a failure's message.</summary>
    private async Task<string> LogTextAsync(string domain) =>
        string.Join("\n", (await fx.LogAsync(domain)).Select(e => string.Join(' ', e.Select(kv => $"{kv.Key}={kv.Value}"))));

    private async Task<SinkMessage> OneDeliveredAsync(SmtpSink sink, string domain)
    {
        try
        {
            return Assert.Single(await sink.WaitForMessagesAsync(1, Wait));
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "; log:\n" + await LogTextAsync(domain), e);
        }
    }

    private static async Task<string> SendAsync(IPEndPoint intake, IEnumerable<string> recipients, byte[] message, string sender = "someone@remote.test")
    {
        await using var c = await BoundedMemoryTests.OpenDataAsync(intake, recipients, sender);
        await c.WriteAsync(message);
        await c.WriteAsync(".\r\n");
        return await c.ReadReplyAsync(Wait);
    }

    /// <summary>
    /// The delivered copy is the intake's Received field, the fields the gateway adds, then the message as sent byte for byte
    /// (its first field is where the sent bytes start). Returns what came in front of them.
    /// </summary>
    private static string AssertSentBehindHeaders(byte[] sent, byte[] delivered)
    {
        var at = delivered.AsSpan().IndexOf(sent.AsSpan(0, 64));
        Assert.True(at > 0, "the sent message's first bytes are not in the delivered copy");
        Assert.True(delivered.AsSpan(at).SequenceEqual(sent), $"the delivered copy ({delivered.Length} bytes) does not end with the {sent.Length} bytes sent");
        return Encoding.ASCII.GetString(delivered, 0, at);
    }

    [Fact]
    public async Task Intake_TwentyMegabytesScanned_EnginesReadThePieces_DeliveredByteIdenticalBehindTheScanHeaders_BodyGone()
    {
        await using var sink = SmtpSink.Start("127.0.0.3");
        var domain = await TaggingDomainAsync("scan", sink.Host, sink.Port, subjectTag: true);
        var marker = Guid.NewGuid().ToString("N");
        var message = BoundedMemoryTests.Message(20 * 1024 * 1024, marker);
        // A forged result claiming the gateway, which the gateway removes (RFC 8601 §5), in front of the message's own fields.
        var forged = Encoding.ASCII.GetBytes("Authentication-Results: gateway.test; spf=pass smtp.mailfrom=remote.test\r\n");

        Assert.StartsWith("250", await SendAsync(fx.Intake, ["user@" + domain], [.. forged, .. message]), StringComparison.Ordinal);

        // Tagged: the header section is rewritten (the subject tagged, the forged result gone) in the copy's prefix, and the
        // rest comes from the shared body unchanged.
        var delivered = await OneDeliveredAsync(sink, domain);
        var tagged = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(message[..1024]).Replace("Subject: big ", "Subject: [SPAM] big ", StringComparison.Ordinal));
        var front = AssertSentBehindHeaders([.. tagged, .. message[1024..]], delivered.Data);
        Assert.StartsWith("Received: ", front, StringComparison.Ordinal);
        Assert.Contains("\r\nAuthentication-Results: gateway.test;", front, StringComparison.Ordinal);
        Assert.DoesNotContain("spf=pass smtp.mailfrom=remote.test", front, StringComparison.Ordinal);
        Assert.Contains("\r\nX-Spam-Score: ", front, StringComparison.Ordinal);
        Assert.Contains("\r\nX-Spam-Flag: YES\r\n", front, StringComparison.Ordinal);

        // Both engines gave a verdict on the whole message (rspamd's score; clamd's OK, else a malware scan failure is logged).
        var scanned = await fx.WaitForLogAsync(domain, e => e["event"] == "scanned", "the scan logged");
        Assert.Contains("action=tag", scanned["detail"], StringComparison.Ordinal);
        Assert.Contains(" score=", scanned["detail"], StringComparison.Ordinal);
        Assert.DoesNotContain("failed", scanned["detail"], StringComparison.Ordinal);
        var clamdLog = await File.ReadAllTextAsync(fx.Engines.Clamd.LogPath);
        Assert.DoesNotContain("Size limit reached", clamdLog, StringComparison.OrdinalIgnoreCase);

        await Eventually.WaitAsync(async () => (await KeysAsync("gw:{b:*}:body")).Count == 0 && (await KeysAsync("gw:{b:*}:spool")).Count == 0,
            TimeSpan.FromSeconds(15), "the body removed after the delivery");
    }

    [Fact]
    public async Task Intake_EicarAtTheEndOfThreeMegabytesInPieces_RejectedAtData_PiecesRemoved()
    {
        await using var sink = SmtpSink.Start("127.0.0.3");
        var domain = await TaggingDomainAsync("eicar", sink.Host, sink.Port);
        var marker = Guid.NewGuid().ToString("N");
        var clean = BoundedMemoryTests.Message(3 * 1024 * 1024, marker);
        // The last part, after 3 MB: the EICAR test file as an attachment (base64, so its content is exactly the file).
        var end = Encoding.ASCII.GetBytes($"--b-{marker}--\r\nepilogue\r\n");
        var message = clean[..^end.Length]
            .Concat(Encoding.ASCII.GetBytes($"--b-{marker}\r\nContent-Type: application/octet-stream; name=\"eicar.com\"\r\n" +
                "Content-Disposition: attachment; filename=\"eicar.com\"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + Convert.ToBase64String(ClamdInstance.Eicar) + "\r\n"))
            .Concat(end).ToArray();

        var reply = await SendAsync(fx.Intake, ["user@" + domain], message);
        Assert.True(reply.TrimEnd() == "550 5.7.1 Message refused: it contains malware (Eicar-Test-Signature.UNOFFICIAL)", reply + "; log:\n" + await LogTextAsync(domain));
        var scanned = await fx.WaitForLogAsync(domain, e => e["event"] == "scanned", "the refusal logged");
        Assert.Contains("malware=", scanned["detail"], StringComparison.Ordinal);
        Assert.Contains("Eicar", scanned["detail"], StringComparison.OrdinalIgnoreCase);

        await Eventually.WaitAsync(async () => (await KeysAsync("gw:{b:*}")).Count == 0, TimeSpan.FromSeconds(15), "the refused message's pieces removed");
        Assert.Empty(await KeysAsync($"gw:{{d:{domain}}}:msg:*"));
        Assert.Empty(sink.Messages);
    }

    [Fact]
    public async Task Intake_ThreeMegabytesOutboundInPieces_DkimSignedOverThePieces_VerifiedByMailauth()
    {
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("bigdkim"));
        var to = OutboundProtectionFixture.NewExternal("bigrcpt");
        await using var sink = fx.ExternalDomain(to, 22);
        var enabled = await fx.Domains.EnableDkimAsync(new EnableDkimRequest { Name = from, Algorithm = DkimAlgorithm.Rsa });
        fx.PublishTxt(enabled.Dkim.TxtRecord);
        Assert.Contains((await fx.Domains.CheckDomainAsync(new CheckDomainRequest { Name = from })).Findings, f => f.Code == "DKIM_ACTIVE");
        await fx.WaitForSnapshotAsync(from, (await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = from })).Etag);
        var message = BoundedMemoryTests.Message(3 * 1024 * 1024, Guid.NewGuid().ToString("N"));

        Assert.StartsWith("250", await SendAsync(fx.Intake, ["someone@" + to], message, "user@" + from), StringComparison.Ordinal);

        var delivered = Assert.Single(await sink.WaitForMessagesAsync(1, Wait));
        var front = AssertSentBehindHeaders(message, delivered.Data);
        Assert.Contains("DKIM-Signature:", front, StringComparison.Ordinal);
        var verdict = Assert.Single(await MailauthVerifier.VerifyAsync(delivered.Data, fx.Dns));
        Assert.True(verdict.Status == "pass", $"mailauth: {verdict}");
        Assert.Equal(from, verdict.Domain);
        Assert.Equal("relaxed/relaxed", verdict.Canon);

        // The verifier can fail: one byte changed at the end of the body breaks the body hash (mailauth says "neutral": body
        // hash did not verify).
        var tampered = delivered.Data.ToArray();
        var at = tampered.AsSpan().LastIndexOf("epilogue"u8);
        tampered[at] = (byte)'E';
        var broken = Assert.Single(await MailauthVerifier.VerifyAsync(tampered, fx.Dns));
        Assert.True(broken.Status is "neutral" or "fail", $"mailauth on the changed body: {broken}");
    }

    [Fact]
    public async Task Quarantine_BigMessageHeldForOneDomain_SharesTheBody_ReleasedDeliveredByteIdentical_BodyGoneWithTheLastReference()
    {
        await using var sink = SmtpSink.Start("127.0.0.3");
        var held = await TaggingDomainAsync("qbig", sink.Host, sink.Port);
        var live = await TaggingDomainAsync("qlive", sink.Host, sink.Port);
        var rules = new PolicyRuleService.PolicyRuleServiceClient(fx.AsTenant());
        var rule = await rules.CreateRuleAsync(new CreateRuleRequest
        {
            Domain = held, Rule = new PolicyRule { Recipients = { "*@" + held }, Action = RuleAction.Quarantine, Description = "hold big" },
        });
        var snapshot = fx.DelivererServices!.GetRequiredService<ConfigSnapshot>();
        await Eventually.WaitAsync(() => snapshot.Find(held)?.Rules?.Rules.Any(r => r.Rule.Id == rule.Id) == true, TimeSpan.FromSeconds(5), "the rule in the snapshot");
        var marker = Guid.NewGuid().ToString("N");
        var message = BoundedMemoryTests.Message(5 * 1024 * 1024, marker);

        Assert.StartsWith("250", await SendAsync(fx.Intake, ["user@" + held, "user@" + live], message), StringComparison.Ordinal);
        var first = await OneDeliveredAsync(sink, live);
        AssertSentBehindHeaders(message, first.Data);

        // The held copy references the one body (its own reference, q|…); its hash holds only its header prefix.
        var quarantine = new QuarantineService.QuarantineServiceClient(fx.AsTenant());
        var listed = Assert.Single((await quarantine.ListQuarantineAsync(new ListQuarantineRequest { Domain = held })).Messages);
        Assert.Equal("big " + marker, listed.Subject);
        var entry = RedisKeys.QuarantineMessage(held, listed.MessageId);
        var fields = await Db.HashGetAsync(entry, ["body", SharedBodies.Field]);
        Assert.False(fields[1].IsNullOrEmpty, "the quarantined copy names the shared body");
        var bodyId = fields[1].ToString();
        Assert.True(((byte[])fields[0]!).Length < 64 * 1024, "the quarantined copy holds its header prefix, not the message");
        Assert.True(await Db.KeyExistsAsync(RedisKeys.SharedBody(bodyId)), "the body outlives the delivered copy while the quarantine references it");
        Assert.Equal([SharedBodies.QuarantineMember(held, listed.MessageId)], (await Db.SetMembersAsync(RedisKeys.SharedBodyRefs(bodyId))).Select(m => m.ToString()));
        Assert.Single(await KeysAsync("gw:{b:*}:body"));

        await quarantine.ReleaseMessageAsync(new ReleaseMessageRequest { Domain = held, MessageId = listed.MessageId });

        var both = await sink.WaitForMessagesAsync(2, Wait);
        var released = both.Single(m => m.Recipients.Contains("user@" + held));
        var front = AssertSentBehindHeaders(message, released.Data);
        Assert.Contains("\r\nAuthentication-Results: gateway.test;", front, StringComparison.Ordinal);
        await Eventually.WaitAsync(async () => !await Db.KeyExistsAsync(RedisKeys.SharedBody(bodyId)) && !await Db.KeyExistsAsync(RedisKeys.SharedBodyRefs(bodyId)),
            TimeSpan.FromSeconds(15), "the body removed with its last reference (the released copy delivered)");
    }

    [Fact]
    public async Task Quarantine_BigMessageDeleted_BodyRemovedWithItsOnlyReference()
    {
        var (held, messageId, bodyId) = await HoldBigMessageAsync("qdel");
        var quarantine = new QuarantineService.QuarantineServiceClient(fx.AsTenant());
        var ttl = await Db.KeyTimeToLiveAsync(RedisKeys.SharedBody(bodyId));
        Assert.True(ttl > TimeSpan.FromDays(30), $"the body lives as long as the quarantine keeps it: {ttl}");

        await quarantine.DeleteQuarantinedAsync(new DeleteQuarantinedRequest { Domain = held, MessageId = messageId });

        Assert.False(await Db.KeyExistsAsync(RedisKeys.SharedBody(bodyId)), "the body went with its last reference");
        Assert.False(await Db.KeyExistsAsync(RedisKeys.SharedBodyRefs(bodyId)));
    }

    [Fact]
    public async Task Quarantine_BigMessageHeld_DomainDeleted_PurgeReleasesTheReference_BodyGone()
    {
        var (held, _, bodyId) = await HoldBigMessageAsync("qpurge");

        await fx.Domains.DeleteDomainAsync(new DeleteDomainRequest { Name = held, Force = true });

        await Eventually.WaitAsync(async () => !await Db.KeyExistsAsync(RedisKeys.SharedBody(bodyId)) && !await Db.KeyExistsAsync(RedisKeys.SharedBodyRefs(bodyId)),
            TimeSpan.FromSeconds(15), "the body removed when the purge released the quarantine's reference");
    }

    [Fact]
    public async Task ScannerClients_FirstServerDown_SpooledMessageOpenedAgainForTheNext_BothEnginesAnswer()
    {
        // A spool in Redis, as the intake leaves it, and engines listed after a server that refuses connections.
        var id = "failover" + Guid.NewGuid().ToString("N");
        var message = BoundedMemoryTests.Message(2 * 1024 * 1024, id);
        for (var at = 0; at < message.Length; at += 512 * 1024)
        {
            await SharedBodies.AppendSpoolAsync(Db, id, message.AsMemory(at, Math.Min(512 * 1024, message.Length - at)));
        }

        var dead = FreePort.Get(IPAddress.Loopback);
        var options = new ProtectionOptions
        {
            RspamdUrls = [$"http://127.0.0.1:{dead}/", fx.Engines.Rspamd.NormalUrl.ToString()],
            ClamdServers = [$"127.0.0.1:{dead}", fx.Engines.Clamd.Address],
            ServerBackoff = TimeSpan.Zero,
        };
        var opened = 0;
        var spooled = new SpooledMessage(message.Length, async () =>
        {
            Interlocked.Increment(ref opened);
            return (Stream?)await SharedBodyStream.OpenAsync(Db, RedisKeys.SharedBodySpool(id)) ?? throw new RedisException("gone");
        });
        using var rspamd = new RspamdClient(options, TimeProvider.System);
        var clamd = new ClamdClient(options, TimeProvider.System);

        // Each message starts at the next server: of two calls, one tries the dead one first and reads the spool again.
        for (var i = 0; i < 2; i++)
        {
            var verdict = await rspamd.CheckAsync(new RspamdRequest("192.0.2.1", "client.test", null, "someone@remote.test", ["user@example.com"], id), spooled,
                CancellationToken.None);
            Assert.False(verdict.Has("GTUBE"));
            Assert.Null(await clamd.ScanAsync(spooled, CancellationToken.None));
        }

        Assert.Equal(6, opened);
        await SharedBodies.DiscardSpoolAsync(Db, id);
    }
}
