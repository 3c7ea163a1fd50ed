using Gateway.Api.V1;
using Gateway.Testing;
using MailKit.Net.Smtp;

namespace Deliverer.Tests;

/// <summary>Redis as production runs it (AOF, appendfsync always) and a short lease, so a lost outcome would show as a second delivery soon.</summary>
public sealed class DurableRedisFixture : GatewayFixture
{
    protected override bool DurableRedis => true;

    protected override IEnumerable<string> DelivererSettings => ["--Gateway:Queue:Lease=00:00:03"];
}

/// <summary>requirements §6: no message is lost when Redis restarts (AOF); the Deliverer keeps working across it.</summary>
[Trait("Kind", "Integration")]
public sealed class RedisRestartTests(DurableRedisFixture fx) : IClassFixture<DurableRedisFixture>
{
    [Fact]
    public async Task RedisRestart_AcceptedBeforeDuringAndAfter_AllDeliveredOnce()
    {
        var sink = SmtpSink.Start("127.0.0.6");
        await using var _s = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("rr"), ("*@{d}", sink.Host, sink.Port, 10));

        // Before: queued while Redis is up and delivered.
        await fx.SendManyAsync("s@remote.test", "before@" + d, 5);
        await sink.WaitForMessagesAsync(5, TimeSpan.FromSeconds(20));

        // Queued, then held by the destination until its data is in: Redis goes away while the destination
        // has the whole message, and the destination's 250 arrives while Redis is down.
        sink.Behavior = new SinkBehavior { StallAt = SinkStage.DataEnd };
        await fx.SendAsync("s@remote.test", ["during@" + d], subject: "across the restart");
        await Eventually.WaitAsync(() => sink.Stalled == 1, TimeSpan.FromSeconds(15), "the delivery to wait for the final reply");
        await fx.Redis.StopAsync();
        sink.Behavior = SinkBehavior.Accept;
        sink.ReleaseStall();

        // Redis down: the intake refuses with 4xx (Postfix keeps the mail and retries), never 250 and never 5xx.
        var refused = await Assert.ThrowsAsync<SmtpCommandException>(() => fx.SendAsync("s@remote.test", ["refused@" + d], subject: "while down"));
        Assert.InRange((int)refused.StatusCode, 400, 499);

        await fx.Redis.RestartAsync();

        // After: accepted again (each message retried on 4xx as Postfix would) and delivered.
        for (var i = 0; i < 5; i++)
        {
            await Eventually.WaitAsync(async () =>
            {
                try
                {
                    await fx.SendAsync("s@remote.test", ["after@" + d], subject: $"after {i}");
                    return true;
                }
                catch (SmtpCommandException e) when ((int)e.StatusCode is >= 400 and < 500)
                {
                    return false;
                }
            }, TimeSpan.FromSeconds(30), "the intake to accept again after the restart");
        }

        // The queue empties only once every outcome is recorded; a lost outcome would have been delivered again by then.
        await Eventually.WaitAsync(async () => (await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages.Count == 0,
            TimeSpan.FromSeconds(60), "the queue to empty");
        var messages = sink.Messages;
        Assert.Equal(5, messages.Count(m => m.Recipients.SequenceEqual(["before@" + d])));
        Assert.Equal(5, messages.Count(m => m.Recipients.SequenceEqual(["after@" + d])));
        Assert.Single(messages, m => m.Recipients.SequenceEqual(["during@" + d]));
        Assert.DoesNotContain(messages, m => m.Recipients.Contains("refused@" + d));
    }
}
