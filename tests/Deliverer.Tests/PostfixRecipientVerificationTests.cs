using System.Net;
using Gateway.Api.V1;
using Gateway.Core.Storage;
using Gateway.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using StackExchange.Redis;

namespace Deliverer.Tests;

/// <summary>A whole gateway whose probes answer RCPT within 2 s and give up on a silent server after 3 s.</summary>
public sealed class VerificationGatewayFixture : IAsyncLifetime
{
    public WholeGateway Gateway { get; private set; } = null!;

    public DomainService.DomainServiceClient Domains { get; private set; } = null!;

    public string CompanyId { get; private set; } = string.Empty;

    public async Task InitializeAsync()
    {
        Gateway = await WholeGateway.StartAsync(
            "--Gateway:RecipientVerification:ProbeWait=00:00:02",
            "--Gateway:RecipientVerification:CommandTimeout=00:00:03",
            "--Gateway:RecipientVerification:ProbeDeadline=00:00:08");
        (CompanyId, var key) = await Gateway.ControlPlane.NewTenantAsync("verify");
        Domains = new DomainService.DomainServiceClient(Gateway.ControlPlane.WithKey(key));
    }

    public async Task DisposeAsync() => await Gateway.DisposeAsync();

    /// <summary>A domain with a catch-all row to <paramref name="sink"/>, recipient verification on or left at its default.</summary>
    public async Task<string> DomainAsync(SmtpSink sink, bool? verify)
    {
        var name = $"rv{Guid.NewGuid().ToString("N")[..10]}.example.com";
        var domain = new Domain { Name = name, InboundEnabled = true };
        domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = $"*@{name}", Host = sink.Host, Port = sink.Port, Preference = 10 });
        if (verify is { } on)
        {
            domain.RecipientVerification = new RecipientVerification { Enabled = on };
        }

        var created = await Domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        await Gateway.WaitAppliedAsync(name, created.Etag);
        return name;
    }
}

/// <summary>
/// Recipient verification through a real Postfix from deploy/postfix (docs/operations.md "Recipient verification"): the
/// policy service asks the customer's server at RCPT, the intake behind Postfix gives the same answer from the cache.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class PostfixRecipientVerificationTests(VerificationGatewayFixture fx) : IClassFixture<VerificationGatewayFixture>
{
    private static readonly IPAddress Internet = IPAddress.Parse("127.0.0.2");

    private static SmtpSink AnnOnly(string address)
    {
        var sink = SmtpSink.Start(address);
        sink.Behavior = SinkBehavior.Accept with
        {
            RcptReply = r => r.StartsWith("ann@", StringComparison.Ordinal) ? "250 2.1.5 Ok" : $"550 5.1.1 <{r}>: Recipient address rejected: User unknown in local recipient table",
        };
        return sink;
    }

    /// <summary>The sink's connections that were probes (the null sender, as the gateway's callout sends).</summary>
    private static List<int> Probes(SmtpSink sink) =>
        sink.Commands.Where(c => c.Line == "MAIL FROM:<>").Select(c => c.Connection).Distinct().ToList();

    private Task<(IReadOnlyList<SmtpReply> Rcpt, SmtpReply? Data)> SendAsync(string recipient) =>
        PostfixSmtpClient.SendAsync(fx.Gateway.Postfix.SmtpEndPoint, "someone@remote.test", [recipient], $"Subject: to {recipient}\r\n\r\nhello\r\n", Internet);

    [Fact]
    public async Task Rcpt_KnownDeliveredUnknown550_SecondAskFromCache_ProbeNeverSendsData()
    {
        await using var sink = AnnOnly("127.0.0.7");
        var d = await fx.DomainAsync(sink, verify: true);

        var (annRcpt, annData) = await SendAsync($"ann@{d}");
        Assert.Equal(250, annRcpt[0].Code);
        Assert.Equal(250, annData!.Code);
        var delivered = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal([$"ann@{d}"], delivered.Recipients);

        var (bobRcpt, bobData) = await SendAsync($"bob@{d}");
        Assert.Equal($"550 5.1.1 <bob@{d}>: Recipient address rejected: undeliverable address: 550 5.1.1 <bob@{d}>: Recipient address rejected: User unknown in local recipient table",
            bobRcpt[0].ToString());
        Assert.Null(bobData);

        // Asked again: the cache answers (shared by the policy service and the intake); one probe per recipient in all.
        Assert.Equal(550, (await SendAsync($"bob@{d}")).Rcpt[0].Code);
        Assert.Equal(250, (await SendAsync($"ann@{d}")).Data!.Code);
        await sink.WaitForMessagesAsync(2, TimeSpan.FromSeconds(30));
        var probes = Probes(sink);
        Assert.Equal(2, probes.Count);
        var probeCommands = sink.Commands.Where(c => probes.Contains(c.Connection)).ToList();
        Assert.Equal(1, probeCommands.Count(c => c.Line == $"RCPT TO:<ann@{d}>"));
        Assert.Equal(1, probeCommands.Count(c => c.Line == $"RCPT TO:<bob@{d}>"));
        Assert.Equal(2, probeCommands.Count(c => c.Verb == "RSET"));
        Assert.DoesNotContain(probeCommands, c => c.Verb is "DATA" or "BDAT");
        Assert.Equal(2, sink.Messages.Count);
        Assert.All(sink.Messages, m => Assert.Equal([$"ann@{d}"], m.Recipients));

        // Nothing of bob's was queued; the domain's log tells what the probes found.
        await using var redis = await fx.Gateway.Redis.ConnectAsync();
        var db = redis.GetDatabase();
        Assert.Equal(0, await db.SortedSetLengthAsync(RedisKeys.DomainQueue(d)));
        await Eventually.WaitAsync(async () =>
        {
            var entries = await db.StreamRangeAsync(RedisKeys.DomainLog(d));
            var events = entries.Select(e => (Event: (string?)e["event"], Recipient: (string?)e["recipient"])).ToList();
            return events.Contains(("verified", $"ann@{d}")) && events.Contains(("verify_failed", $"bob@{d}")) && events.Contains(("policy_reject", $"bob@{d}"));
        }, TimeSpan.FromSeconds(10), "verified, verify_failed and policy_reject in the domain's log");
    }

    [Fact]
    public async Task Intake_StraightWithoutThePolicyService_ProbesItself_SameWords_OnlyVerifiedRecipientStored()
    {
        await using var sink = AnnOnly("127.0.0.12");
        var d = await fx.DomainAsync(sink, verify: true);
        await using var c = await PostfixSmtpClient.ConnectAsync(fx.Gateway.Intake);
        Assert.Equal(250, (await c.EhloAsync("local.test")).Code);
        Assert.Equal(250, (await c.MailFromAsync("someone@remote.test")).Code);
        Assert.Equal($"550 5.1.1 <bob@{d}>: Recipient address rejected: undeliverable address: 550 5.1.1 <bob@{d}>: Recipient address rejected: User unknown in local recipient table",
            (await c.RcptToAsync($"bob@{d}")).ToString());
        Assert.Equal(250, (await c.RcptToAsync($"ann@{d}")).Code);
        Assert.Equal(250, (await c.DataAsync("Subject: straight\r\n\r\nhello\r\n")).Code);
        await c.QuitAsync();

        var delivered = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal([$"ann@{d}"], delivered.Recipients);
        Assert.Equal(2, Probes(sink).Count);
    }

    [Fact]
    public async Task Rcpt_ServerNeverGreets_450AtRcpt_ProbedOnce_NothingAccepted()
    {
        await using var sink = SmtpSink.Start("127.0.0.8");
        sink.Behavior = SinkBehavior.Accept with { StallAt = SinkStage.Greeting };
        var d = await fx.DomainAsync(sink, verify: true);

        for (var i = 0; i < 3; i++)
        {
            var (rcpt, data) = await SendAsync($"ann@{d}");
            Assert.Equal(450, rcpt[0].Code);
            Assert.StartsWith($"4.1.1 <ann@{d}>: Recipient address rejected: unverified address: ", rcpt[0].Lines[0], StringComparison.Ordinal);
            Assert.Null(data);
        }

        // The first RCPT started one probe; the others shared it or found its "unknown" in the cache.
        Assert.Equal(1, sink.Connections);
        Assert.DoesNotContain(sink.Commands, c => c.Verb is "MAIL" or "RCPT" or "DATA");
    }

    [Fact]
    public async Task Rcpt_VerificationOffByDefault_NoProbe_UnknownToTheServerStillAccepted()
    {
        await using var sink = AnnOnly("127.0.0.9");
        sink.Behavior = SinkBehavior.Accept; // accepts everyone at delivery
        var d = await fx.DomainAsync(sink, verify: null);
        var saved = await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = d });
        Assert.False(saved.RecipientVerification.Enabled);

        var (rcpt, data) = await SendAsync($"bob@{d}");
        Assert.Equal(250, rcpt[0].Code);
        Assert.Equal(250, data!.Code);
        await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30));
        Assert.Empty(Probes(sink));
        Assert.Equal(1, sink.Connections);
    }

    [Fact]
    public async Task UpdateDomain_VerificationByMaskPath_SavedAndApplied_BadLifetimesAreFieldViolations()
    {
        await using var sink = AnnOnly("127.0.0.10");
        var d = await fx.DomainAsync(sink, verify: null);
        Assert.Equal(250, (await SendAsync($"bob@{d}")).Rcpt[0].Code);

        var updated = await fx.Domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = d, RecipientVerification = new RecipientVerification { Enabled = true, NegativeTtlSeconds = 1800 } },
            UpdateMask = new FieldMask { Paths = { "recipient_verification.enabled", "recipient_verification.negative_ttl_seconds" } },
        });
        Assert.True(updated.RecipientVerification.Enabled);
        Assert.Equal(1800u, updated.RecipientVerification.NegativeTtlSeconds);
        Assert.Equal(0u, updated.RecipientVerification.PositiveTtlSeconds);
        Assert.True(updated.InboundEnabled); // untouched by the mask
        await fx.Gateway.WaitAppliedAsync(d, updated.Etag);
        Assert.Equal(550, (await SendAsync($"bob@{d}")).Rcpt[0].Code);

        var bad = await Assert.ThrowsAsync<RpcException>(() => fx.Domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = d, RecipientVerification = new RecipientVerification { Enabled = true, PositiveTtlSeconds = 10, NegativeTtlSeconds = 400_000 } },
            UpdateMask = new FieldMask { Paths = { "recipient_verification" } },
        }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        var fields = ViolationFields(bad);
        Assert.Contains("domain.recipient_verification.positive_ttl_seconds", fields);
        Assert.Contains("domain.recipient_verification.negative_ttl_seconds", fields);
    }

    private static List<string> ViolationFields(RpcException e)
    {
        var status = e.GetRpcStatus();
        var request = status!.GetDetail<Google.Rpc.BadRequest>();
        return request!.FieldViolations.Select(v => v.Field).ToList();
    }

    [Fact]
    public async Task Gatewayctl_VerifyRecipientsFlags_SavedAndShown()
    {
        await using var sink = AnnOnly("127.0.0.11");
        var d = await fx.DomainAsync(sink, verify: null);
        var env = new Dictionary<string, string>
        {
            ["GATEWAY_ENDPOINT"] = fx.Gateway.ControlPlane.Address,
            ["GATEWAY_KEY"] = ControlPlaneHost.OperatorKey,
            ["GATEWAY_COMPANY"] = fx.CompanyId,
        };
        var shown = await GatewayCtl.RunAsync(env, ["domains", "get", d]);
        Assert.True(shown.ExitCode == 0, shown.ToString());
        Assert.Contains("recipient verification", shown.Out, StringComparison.Ordinal);
        Assert.Contains("off", shown.Out, StringComparison.Ordinal);

        var update = await GatewayCtl.RunAsync(env, ["domains", "update", d, "--verify-recipients", "true", "--verify-negative-ttl", "30m"]);
        Assert.True(update.ExitCode == 0, update.ToString());
        Assert.Contains("accepted kept 7 d, refused kept 30 min", update.Out, StringComparison.Ordinal);
        var saved = await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = d });
        Assert.True(saved.RecipientVerification.Enabled);
        Assert.Equal(1800u, saved.RecipientVerification.NegativeTtlSeconds);

        var badTtl = await GatewayCtl.RunAsync(env, ["domains", "update", d, "--verify-positive-ttl", "soon"]);
        Assert.NotEqual(0, badTtl.ExitCode);
    }
}
