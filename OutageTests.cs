using Gateway.Api.V1;
using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>SPEC §6: 250 only when durable; queued mail survives a Redis restart (AOF).</summary>
public sealed class OutageTests(OutageFixture fx) : IClassFixture<OutageFixture>
{
    [Fact]
    public async Task RedisDown_Intake451_ThenQueuedMailSurvivesRestart()
    {
        var sink = SmtpSink.Start("127.0.0.2");
        await using var _s = sink;
        sink.Refuse();
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("out"), ("*@{d}", sink.Host, sink.Port, 10));

        // Queued while the host is down, then Redis is killed and restarted from its AOF.
        var reply = await RawSmtp.SendAsync(fx.Intake, "p@remote.test", [$"a@{d}"], "Subject: kept\r\n\r\nx\r\n");
        Assert.StartsWith("250 ", reply, StringComparison.Ordinal);
        await fx.WaitForLogAsync(d, e => e["event"] == "deferred", "deferred");
        await Task.Delay(1500); // the test Redis syncs its AOF every second (production: appendfsync always)
        await fx.Redis.StopAsync();

        // Without Redis the intake must not say 250.
        var refused = await RawSmtp.SendAsync(fx.Intake, "p@remote.test", [$"b@{d}"], "Subject: refused\r\n\r\nx\r\n");
        Assert.StartsWith("451 4.3.0", refused, StringComparison.Ordinal);

        await fx.Redis.RestartAsync();
        sink.Listen();
        await Eventually.WaitAsync(async () =>
        {
            try
            {
                var list = await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d });
                if (list.Messages.Count == 1)
                {
                    await fx.Queue.RetryNowAsync(new RetryNowRequest { Domain = d, MessageId = list.Messages[0].MessageId });
                    return true;
                }
            }
            catch (Grpc.Core.RpcException)
            {
            }

            return false;
        }, TimeSpan.FromSeconds(20), "the queued message back after the restart");
        var m = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(20)));
        Assert.Contains("Subject: kept", m.Text, StringComparison.Ordinal);
    }
}
