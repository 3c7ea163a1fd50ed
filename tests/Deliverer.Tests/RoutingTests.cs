using System.Net;
using Gateway.Api.V1;
using Gateway.Core.Storage;
using Gateway.Deliverer;
using Gateway.Testing;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Deliverer.Tests;

/// <summary>
/// requirements §3.5's worked example, with SMTP sinks on 127.0.0.2-5 standing in for the seed's four hosts:
/// 192.0.2.1 → 127.0.0.2, 203.0.113.1 → 127.0.0.3, 203.0.113.2 → 127.0.0.4, 198.51.100.1 → 127.0.0.5.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class RoutingTests(GatewayFixture fx) : IClassFixture<GatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    private sealed record Seed(string Domain, SmtpSink Host192, SmtpSink Host203a, SmtpSink Host203b, SmtpSink Host198) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Host192.DisposeAsync();
            await Host203a.DisposeAsync();
            await Host203b.DisposeAsync();
            await Host198.DisposeAsync();
        }
    }

    /// <summary>
    /// Rows: <c>*@d → 192.0.2.1 pref 20</c>, <c>john@ → 203.0.113.1 pref 10</c>,
    /// <c>sophie@ → 203.0.113.2 pref 20</c>, <c>taro@ → 198.51.100.1 pref 50</c>.
    /// </summary>
    private async Task<Seed> SeedAsync()
    {
        var s192 = SmtpSink.Start("127.0.0.2");
        var s203a = SmtpSink.Start("127.0.0.3");
        var s203b = SmtpSink.Start("127.0.0.4");
        var s198 = SmtpSink.Start("127.0.0.5");
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("seed"),
            ("*@{d}", s192.Host, s192.Port, 20),
            ("john@{d}", s203a.Host, s203a.Port, 10),
            ("sophie@{d}", s203b.Host, s203b.Port, 20),
            ("taro@{d}", s198.Host, s198.Port, 50));
        return new Seed(d, s192, s203a, s203b, s198);
    }

    [Fact]
    public async Task SeedExample_John_PreferenceTenFirstThenCatchAll()
    {
        await using var seed = await SeedAsync();
        await fx.SendAsync("sender@remote.test", ["john@" + seed.Domain]);
        var m = Assert.Single(await seed.Host203a.WaitForMessagesAsync(1, Wait));
        Assert.Equal(["john@" + seed.Domain], m.Recipients);
        Assert.Equal("sender@remote.test", m.MailFrom);

        // 203.0.113.1 down: at once the next preference, 192.0.2.1.
        seed.Host203a.Refuse();
        await fx.SendAsync("sender@remote.test", ["john@" + seed.Domain]);
        await seed.Host192.WaitForMessagesAsync(1, Wait);
        Assert.Single(seed.Host203a.Messages);
        Assert.Empty(seed.Host203b.Messages);
        Assert.Empty(seed.Host198.Messages);
    }

    [Fact]
    public async Task SeedExample_Sophie_HundredMessagesSplitFiftyFifty()
    {
        await using var seed = await SeedAsync();
        await fx.SendManyAsync("sender@remote.test", "sophie@" + seed.Domain, 100);
        await Eventually.WaitAsync(() => seed.Host192.Messages.Count + seed.Host203b.Messages.Count == 100, Wait, "100 messages delivered");
        Assert.Equal(50, seed.Host192.Messages.Count);
        Assert.Equal(50, seed.Host203b.Messages.Count);
        Assert.Empty(seed.Host203a.Messages);
        Assert.Empty(seed.Host198.Messages);
    }

    [Fact]
    public async Task SeedExample_SophieWhileSecondHostDown_AlwaysCatchAllHost()
    {
        await using var seed = await SeedAsync();
        seed.Host203b.Refuse();
        await fx.SendManyAsync("sender@remote.test", "sophie@" + seed.Domain, 10);
        await seed.Host192.WaitForMessagesAsync(10, Wait);
        Assert.Equal(10, seed.Host192.Messages.Count);
        Assert.Empty(seed.Host203b.Messages);
    }

    [Fact]
    public async Task SeedExample_Taro_CatchAllThenPreferenceFifty()
    {
        await using var seed = await SeedAsync();
        await fx.SendAsync("sender@remote.test", ["taro@" + seed.Domain]);
        await seed.Host192.WaitForMessagesAsync(1, Wait);
        seed.Host192.Refuse();
        await fx.SendAsync("sender@remote.test", ["taro@" + seed.Domain]);
        var m = Assert.Single(await seed.Host198.WaitForMessagesAsync(1, Wait));
        Assert.Equal(["taro@" + seed.Domain], m.Recipients);
        Assert.Empty(seed.Host203a.Messages);
        Assert.Empty(seed.Host203b.Messages);
    }

    [Fact]
    public async Task SeedExample_Hanako_CatchAllHostOnly()
    {
        await using var seed = await SeedAsync();
        await fx.SendAsync("sender@remote.test", ["hanako@" + seed.Domain]);
        await seed.Host192.WaitForMessagesAsync(1, Wait);

        // With 192.0.2.1 down hanako has nowhere else to go: deferred, no other host contacted.
        seed.Host192.Refuse();
        await fx.SendAsync("sender@remote.test", ["hanako@" + seed.Domain]);
        var deferred = await fx.WaitForLogAsync(seed.Domain, e => e["event"] == "deferred", "hanako deferred");
        Assert.Equal("hanako@" + seed.Domain, deferred["recipient"]);
        Assert.Equal(0, seed.Host203a.Connections + seed.Host203b.Connections + seed.Host198.Connections);
    }

    [Fact]
    public async Task AllHostsDown_Deferred_NextAttemptAfterFiveMinutes()
    {
        var a = SmtpSink.Start("127.0.0.2");
        var b = SmtpSink.Start("127.0.0.3");
        await using var _a = a;
        await using var _b = b;
        a.Refuse();
        b.Refuse();
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("down"), ("*@{d}", a.Host, a.Port, 10), ("*@{d}", b.Host, b.Port, 20));
        var before = DateTimeOffset.UtcNow;
        await fx.SendAsync("sender@remote.test", ["user@" + d]);

        QueuedMessage? queued = null;
        await Eventually.WaitAsync(async () =>
        {
            var list = await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d });
            queued = list.Messages.SingleOrDefault(m => m.Attempts == 1);
            return queued is not null;
        }, Wait, "the message deferred after one attempt");
        var after = DateTimeOffset.UtcNow;
        var next = queued!.NextAttemptTime.ToDateTimeOffset();
        Assert.InRange(next, before + TimeSpan.FromMinutes(5), after + TimeSpan.FromMinutes(5));
        Assert.Contains("connection refused", queued.LastError, StringComparison.Ordinal);
        Assert.Equal(RecipientState.Pending, Assert.Single(queued.Recipients).State);
        // Log events are written in the background: wait for the last one before reading the log.
        await fx.WaitForLogAsync(d, e => e["event"] == "deferred", "deferral logged");
        var log = await fx.LogAsync(d);
        Assert.Equal(2, log.Count(e => e["event"] == "attempt"));
        Assert.Single(log, e => e["event"] == "deferred");
        Assert.True(queued.ExpireTime.ToDateTimeOffset() > before + TimeSpan.FromDays(9.9));
    }

    [Fact]
    public async Task RoundRobin_TwoDeliverersSharingRedis_StillAlternatesFleetWide()
    {
        var a = SmtpSink.Start("127.0.0.2");
        var b = SmtpSink.Start("127.0.0.4");
        await using var _a = a;
        await using var _b = b;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("rr"), ("*@{d}", a.Host, a.Port, 20), ("sophie@{d}", b.Host, b.Port, 20));

        var second = DelivererApp.Build(fx.DelivererArgs(0));
        await second.StartAsync();
        try
        {
            var secondIntake = DelivererApp.IntakeEndPoint(second);
            await Eventually.WaitAsync(() => second.Services.GetRequiredService<Gateway.Core.Snapshot.ConfigSnapshot>().Find(d) is not null, Wait, "second snapshot");
            // Messages alternate between the two Deliverers; the counter is in Redis, so hosts still alternate.
            for (var i = 0; i < 10; i++)
            {
                await fx.SendManyAsync("sender@remote.test", "sophie@" + d, 1);
                await SendViaAsync(secondIntake, "sender@remote.test", "sophie@" + d);
            }

            await Eventually.WaitAsync(() => a.Messages.Count + b.Messages.Count == 20, Wait, "20 delivered");
            Assert.Equal(10, a.Messages.Count);
            Assert.Equal(10, b.Messages.Count);
        }
        finally
        {
            await second.StopAsync();
            await second.DisposeAsync();
        }
    }

    [Theory]
    [InlineData(SinkStage.Greeting, "421 4.3.2 Service not available")]
    [InlineData(SinkStage.Mail, "451 4.3.0 Try again later")]
    [InlineData(SinkStage.Rcpt, "450 4.2.0 Mailbox busy")]
    [InlineData(SinkStage.Data, "451 4.3.0 Not now")]
    [InlineData(SinkStage.DataEnd, "452 4.3.1 Insufficient system storage")]
    public async Task TransientFailure_AnyStage_NextHostAtOnce(SinkStage stage, string reply)
    {
        var primary = SmtpSink.Start("127.0.0.3");
        var secondary = SmtpSink.Start("127.0.0.2");
        await using var _p = primary;
        await using var _s = secondary;
        primary.Behavior = SinkBehavior.FailAt(stage, reply);
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("tf"), ("*@{d}", primary.Host, primary.Port, 10), ("*@{d}", secondary.Host, secondary.Port, 20));
        await fx.SendAsync("sender@remote.test", ["user@" + d]);
        await secondary.WaitForMessagesAsync(1, Wait);
        Assert.Empty(primary.Messages);
        var attempt = await fx.WaitForLogAsync(d, e => e["event"] == "attempt" && e["host"].StartsWith("127.0.0.3", StringComparison.Ordinal), "primary attempt");
        Assert.StartsWith(reply[..3], attempt["reply"], StringComparison.Ordinal);
        await fx.WaitForLogAsync(d, e => e["event"] == "delivered" && e["host"].StartsWith("127.0.0.2", StringComparison.Ordinal), "delivered at secondary");
    }

    [Theory]
    [InlineData(SinkStage.Greeting, "554 5.3.2 No service for you")]
    [InlineData(SinkStage.Mail, "553 5.7.1 Sender refused")]
    [InlineData(SinkStage.DataEnd, "554 5.6.0 Content refused")]
    public async Task PermanentFailure_AnyStage_BouncedWithoutOtherHost(SinkStage stage, string reply)
    {
        var primary = SmtpSink.Start("127.0.0.3");
        var secondary = SmtpSink.Start("127.0.0.2");
        await using var _p = primary;
        await using var _s = secondary;
        primary.Behavior = SinkBehavior.FailAt(stage, reply);
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("pf"), ("*@{d}", primary.Host, primary.Port, 10), ("*@{d}", secondary.Host, secondary.Port, 20));
        await fx.SendAsync(string.Empty, ["user@" + d]);
        var bounced = await fx.WaitForLogAsync(d, e => e["event"] == "bounced", "bounce");
        Assert.StartsWith(reply[..3], bounced["reply"], StringComparison.Ordinal);
        Assert.Contains("no DSN", bounced["detail"], StringComparison.Ordinal);
        Assert.Equal(0, secondary.Connections);
        Assert.Empty((await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages);
    }

    private static async Task SendViaAsync(IPEndPoint intake, string from, string to)
    {
        using var client = new MailKit.Net.Smtp.SmtpClient();
        await client.ConnectAsync(intake.Address.ToString(), intake.Port, MailKit.Security.SecureSocketOptions.None);
        var message = new MimeKit.MimeMessage();
        message.From.Add(MimeKit.MailboxAddress.Parse(from));
        message.To.Add(MimeKit.MailboxAddress.Parse(to));
        message.Subject = "via second";
        message.Body = new MimeKit.TextPart("plain") { Text = "x" };
        await client.SendAsync(message);
        await client.DisconnectAsync(true);
    }
}
