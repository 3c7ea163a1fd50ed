using Gateway.Api.V1;
using Gateway.Core.Delivery;
using Gateway.Core.Storage;
using Grpc.Core;
using StackExchange.Redis;
using CoreQueuedMessage = Gateway.Core.Delivery.QueuedMessage;
using Gateway.Core.Mail;

namespace ControlPlane.Tests;

/// <summary>gateway.v1.QueueService over real gRPC and Redis: list, retry now, bounce, delete; tenant-scoped.</summary>
[Trait("Kind", "Integration")]
public sealed class QueueServiceTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    private MessageQueue Store => new(fx.RedisClient, new QueueOptions { HostName = "gw.test" }, TimeProvider.System);

    private async Task<(string Domain, QueueService.QueueServiceClient Queue, DomainService.DomainServiceClient Domains)> DomainAsync()
    {
        var (_, key, domains) = await fx.NewTenantAsync("q");
        var name = ControlPlaneFixture.NewDomainName("q");
        var domain = new Domain { Name = name, InboundEnabled = true };
        domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + name, Host = "192.0.2.1" });
        await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        return (name, new QueueService.QueueServiceClient(fx.WithKey(key)), domains);
    }

    private Task<string> EnqueueAsync(string domain, string sender = "s@remote.test", params string[] recipients) =>
        Store.EnqueueAsync(new QueueEnvelope(domain, Direction.Inbound, sender, recipients.Length > 0 ? recipients : ["u@" + domain]), "Subject: q\r\n\r\nx\r\n"u8.ToArray());

    private async Task<CoreQueuedMessage> DeferAsync(string domain, string id, TimeSpan inFuture)
    {
        var m = (await Store.GetAsync(domain, id))!;
        var deferred = m with
        {
            Attempts = 2,
            LastError = "192.0.2.1:25: connect failed: connection refused",
            NextAttempt = DateTimeOffset.UtcNow + inFuture,
            Recipients = m.Recipients.Select(r => r with { LastReply = "connect failed: connection refused", LastHost = "192.0.2.1:25" }).ToList(),
        };
        Assert.True(await Store.SaveStateAsync(deferred, finished: false));
        return deferred;
    }

    [Fact]
    public async Task ListQueue_MessagesByNextAttempt_WithStateAndPaging()
    {
        var (d, queue, _) = await DomainAsync();
        var a = await EnqueueAsync(d);
        var b = await EnqueueAsync(d, "", "x@" + d, "y@" + d);
        var c = await EnqueueAsync(d);
        await DeferAsync(d, a, TimeSpan.FromMinutes(5));

        var page1 = await queue.ListQueueAsync(new ListQueueRequest { Domain = d, PageSize = 2 });
        // Equal next attempts are ordered by id, and ids begin with their creation time: b, c, or both in one millisecond.
        Assert.Equal(new[] { b, c }.Order(StringComparer.Ordinal), page1.Messages.Select(m => m.MessageId));
        Assert.NotEmpty(page1.NextPageToken);
        var page2 = await queue.ListQueueAsync(new ListQueueRequest { Domain = d, PageSize = 2, PageToken = page1.NextPageToken });
        var deferred = Assert.Single(page2.Messages);
        Assert.Empty(page2.NextPageToken);

        Assert.Equal(a, deferred.MessageId);
        Assert.Equal(2, deferred.Attempts);
        Assert.Equal("192.0.2.1:25: connect failed: connection refused", deferred.LastError);
        Assert.InRange(deferred.NextAttemptTime.ToDateTimeOffset(), DateTimeOffset.UtcNow.AddMinutes(4), DateTimeOffset.UtcNow.AddMinutes(6));
        Assert.Equal(deferred.CreateTime.ToDateTimeOffset().AddDays(10), deferred.ExpireTime.ToDateTimeOffset());
        var r = Assert.Single(deferred.Recipients);
        Assert.Equal(Gateway.Api.V1.RecipientState.Pending, r.State);
        Assert.Equal("192.0.2.1:25", r.LastHost);
        Assert.Equal("inbound", deferred.Direction);
        Assert.Equal(17, deferred.SizeBytes);

        var nullSender = Assert.Single(page1.Messages, m => m.MessageId == b);
        Assert.Equal(string.Empty, nullSender.Sender);
        Assert.Equal(["x@" + d, "y@" + d], nullSender.Recipients.Select(x => x.Address));
    }

    [Fact]
    public async Task RetryNow_DeferredMessage_DueNowInScheduleAndMessage()
    {
        var (d, queue, _) = await DomainAsync();
        var id = await EnqueueAsync(d);
        await DeferAsync(d, id, TimeSpan.FromHours(1));
        var shard = Store.ShardOf(id);
        // A schedule entry in the future, as the Deliverer leaves it after a deferral.
        await fx.RedisClient.GetDatabase().SortedSetAddAsync(RedisKeys.ScheduleDue(shard), d + "|" + id, DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeMilliseconds());

        var before = DateTimeOffset.UtcNow;
        var response = await queue.RetryNowAsync(new RetryNowRequest { Domain = d, MessageId = id });
        Assert.False(response.InFlight);
        Assert.InRange(response.Message.NextAttemptTime.ToDateTimeOffset(), before.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        var due = await fx.RedisClient.GetDatabase().SortedSetScoreAsync(RedisKeys.ScheduleDue(shard), d + "|" + id);
        Assert.NotNull(due);
        Assert.True(due <= DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    }

    [Fact]
    public async Task RetryNow_WhileLeasedByADeliverer_InFlight()
    {
        var (d, queue, _) = await DomainAsync();
        var other = new MessageQueue(fx.RedisClient, new QueueOptions(), TimeProvider.System);
        var item = await other.EnqueueLeasedAsync(new QueueEnvelope(d, Direction.Inbound, "s@remote.test", ["u@" + d]), "x"u8.ToArray());
        var response = await queue.RetryNowAsync(new RetryNowRequest { Domain = d, MessageId = item.Id });
        Assert.True(response.InFlight);
    }

    [Fact]
    public async Task BounceMessage_RemovesItAndQueuesRfc3464DsnToTheSender()
    {
        var (d, queue, _) = await DomainAsync();
        var id = await EnqueueAsync(d, "alice@remote.test", "u@" + d, "v@" + d);
        var response = await queue.BounceMessageAsync(new BounceMessageRequest { Domain = d, MessageId = id, Reason = "Mailbox migration" });
        Assert.Equal(id, response.Message.MessageId);
        Assert.NotEmpty(response.DsnMessageId);

        var list = await queue.ListQueueAsync(new ListQueueRequest { Domain = d });
        var dsn = Assert.Single(list.Messages);
        Assert.Equal(response.DsnMessageId, dsn.MessageId);
        Assert.True(dsn.IsDsn);
        Assert.Equal(string.Empty, dsn.Sender);
        Assert.Equal("outbound", dsn.Direction);
        Assert.Equal(["alice@remote.test"], dsn.Recipients.Select(r => r.Address));
        var (_, body) = (await Store.LoadAsync(d, dsn.MessageId))!.Value;
        var text = System.Text.Encoding.UTF8.GetString(body);
        Assert.Contains("report-type=delivery-status", text, StringComparison.Ordinal);
        Assert.Contains("Final-Recipient: rfc822; u@" + d, text, StringComparison.Ordinal);
        Assert.Contains("Final-Recipient: rfc822; v@" + d, text, StringComparison.Ordinal);
        Assert.Contains("Mailbox migration", text, StringComparison.Ordinal);

        var log = await fx.RedisClient.GetDatabase().StreamRangeAsync(RedisKeys.DomainLog(d));
        Assert.Equal(2, log.Count(e => e["event"] == "bounced" && e["message_id"] == id));
    }

    [Fact]
    public async Task BounceMessage_NullSender_NoDsn()
    {
        var (d, queue, _) = await DomainAsync();
        var id = await EnqueueAsync(d, "");
        var response = await queue.BounceMessageAsync(new BounceMessageRequest { Domain = d, MessageId = id });
        Assert.Empty(response.DsnMessageId);
        Assert.Empty((await queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages);
    }

    [Fact]
    public async Task DeleteMessage_GoneWithoutDsn_Logged()
    {
        var (d, queue, _) = await DomainAsync();
        var id = await EnqueueAsync(d);
        var response = await queue.DeleteMessageAsync(new DeleteMessageRequest { Domain = d, MessageId = id });
        Assert.Equal(id, response.Message.MessageId);
        Assert.Empty((await queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages);
        Assert.False(await fx.RedisClient.GetDatabase().KeyExistsAsync(RedisKeys.QueueMessage(d, id)));
        var shard = Store.ShardOf(id);
        Assert.Null(await fx.RedisClient.GetDatabase().SortedSetScoreAsync(RedisKeys.ScheduleDue(shard), d + "|" + id));
        var log = await fx.RedisClient.GetDatabase().StreamRangeAsync(RedisKeys.DomainLog(d));
        Assert.Single(log, e => e["event"] == "deleted" && e["message_id"] == id);
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, queue.DeleteMessageAsync(new DeleteMessageRequest { Domain = d, MessageId = id }));
    }

    [Fact]
    public async Task OtherTenantsDomainOrMessage_NotFound()
    {
        var (d, owner, _) = await DomainAsync();
        var (d2, other, _) = await DomainAsync();
        var id = await EnqueueAsync(d);

        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.ListQueueAsync(new ListQueueRequest { Domain = d }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.RetryNowAsync(new RetryNowRequest { Domain = d, MessageId = id }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.BounceMessageAsync(new BounceMessageRequest { Domain = d, MessageId = id }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.DeleteMessageAsync(new DeleteMessageRequest { Domain = d, MessageId = id }));
        // Its own domain, but the message belongs to another domain.
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.DeleteMessageAsync(new DeleteMessageRequest { Domain = d2, MessageId = id }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.GetQueuedMessageAsync(new GetQueuedMessageRequest { Domain = d2, MessageId = id }));
        Assert.Single((await owner.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages);
    }

    [Fact]
    public async Task BadArguments_InvalidArgumentWithField()
    {
        var (d, queue, _) = await DomainAsync();
        await RpcAssert.InvalidFieldAsync("message_id", queue.RetryNowAsync(new RetryNowRequest { Domain = d, MessageId = "gw:{x}:*" }));
        await RpcAssert.InvalidFieldAsync("page_token", queue.ListQueueAsync(new ListQueueRequest { Domain = d, PageToken = "nonsense" }));
        await RpcAssert.InvalidFieldAsync("page_size", queue.ListQueueAsync(new ListQueueRequest { Domain = d, PageSize = -1 }));
        await RpcAssert.ThrowsAsync(StatusCode.Unauthenticated, new QueueService.QueueServiceClient(fx.Channel).ListQueueAsync(new ListQueueRequest { Domain = d }));
    }

    [Fact]
    public async Task DeleteDomain_WithQueuedMail_RefusedUntilDeletedOrForced()
    {
        var (d, queue, domains) = await DomainAsync();
        var id = await EnqueueAsync(d);
        await RpcAssert.ThrowsAsync(StatusCode.FailedPrecondition, domains.DeleteDomainAsync(new DeleteDomainRequest { Name = d }));
        await queue.DeleteMessageAsync(new DeleteMessageRequest { Domain = d, MessageId = id });
        await domains.DeleteDomainAsync(new DeleteDomainRequest { Name = d });
    }
}
