using Gateway.Api.V1;
using Gateway.Core.MessageLog;
using Gateway.Core.Storage;
using Gateway.Deliverer.Delivery;
using Gateway.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Deliverer.Tests;

/// <summary>
/// A Deliverer in the middle of a delivery while its domain is deleted with force: when the attempt ends it writes
/// its results (state, retry schedule, log events), and none of that may bring a key of the deleted domain back.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class DeletionRaceTests(GatewayFixture fx) : IClassFixture<GatewayFixture>
{
    [Fact]
    public async Task ForcedDelete_WhileADeliveryIsInFlight_ItsLateWritesCreateNoKey()
    {
        var sink = SmtpSink.Start("127.0.0.12");
        await using var _ = sink;
        // Hold the delivery after the message arrived; then answer 451, so the Deliverer saves a deferred state,
        // schedules a retry and logs "attempt" and "deferred": every kind of late write.
        sink.Behavior = new SinkBehavior { StallAt = SinkStage.DataEnd, DataEndReply = "451 4.3.0 Try again later" };
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("race"), ("*@{d}", sink.Host, sink.Port, 10));
        var marker = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("mark"), ("*@{d}", sink.Host, sink.Port, 10));
        await fx.SendAsync("a@remote.test", ["u@" + d]);
        await Eventually.WaitAsync(() => sink.Stalled == 1, TimeSpan.FromSeconds(15), "delivery held at the end of DATA");

        var deleted = await fx.Domains.DeleteDomainAsync(new DeleteDomainRequest { Name = d, Force = true });
        Assert.NotEmpty(deleted.UndoSteps);
        Assert.Empty(await KeysOfAsync(d));

        sink.ReleaseStall();
        var services = fx.DelivererServices!;
        var scheduler = services.GetRequiredService<DeliveryScheduler>();
        await Eventually.WaitAsync(() => scheduler.InFlight == 0, TimeSpan.FromSeconds(15), "the attempt finished");
        // The Deliverer's log buffer is first in, first out: once a later event is in Redis, the earlier ones were written (or refused).
        services.GetRequiredService<BufferedMessageLog>().Post(new MessageLogEvent { Domain = marker, Event = MessageLogEvents.Intake, MessageId = "marker" });
        await fx.WaitForLogAsync(marker, e => e["message_id"] == "marker", "the marker event");

        Assert.Empty(await KeysOfAsync(d));
        Assert.Empty(sink.Messages);
    }

    private async Task<List<string>> KeysOfAsync(string domain)
    {
        var mux = fx.RedisClient;
        var db = mux.GetDatabase();
        var found = new List<string>();
        await foreach (var k in mux.GetServer(mux.GetEndPoints()[0]).KeysAsync(pattern: "*"))
        {
            var key = k.ToString();
            if (key.Contains(domain, StringComparison.Ordinal))
            {
                found.Add(key);
            }
            else if (key.StartsWith("gw:{sched:", StringComparison.Ordinal))
            {
                var members = key.EndsWith(":due", StringComparison.Ordinal)
                    ? (await db.SortedSetRangeByRankAsync(k)).Select(m => m.ToString())
                    : (await db.HashKeysAsync(k)).Select(m => m.ToString());
                found.AddRange(members.Where(m => m.StartsWith(domain + "|", StringComparison.Ordinal)).Select(m => $"{key} {m}"));
            }
        }

        return found;
    }
}
