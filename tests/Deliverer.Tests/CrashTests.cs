using Gateway.Api.V1;
using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>requirements §6: no message is lost when a Deliverer process is killed at any moment or Redis restarts.</summary>
[Trait("Kind", "Integration")]
public sealed class CrashTests(ProcessFixture fx) : IClassFixture<ProcessFixture>
{
    [Fact]
    public async Task DelivererKilledMidDelivery_MessageDeliveredAfterRestart()
    {
        var sink = SmtpSink.Start("127.0.0.2");
        await using var _s = sink;
        sink.Behavior = new SinkBehavior { StallAt = SinkStage.DataEnd };
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("kill"), ("*@{d}", sink.Host, sink.Port, 10));
        var reply = await fx.SendAsync("s@remote.test", ["u@" + d], subject: "survivor");
        Assert.StartsWith("2.0.0 Ok: queued as", reply, StringComparison.Ordinal);

        // The Deliverer sent the whole message and waits for the final reply: kill it there (SIGKILL).
        await Eventually.WaitAsync(() => sink.Stalled == 1, TimeSpan.FromSeconds(15), "the delivery to stall in DATA");
        var pid = fx.DelivererProcessId;
        await fx.StopDelivererAsync(kill: true);
        sink.Behavior = SinkBehavior.Accept;
        sink.ReleaseStall();
        Assert.Empty(sink.Messages);

        await fx.StartDelivererAsync();
        Assert.NotEqual(pid, fx.DelivererProcessId);
        var m = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(20)));
        Assert.Contains("Subject: survivor", m.Text, StringComparison.Ordinal);
        Assert.Equal(sink.Unacknowledged[0].Text, m.Text);
        await Eventually.WaitAsync(async () => (await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages.Count == 0,
            TimeSpan.FromSeconds(10), "the queue to empty");
    }

    [Fact]
    public async Task DelivererKilledRightAfterIntake_MessageDeliveredAfterRestart()
    {
        var sink = SmtpSink.Start("127.0.0.3");
        await using var _s = sink;
        sink.Behavior = new SinkBehavior { StallAt = SinkStage.Greeting };
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("kill2"), ("*@{d}", sink.Host, sink.Port, 10));
        await fx.SendAsync("s@remote.test", ["u@" + d], subject: "early");
        await Eventually.WaitAsync(() => sink.Stalled == 1, TimeSpan.FromSeconds(15), "the delivery to connect");
        await fx.StopDelivererAsync(kill: true);
        sink.Behavior = SinkBehavior.Accept;
        sink.ReleaseStall();
        await fx.StartDelivererAsync();
        var m = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(20)));
        Assert.Contains("Subject: early", m.Text, StringComparison.Ordinal);
    }
}
