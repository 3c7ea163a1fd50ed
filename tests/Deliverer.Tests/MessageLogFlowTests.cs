using Gateway.Api.V1;
using Gateway.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Deliverer.Tests;

/// <summary>
/// requirements §7 message log end to end: FollowLog sees a delivery live, and one message's events written by the
/// Deliverer and the ControlPlane read back in order by its id through QueryLog.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class MessageLogFlowTests(GatewayFixture fx) : IClassFixture<GatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task FollowLog_DeliveryThroughIntake_IntakeAttemptDeliveredArriveLive()
    {
        var sink = SmtpSink.Start("127.0.0.6");
        await using var _ = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("fl"), ("*@{d}", sink.Host, sink.Port, 10));

        using var cts = new CancellationTokenSource(Wait);
        // From a moment before the send: the follow is open before the message exists, and no event can fall
        // between "follow started" and "message sent".
        using var follow = fx.Log.FollowLog(new FollowLogRequest { Domain = d, StartTime = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddSeconds(-1)) },
            cancellationToken: cts.Token);
        var reply = await fx.SendAsync("alice@remote.test", ["bob@" + d], subject: "followed");
        var id = reply.Split(' ')[^1];

        var seen = new List<LogEvent>();
        await foreach (var e in follow.ResponseStream.ReadAllAsync(cts.Token))
        {
            seen.Add(e);
            if (e.Event == "delivered")
            {
                break;
            }
        }

        await cts.CancelAsync();
        Assert.Equal(["intake", "attempt", "delivered"], seen.Select(e => e.Event));
        Assert.All(seen, e =>
        {
            Assert.Equal(id, e.MessageId);
            Assert.Equal("inbound", e.Direction);
            Assert.Equal("alice@remote.test", e.Sender);
            Assert.Equal("bob@" + d, e.Recipient);
            Assert.Equal("deliverer", e.Program);
        });
        Assert.Equal($"127.0.0.6:{sink.Port}", seen[1].Host);
        Assert.StartsWith("250", seen[1].Reply, StringComparison.Ordinal);
        Assert.Single(sink.Messages);
    }

    [Fact]
    public async Task QueryLog_ByMessageId_DelivererAndControlPlaneEventsInOrder()
    {
        var sink = SmtpSink.Start("127.0.0.7");
        await using var _ = sink;
        sink.Behavior = new SinkBehavior { RcptReply = _ => "451 4.3.0 Try again later" };
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("ord"), ("*@{d}", sink.Host, sink.Port, 10));
        var reply = await fx.SendAsync("carol@remote.test", ["dave@" + d], subject: "deferred then delivered");
        var id = reply.Split(' ')[^1];
        await fx.WaitForLogAsync(d, e => e["event"] == "deferred" && e["message_id"] == id, "first attempt deferred");

        sink.Behavior = SinkBehavior.Accept;
        await fx.Queue.RetryNowAsync(new RetryNowRequest { Domain = d, MessageId = id });
        await fx.WaitForLogAsync(d, e => e["event"] == "delivered" && e["message_id"] == id, "delivered after retry now");
        // Noise of another message in the same domain, which the filter must leave out.
        await fx.SendAsync("carol@remote.test", ["erin@" + d], subject: "other");
        await fx.WaitForLogAsync(d, e => e["event"] == "delivered" && e["recipient"] == "erin@" + d, "the other message");

        var events = new List<LogEvent>();
        string? token = null;
        do
        {
            var page = await fx.Log.QueryLogAsync(new QueryLogRequest { Domain = d, MessageId = id, Order = LogOrder.OldestFirst, PageSize = 2, PageToken = token ?? string.Empty });
            events.AddRange(page.Events);
            token = page.NextPageToken.Length == 0 ? null : page.NextPageToken;
        }
        while (token is not null);

        Assert.Equal(["intake", "attempt", "deferred", "retry", "attempt", "delivered"], events.Select(e => e.Event));
        Assert.Equal(["deliverer", "deliverer", "deliverer", "controlplane", "deliverer", "deliverer"], events.Select(e => e.Program));
        Assert.All(events, e => Assert.Equal(id, e.MessageId));
        Assert.StartsWith("451", events[1].Reply, StringComparison.Ordinal);
        Assert.Contains("next attempt", events[2].Detail, StringComparison.Ordinal);
        Assert.Equal(events.Select(e => e.Id).Order(StringComparer.Ordinal).ToList(), events.Select(e => e.Id).ToList());

        // Newest first is the default.
        var newest = await fx.Log.QueryLogAsync(new QueryLogRequest { Domain = d, MessageId = id, PageSize = 1 });
        Assert.Equal("delivered", Assert.Single(newest.Events).Event);
    }
}
