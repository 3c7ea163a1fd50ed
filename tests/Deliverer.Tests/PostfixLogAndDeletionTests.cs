using System.Net;
using Gateway.Api.V1;
using Gateway.Core.Domains;
using Gateway.Core.Storage;
using Gateway.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using Gateway.ControlPlane.Application;

namespace Deliverer.Tests;

/// <summary>
/// requirements §3.15 and §7 (linking a message across programs) through the whole gateway (Redis, ControlPlane, PolicyDaemon, Deliverer, a real Postfix):
/// refused while mail is queued or quarantined; forced deletion leaves no key of the domain anywhere in Redis, and
/// Postfix answers NO-DOMAIN for it within a second, inbound and outbound.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class PostfixLogAndDeletionTests : IAsyncLifetime
{
    private static readonly TimeSpan OneSecond = TimeSpan.FromSeconds(1);
    private WholeGateway _gw = null!;

    public async Task InitializeAsync() => _gw = await WholeGateway.StartAsync();

    public async Task DisposeAsync() => await _gw.DisposeAsync();

    internal static string Message(string from, string to) =>
        $"From: <{from}>\r\nTo: <{to}>\r\nSubject: doomed\r\nMessage-ID: <{Guid.NewGuid():N}@client.test>\r\n\r\nHello.\r\n";

    internal static string NoDomain(string rcpt) => $"554 5.7.1 <{rcpt}>: Recipient address rejected: NO-DOMAIN";

    [Fact]
    public async Task ForcedDelete_WithQueuedAndQuarantinedMail_NoKeyLeft_PostfixNoDomainBothWays()
    {
        var busy = SmtpSink.Start("127.0.0.8");
        await using var _ = busy;
        busy.Behavior = new SinkBehavior { RcptReply = _ => "451 4.3.0 Mailbox busy, try later" };
        var (_, key) = await _gw.ControlPlane.NewTenantAsync("del");
        var domains = new DomainService.DomainServiceClient(_gw.ControlPlane.WithKey(key));
        var name = $"del{Guid.NewGuid().ToString("N")[..8]}.example.com";
        var domain = new Domain
        {
            Name = name, InboundEnabled = true,
            Outbound = new Gateway.Api.V1.OutboundSettings { Enabled = true, CustomIps = { "127.0.0.7" } },
        };
        domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + name, Host = busy.Host, Port = busy.Port, Preference = 10 });
        await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        var verified = await _gw.ControlPlane.Services.GetRequiredService<DomainManager>().ChangeAsync(name,
            d => d with { Verification = d.Verification with { Verified = true, Method = Gateway.Core.Domains.VerificationMethod.Txt, VerifyTime = DateTimeOffset.UtcNow } },
            ConfigOps.Verify);
        await _gw.WaitAppliedAsync(name, verified.Etag);

        // Accepted by Postfix, handed to the Deliverer, deferred by the busy server: queued.
        var inbound = $"ann@{name}";
        var external = $"bob@ext{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        var (rcpt, data) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, "sender@remote.test", [inbound], Message("sender@remote.test", inbound));
        Assert.True(rcpt[0].IsPositive && data!.IsPositive, $"{rcpt[0]} / {data}");
        // Outbound is accepted too (RCPT only: a message to the unresolvable external domain would bounce and queue a DSN).
        var (outRcpt, _) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, $"alice@{name}", [external], localAddress: IPAddress.Parse("127.0.0.7"));
        Assert.True(outRcpt[0].IsPositive, outRcpt[0].ToString());
        var db = _gw.Redis.ConnectAsync();
        using var mux = await db;
        var redis = mux.GetDatabase();
        await Eventually.WaitAsync(async () => await redis.SortedSetLengthAsync(RedisKeys.DomainQueue(name)) > 0, TimeSpan.FromSeconds(30),
            "the inbound message queued (Postfix maillog: " + _gw.Postfix.ReadMaillog() + ")");

        var queued = await Assert.ThrowsAsync<RpcException>(async () => await domains.DeleteDomainAsync(new DeleteDomainRequest { Name = name }));
        Assert.Equal(StatusCode.FailedPrecondition, queued.StatusCode);

        // Quarantine alone refuses too (an entry as the quarantine store writes it: index + hash in the slot).
        foreach (var id in (await redis.SortedSetRangeByRankAsync(RedisKeys.DomainQueue(name))).Select(v => v.ToString()))
        {
            try
            {
                await new QueueService.QueueServiceClient(_gw.ControlPlane.WithKey(key)).DeleteMessageAsync(new DeleteMessageRequest { Domain = name, MessageId = id });
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
            {
                // Finished meanwhile.
            }
        }

        Assert.Equal(0, await redis.SortedSetLengthAsync(RedisKeys.DomainQueue(name)));

        await redis.SortedSetAddAsync(RedisKeys.DomainQuarantine(name), "q1", 1);
        await redis.HashSetAsync($"gw:{RedisKeys.DomainTag(name)}:quarantine:q1", "env", "{}");
        var held = await Assert.ThrowsAsync<RpcException>(async () => await domains.DeleteDomainAsync(new DeleteDomainRequest { Name = name }));
        Assert.Equal(StatusCode.FailedPrecondition, held.StatusCode);

        // Queue another one (deferred again) so the forced delete also discards queued mail and its schedule entry.
        await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, "sender@remote.test", [inbound], Message("sender@remote.test", inbound));
        await Eventually.WaitAsync(async () => await redis.SortedSetLengthAsync(RedisKeys.DomainQueue(name)) > 0, TimeSpan.FromSeconds(30), "queued again");

        var deleted = await domains.DeleteDomainAsync(new DeleteDomainRequest { Name = name, Force = true });
        Assert.Equal(["MX", "CONNECTOR", "SPF", "TXT"], deleted.UndoSteps.Select(s => s.Code));

        var inboundRefused = await Eventually.WaitAsync(async () =>
            (await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, "sender@remote.test", [inbound])).Rcpt[0].ToString() == NoDomain(inbound),
            OneSecond, "inbound NO-DOMAIN after deletion");
        var outboundRefused = await Eventually.WaitAsync(async () =>
            (await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, $"alice@{name}", [external], localAddress: IPAddress.Parse("127.0.0.7"))).Rcpt[0].ToString() == NoDomain(external),
            OneSecond, "outbound NO-DOMAIN after deletion");
        Assert.True(inboundRefused < OneSecond && outboundRefused < OneSecond, $"{inboundRefused} / {outboundRefused}");

        // Nothing of the domain anywhere in Redis: no key naming it, no schedule member.
        var server = mux.GetServer(mux.GetEndPoints()[0]);
        var left = new List<string>();
        await foreach (var k in server.KeysAsync(pattern: "*"))
        {
            if (k.ToString().Contains(name, StringComparison.Ordinal))
            {
                left.Add(k.ToString());
            }

            if (await redis.KeyTypeAsync(k) == RedisType.SortedSet)
            {
                left.AddRange((await redis.SortedSetRangeByRankAsync(k)).Select(m => m.ToString()).Where(m => m.Contains(name, StringComparison.Ordinal)).Select(m => $"{k} member {m}"));
            }
            else if (await redis.KeyTypeAsync(k) == RedisType.Hash)
            {
                left.AddRange((await redis.HashKeysAsync(k)).Select(m => m.ToString()).Where(m => m.Contains(name, StringComparison.Ordinal)).Select(m => $"{k} field {m}"));
            }
        }

        Assert.Empty(left);
        await Assert.ThrowsAsync<RpcException>(async () => await domains.GetDomainAsync(new GetDomainRequest { Name = name }));
    }
}

/// <summary>
/// requirements §7, linking one message across Postfix and the gateway's programs, in both Postfix modes: after-queue by
/// Postfix's queue id (XFORWARD IDENT), before-queue (as deployed) by the gateway's own message id, which the
/// client's DATA reply and Postfix's proxy-accept log line both carry.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class PostfixLinkingTests
{
    private static string Message(string from, string to) => PostfixLogAndDeletionTests.Message(from, to);

    private static string NoDomain(string rcpt) => PostfixLogAndDeletionTests.NoDomain(rcpt);

    [Fact]
    public async Task BeforeQueue_DataReplyAndPostfixLogNameTheGatewaysMessageId_IntakeKnowsTheClient()
    {
        await using var gw = await WholeGateway.StartAsync();
        var sink = SmtpSink.Start("127.0.0.9");
        await using var _ = sink;
        var (_, key) = await gw.ControlPlane.NewTenantAsync("link");
        var domains = new DomainService.DomainServiceClient(gw.ControlPlane.WithKey(key));
        var log = new MessageLogService.MessageLogServiceClient(gw.ControlPlane.WithKey(key));
        var open = $"open{Guid.NewGuid().ToString("N")[..8]}.example.com";
        var domain = new Domain { Name = open, InboundEnabled = true };
        domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + open, Host = sink.Host, Port = sink.Port, Preference = 10 });
        var created = await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        await gw.WaitAppliedAsync(open, created.Etag);

        var (rcpt, data) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "sender@remote.test", [$"a@{open}"], Message("sender@remote.test", $"a@{open}"),
            localAddress: IPAddress.Parse("127.0.0.61"));
        Assert.True(rcpt[0].IsPositive, rcpt[0].ToString());
        Assert.StartsWith("2.0.0 Ok: queued as ", data!.Lines[0], StringComparison.Ordinal);
        var messageId = data.Lines[0].Split(' ')[^1];

        await Eventually.WaitAsync(async () => (await log.QueryLogAsync(new QueryLogRequest { Domain = open, MessageId = messageId, Events = { "delivered" } })).Events.Count == 1,
            TimeSpan.FromSeconds(30), "delivered (Postfix maillog: " + gw.Postfix.ReadMaillog() + ")");
        var story = await log.QueryLogAsync(new QueryLogRequest { Domain = open, MessageId = messageId, Order = LogOrder.OldestFirst });
        Assert.Equal(["intake", "attempt", "delivered"], story.Events.Select(e => e.Event));
        Assert.Equal("127.0.0.61", story.Events[0].ClientAddress); // the internet client, forwarded by smtpd with XFORWARD ADDR
        Assert.Equal(string.Empty, story.Events[0].PostfixQueueId); // Postfix queued nothing, so it has no queue id to forward
        var line = await gw.Postfix.WaitForMaillogAsync("proxy-accept: END-OF-MESSAGE: 250 2.0.0 Ok: queued as " + messageId, TimeSpan.FromSeconds(5));
        Assert.Contains($"to=<a@{open}>", line, StringComparison.Ordinal);
        Assert.DoesNotContain(Directory.EnumerateFiles(gw.Postfix.QueueDirectory, "*", SearchOption.AllDirectories),
            f => f.Contains("/incoming/", StringComparison.Ordinal) || f.Contains("/active/", StringComparison.Ordinal) || f.Contains("/deferred/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AfterQueue_PostfixQueueId_LinksPolicyDecisionAndIntakeToTheGatewaysMessageId()
    {
        await using var gw = await WholeGateway.StartAsync(new Dictionary<string, string> { ["smtpd_proxy_filter"] = string.Empty });
        var _gw = gw;
        var sink = SmtpSink.Start("127.0.0.9");
        await using var _ = sink;
        var (_, key) = await _gw.ControlPlane.NewTenantAsync("link");
        var domains = new DomainService.DomainServiceClient(_gw.ControlPlane.WithKey(key));
        var log = new MessageLogService.MessageLogServiceClient(_gw.ControlPlane.WithKey(key));
        var open = $"open{Guid.NewGuid().ToString("N")[..8]}.example.com";
        var closed = $"closed{Guid.NewGuid().ToString("N")[..8]}.example.com";
        var domain = new Domain { Name = open, InboundEnabled = true };
        domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + open, Host = sink.Host, Port = sink.Port, Preference = 10 });
        var created = await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        var off = await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = closed } });
        await _gw.WaitAppliedAsync(open, created.Etag);
        await _gw.WaitAppliedAsync(closed, off.Etag);

        // Postfix opens its queue file at the first accepted recipient (smtpd_delay_open_until_valid_rcpt), so the
        // second RCPT's policy request names the queue id the message keeps; Postfix hands it to the intake (XFORWARD).
        var (rcpt, data) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, "sender@remote.test", [$"a@{open}", $"b@{closed}"],
            Message("sender@remote.test", $"a@{open}"));
        Assert.True(rcpt[0].IsPositive, rcpt[0].ToString());
        Assert.Equal(NoDomain($"b@{closed}"), rcpt[1].ToString());
        var queueId = data!.Lines[0].Split(' ')[^1];
        Assert.Matches("^[0-9A-Za-z]+$", queueId);

        await Eventually.WaitAsync(async () => (await log.QueryLogAsync(new QueryLogRequest { Domain = open, Events = { "delivered" } })).Events.Count == 1,
            TimeSpan.FromSeconds(30), "delivered (Postfix maillog: " + _gw.Postfix.ReadMaillog() + ")");
        var intake = Assert.Single((await log.QueryLogAsync(new QueryLogRequest { Domain = open, PostfixQueueId = queueId })).Events);
        Assert.Equal("intake", intake.Event);
        Assert.Equal("127.0.0.1", intake.ClientAddress); // the client Postfix saw, forwarded with XFORWARD ADDR
        var story = await log.QueryLogAsync(new QueryLogRequest { Domain = open, MessageId = intake.MessageId, Order = LogOrder.OldestFirst });
        Assert.Equal(["intake", "attempt", "delivered"], story.Events.Select(e => e.Event));

        var reject = Assert.Single((await log.QueryLogAsync(new QueryLogRequest { Domain = closed, PostfixQueueId = queueId })).Events);
        Assert.Equal("policy_reject", reject.Event);
        Assert.Equal($"b@{closed}", reject.Recipient);
        Assert.Equal("policydaemon", reject.Program);
    }
}