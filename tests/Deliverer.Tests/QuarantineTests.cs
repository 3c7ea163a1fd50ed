using Gateway.Api.V1;
using Gateway.Core.Storage;
using Gateway.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Deliverer.Tests;

/// <summary>
/// The quarantine end to end over real SMTP, gRPC and Redis: held at intake → ListQuarantine (filters, paging)
/// → ReleaseMessage → delivered to the sink through the current route; DeleteQuarantined; tenant isolation.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class QuarantineTests(RulesFixture fx) : IClassFixture<RulesFixture>
{
    private static string Message(string subject) =>
        $"From: a@remote.test\r\nSubject: {subject}\r\nMessage-ID: <{Guid.NewGuid():N}@client.test>\r\n\r\nBody of {subject}.\r\n";

    private static string IdOf(string reply) => reply.Split(' ')[^1];

    private static async Task<RpcException> FailsAsync(StatusCode code, Func<Task> call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(code, e.StatusCode);
        return e;
    }

    [Fact]
    public async Task Quarantine_ListFilterPage_Release_Delivered_Delete()
    {
        await using var sink = SmtpSink.Start("127.0.0.2");
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("qu"), ("*@{d}", sink.Host, sink.Port, 10));
        await fx.AddRuleAsync(d, new PolicyRule { Recipients = { "*@" + d }, Action = RuleAction.Quarantine, Description = "hold all" });

        var ids = new List<string>();
        foreach (var (from, to) in new[] { ("a@one.test", "u"), ("b@two.test", "v"), ("c@one.test", "v"), ("d@three.test", "u") })
        {
            var reply = await RawSmtp.SendAsync(fx.Intake, from, [$"{to}@{d}"], Message($"from {from}"));
            Assert.StartsWith("250 ", reply, StringComparison.Ordinal);
            ids.Add(IdOf(reply));
        }

        Assert.Empty(sink.Messages);
        var q = fx.Quarantine;

        // Newest first, paged.
        var page1 = await q.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, PageSize = 3 });
        Assert.Equal(3, page1.Messages.Count);
        Assert.NotEmpty(page1.NextPageToken);
        var page2 = await q.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, PageSize = 3, PageToken = page1.NextPageToken });
        Assert.Single(page2.Messages);
        Assert.Empty(page2.NextPageToken);
        Assert.Equal(ids.AsEnumerable().Reverse(), page1.Messages.Concat(page2.Messages).Select(m => m.MessageId));
        var first = page2.Messages[0];
        Assert.Equal("a@one.test", first.Sender);
        Assert.Equal(["u@" + d], first.Recipients);
        Assert.Equal("hold all", first.RuleDescription);
        Assert.Equal("from a@one.test", first.Subject);
        Assert.Equal(first.QuarantineTime.ToDateTimeOffset().AddDays(30), first.ExpireTime.ToDateTimeOffset());

        // Filters: sender pattern, recipient, time range.
        var fromOne = await q.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, Sender = "*@ONE.test" });
        Assert.Equal([ids[2], ids[0]], fromOne.Messages.Select(m => m.MessageId));
        var toV = await q.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, Recipient = "v@" + d });
        Assert.Equal([ids[2], ids[1]], toV.Messages.Select(m => m.MessageId));
        var both = await q.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, Sender = "one.test", Recipient = "v@" + d });
        Assert.Equal([ids[2]], both.Messages.Select(m => m.MessageId));
        var filtered1 = await q.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, Sender = "one.test", PageSize = 1 });
        Assert.Equal([ids[2]], filtered1.Messages.Select(m => m.MessageId));
        var filtered2 = await q.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, Sender = "one.test", PageSize = 1, PageToken = filtered1.NextPageToken });
        Assert.Equal([ids[0]], filtered2.Messages.Select(m => m.MessageId));
        Assert.Empty(filtered2.NextPageToken);
        var future = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddMinutes(5));
        Assert.Empty((await q.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, StartTime = future })).Messages);
        Assert.Equal(4, (await q.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, EndTime = future })).Messages.Count);
        Assert.Empty((await q.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, EndTime = Timestamp.FromDateTimeOffset(first.QuarantineTime.ToDateTimeOffset().AddMinutes(-1)) })).Messages);

        // Release: delivered through the route now, logged; gone from the quarantine.
        var released = await q.ReleaseMessageAsync(new ReleaseMessageRequest { Domain = d, MessageId = ids[1] });
        Assert.Equal(ids[1], released.QueueMessageId);
        var delivered = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10)));
        Assert.Contains("from b@two.test", delivered.Text, StringComparison.Ordinal);
        Assert.Equal(["v@" + d], delivered.Recipients);
        await fx.WaitForLogAsync(d, e => e["event"] == "released" && e["message_id"] == ids[1], "released event");
        await fx.WaitForLogAsync(d, e => e["event"] == "delivered" && e["message_id"] == ids[1], "delivered event");
        await FailsAsync(StatusCode.NotFound, async () => await q.GetQuarantinedAsync(new GetQuarantinedRequest { Domain = d, MessageId = ids[1] }));
        await FailsAsync(StatusCode.NotFound, async () => await q.ReleaseMessageAsync(new ReleaseMessageRequest { Domain = d, MessageId = ids[1] }));

        // Delete: gone, logged, never delivered.
        var deleted = await q.DeleteQuarantinedAsync(new DeleteQuarantinedRequest { Domain = d, MessageId = ids[0] });
        Assert.Equal(ids[0], deleted.Message.MessageId);
        await fx.WaitForLogAsync(d, e => e["event"] == "deleted" && e["message_id"] == ids[0], "deleted event");
        Assert.Equal(2, await fx.RedisClient.GetDatabase().SortedSetLengthAsync(RedisKeys.DomainQuarantine(d)));
        Assert.False(await fx.RedisClient.GetDatabase().KeyExistsAsync(RedisKeys.QuarantineMessage(d, ids[0])));
        Assert.Equal(ids[2], (await q.GetQuarantinedAsync(new GetQuarantinedRequest { Domain = d, MessageId = ids[2] })).MessageId);
        Assert.Single(sink.Messages);
    }

    [Fact]
    public async Task Quarantine_InvalidInput_And_OtherTenant_NotFound()
    {
        await using var sink = SmtpSink.Start("127.0.0.2");
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("qv"), ("*@{d}", sink.Host, sink.Port, 10));
        await fx.AddRuleAsync(d, new PolicyRule { Recipients = { "*@" + d }, Action = RuleAction.Quarantine });
        var id = IdOf(await RawSmtp.SendAsync(fx.Intake, "a@one.test", ["u@" + d], Message("x")));
        var q = fx.Quarantine;

        Assert.StartsWith("sender:", (await FailsAsync(StatusCode.InvalidArgument, async () => await q.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, Sender = "a b@x" }))).Status.Detail, StringComparison.Ordinal);
        Assert.StartsWith("page_token:", (await FailsAsync(StatusCode.InvalidArgument, async () => await q.ListQuarantineAsync(new ListQuarantineRequest { Domain = d, PageToken = "nope" }))).Status.Detail, StringComparison.Ordinal);
        Assert.StartsWith("end_time:", (await FailsAsync(StatusCode.InvalidArgument, async () => await q.ListQuarantineAsync(new ListQuarantineRequest
        {
            Domain = d, StartTime = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow), EndTime = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddDays(-1)),
        }))).Status.Detail, StringComparison.Ordinal);
        Assert.StartsWith("message_id:", (await FailsAsync(StatusCode.InvalidArgument, async () => await q.ReleaseMessageAsync(new ReleaseMessageRequest { Domain = d, MessageId = "../x" }))).Status.Detail, StringComparison.Ordinal);

        var op = new TenantService.TenantServiceClient(fx.WithKey(GatewayFixture.OperatorKey));
        var other = "o-" + Guid.NewGuid().ToString("N")[..10];
        await op.CreateTenantAsync(new CreateTenantRequest { CompanyId = other });
        var key = await op.CreateApiKeyAsync(new CreateApiKeyRequest { CompanyId = other });
        var foreign = new QuarantineService.QuarantineServiceClient(fx.WithKey(key.Key));
        await FailsAsync(StatusCode.NotFound, async () => await foreign.ListQuarantineAsync(new ListQuarantineRequest { Domain = d }));
        await FailsAsync(StatusCode.NotFound, async () => await foreign.ReleaseMessageAsync(new ReleaseMessageRequest { Domain = d, MessageId = id }));
        await FailsAsync(StatusCode.NotFound, async () => await foreign.DeleteQuarantinedAsync(new DeleteQuarantinedRequest { Domain = d, MessageId = id }));
        Assert.Equal(id, (await q.GetQuarantinedAsync(new GetQuarantinedRequest { Domain = d, MessageId = id })).MessageId);
    }

    [Fact]
    public async Task Quarantine_OutboundRule_HeldForSenderDomain_ReleaseGoesToRecipientMx_InboundMailUntouched()
    {
        await using var home = SmtpSink.Start("127.0.0.3");
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("qo"), ("*@{d}", home.Host, home.Port, 10));
        var external = $"ext{Guid.NewGuid().ToString("N")[..8]}.example.net";
        await using var mx = SmtpSink.Start("127.0.0.16", fx.OutboundPort);
        fx.Dns.AddA(external, mx.Host);
        await fx.AddRuleAsync(from, new PolicyRule { Recipients = { "*@" + external }, Direction = RuleDirection.Outbound, Action = RuleAction.Quarantine });
        await fx.AddRuleAsync(from, new PolicyRule { Senders = { "*@" + external }, Direction = RuleDirection.Outbound, Action = RuleAction.Reject });

        // Outbound: held under the sender's domain.
        var id = IdOf(await RawSmtp.SendAsync(fx.Intake, "user@" + from, ["someone@" + external], Message("outbound held")));
        var held = await fx.Quarantine.GetQuarantinedAsync(new GetQuarantinedRequest { Domain = from, MessageId = id });
        Assert.Equal("outbound", held.Direction);
        Assert.Equal(["someone@" + external], held.Recipients);

        // Inbound mail of the same domain from that external domain: the OUTBOUND-only rules do not apply.
        Assert.StartsWith("250 ", await RawSmtp.SendAsync(fx.Intake, "x@" + external, ["user@" + from], Message("inbound passes")), StringComparison.Ordinal);
        Assert.Contains("inbound passes", Assert.Single(await home.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10))).Text, StringComparison.Ordinal);

        await fx.Quarantine.ReleaseMessageAsync(new ReleaseMessageRequest { Domain = from, MessageId = id });
        var delivered = Assert.Single(await mx.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10)));
        Assert.Equal("user@" + from, delivered.MailFrom);
        Assert.Contains("outbound held", delivered.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Quarantine_OutboundReleasedWhileOutboundOff_HeldInQueue_NotSent()
    {
        // requirements §3.10 (issue 15): outbound off means off, also for quarantined outbound mail released afterwards.
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("qoff"));
        var external = $"ext{Guid.NewGuid().ToString("N")[..8]}.example.net";
        await using var mx = SmtpSink.Start("127.0.0.63", fx.OutboundPort);
        fx.Dns.AddA(external, mx.Host);
        await fx.AddRuleAsync(from, new PolicyRule { Recipients = { "*@" + external }, Direction = RuleDirection.Outbound, Action = RuleAction.Quarantine });
        var id = IdOf(await RawSmtp.SendAsync(fx.Intake, "user@" + from, ["someone@" + external], Message("held, then outbound off")));

        var off = await fx.Domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = from, Outbound = new OutboundSettings { Enabled = false } },
            UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "outbound.enabled" } },
        });
        await fx.WaitForSnapshotAsync(from, off.Etag);
        await fx.Quarantine.ReleaseMessageAsync(new ReleaseMessageRequest { Domain = from, MessageId = id });
        await fx.WaitForLogAsync(from, e => e["event"] == "deferred" && e.Values.Any(v => v.Contains("Outbound is disabled for", StringComparison.Ordinal)),
            "the released message held", TimeSpan.FromSeconds(20));
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Equal(0, mx.Connections);
        Assert.Single((await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = from })).Messages);
    }
}
