using System.Diagnostics;
using Gateway.Core.Delivery;
using Gateway.Core.Mail;
using Gateway.Core.Storage;
using Gateway.Testing;
using Xunit.Abstractions;

namespace Deliverer.Tests;

/// <summary>Short greeting timeout and attempt deadline, so a black hole and a stalled transaction show within a test.</summary>
public sealed class StarvationFixture : GatewayFixture
{
    protected override IEnumerable<string> DelivererSettings =>
    [
        "--Gateway:Deliverer:GreetingTimeout=00:00:03",
        "--Gateway:Deliverer:AttemptDeadline=00:00:04",
        "--Gateway:Deliverer:MaxAddressesPerAttempt=10",
    ];
}

/// <summary>
/// No starvation (requirements §11.6): a black hole (accepts TCP, never greets) with 200 messages queued for it holds at
/// most the per-destination limit of delivery slots, mail for another domain goes on at once, the black hole's address
/// is remembered as dead (shared through Redis) so later messages do not wait for it, an attempt ends at its deadline,
/// and at most 10 addresses are tried per attempt.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class StarvationTests(StarvationFixture fx, ITestOutputHelper output) : IClassFixture<StarvationFixture>
{
    private static readonly byte[] Body = "Subject: to the black hole\r\n\r\nhello\r\n"u8.ToArray();

    [Fact]
    public async Task BlackHoleWith200Messages_OtherDomainStillDelivered_AtMostTwentySlots_HostRememberedDead()
    {
        await using var hole = SmtpSink.Start("127.0.0.6");
        hole.Behavior = new SinkBehavior { StallAt = SinkStage.Greeting };
        await using var healthy = SmtpSink.Start("127.0.0.7");
        var holeDomain = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("hole"), ("*@{d}", hole.Host, hole.Port, 10));
        var okDomain = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("ok"), ("*@{d}", healthy.Host, healthy.Port, 10));

        for (var i = 0; i < 200; i++)
        {
            await fx.Store.EnqueueAsync(new QueueEnvelope(holeDomain, Direction.Inbound, "s@remote.test", [$"u{i}@{holeDomain}"]), Body);
        }

        // Twenty deliveries hang in the black hole's greeting (Postfix's default_destination_concurrency_limit), no more.
        await Eventually.WaitAsync(() => hole.Stalled == 20, TimeSpan.FromSeconds(15), "20 connections held by the black hole");

        var clock = Stopwatch.StartNew();
        await fx.SendAsync("s@remote.test", [$"x@{okDomain}"], "while the black hole holds its slots");
        await healthy.WaitForMessagesAsync(1, TimeSpan.FromSeconds(5));
        output.WriteLine($"other domain delivered {clock.ElapsedMilliseconds} ms after its intake, {hole.Stalled} connections held by the black hole");
        Assert.InRange(hole.Stalled, 0, 20);

        // After the greeting timeout the address is dead for every Deliverer: the other messages are deferred without connecting.
        await Eventually.WaitAsync(async () => (await fx.RedisClient.GetDatabase().SortedSetRangeByScoreAsync(RedisKeys.DeadHosts)).Any(v => v == $"{hole.Host}:{hole.Port}"),
            TimeSpan.FromSeconds(15), "the black hole's address shared as dead");
        await fx.WaitForLogAsync(holeDomain, e => e["event"] == "deferred" && e["reply"].Contains("not tried: it did not answer in time recently", StringComparison.Ordinal),
            "a message deferred without connecting to the dead host", TimeSpan.FromSeconds(20));
        await Eventually.WaitAsync(async () => (await fx.LogAsync(holeDomain)).Count(e => e["event"] == "deferred") == 200, TimeSpan.FromSeconds(60), "all 200 deferred");
        Assert.InRange(hole.Connections, 20, 40);
    }

    [Fact]
    public async Task TransactionNeverAnswered_AttemptEndsAtDeadline_Deferred()
    {
        await using var sink = SmtpSink.Start("127.0.0.8");
        sink.Behavior = new SinkBehavior { StallAt = SinkStage.DataEnd };
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("slow"), ("*@{d}", sink.Host, sink.Port, 10));
        await fx.SendAsync("s@remote.test", [$"x@{d}"]);
        var deferred = await fx.WaitForLogAsync(d, e => e["event"] == "deferred", "deferred at the deadline", TimeSpan.FromSeconds(20));
        Assert.Contains("attempt deadline of 00:00:04 reached", deferred["reply"], StringComparison.Ordinal);
        sink.ReleaseStall();
    }

    [Fact]
    public async Task RouteWithTwelveDeadAddresses_TenTriedPerAttempt()
    {
        // Twelve rows of one preference whose addresses refuse connections (closed ports on 127.0.0.9).
        var rows = Enumerable.Range(0, 12).Select(_ => ("*@{d}", "127.0.0.9", FreePort.Get(System.Net.IPAddress.Parse("127.0.0.9")), 10)).ToArray();
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("many"), rows);
        await fx.SendAsync("s@remote.test", [$"x@{d}"]);
        await fx.WaitForLogAsync(d, e => e["event"] == "deferred", "deferred after the tenth address");
        Assert.Equal(10, (await fx.LogAsync(d)).Count(e => e["event"] == "attempt"));
    }
}
