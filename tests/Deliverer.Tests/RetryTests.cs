using Gateway.Api.V1;
using Gateway.Testing;
using Google.Protobuf.WellKnownTypes;
using MimeKit;

namespace Deliverer.Tests;

/// <summary>The next attempt uses the configuration saved meanwhile (requirements §3.14).</summary>
[Trait("Kind", "Integration")]
public sealed class RetryTests(FastRetryFixture fx) : IClassFixture<FastRetryFixture>
{
    [Fact]
    public async Task UpdateDomain_WhileMessageWaits_NextAttemptGoesToNewHost()
    {
        var old = SmtpSink.Start("127.0.0.2");
        var replacement = SmtpSink.Start("127.0.0.3");
        await using var _o = old;
        await using var _r = replacement;
        old.Refuse();
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("upd"), ("*@{d}", old.Host, old.Port, 10));
        await fx.SendAsync("s@remote.test", ["u@" + d]);
        await fx.WaitForLogAsync(d, e => e["event"] == "deferred", "first attempt deferred");

        var update = new Domain { Name = d };
        update.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + d, Host = replacement.Host, Port = replacement.Port, Preference = 10 });
        await fx.Domains.UpdateDomainAsync(new UpdateDomainRequest { Domain = update, UpdateMask = new FieldMask { Paths = { "inbound_servers" } } });

        var m = Assert.Single(await replacement.WaitForMessagesAsync(1, TimeSpan.FromSeconds(15)));
        Assert.Equal(["u@" + d], m.Recipients);
        // Log events are written in the background: wait for the last one before reading the log.
        await fx.WaitForLogAsync(d, e => e["event"] == "delivered", "delivery logged");
        var log = await fx.LogAsync(d);
        Assert.Contains(log, e => e["event"] == "attempt" && e["host"] == $"127.0.0.2:{old.Port}");
        Assert.Contains(log, e => e["event"] == "delivered" && e["host"] == $"127.0.0.3:{replacement.Port}");
        Assert.Empty((await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages);
    }

    [Fact]
    public async Task PartialDelivery_OnlyPendingRecipientsRetried()
    {
        var sink = SmtpSink.Start("127.0.0.4");
        await using var _s = sink;
        var busy = true;
        sink.Behavior = new SinkBehavior { RcptReply = r => r.StartsWith("later@", StringComparison.Ordinal) && Volatile.Read(ref busy) ? "450 4.2.1 Mailbox busy" : "250 2.1.5 Ok" };
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("part"), ("*@{d}", sink.Host, sink.Port, 10));
        await fx.SendAsync("s@remote.test", ["now@" + d, "later@" + d]);
        var first = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(10)));
        Assert.Equal(["now@" + d], first.Recipients);
        Volatile.Write(ref busy, false);
        var all = await sink.WaitForMessagesAsync(2, TimeSpan.FromSeconds(15));
        Assert.Equal(["later@" + d], all[1].Recipients);
        Assert.Equal(2, all.Count);
    }
}

/// <summary>requirements §6: kept up to the lifetime, then bounced as expired.</summary>
[Trait("Kind", "Integration")]
public sealed class ExpiryTests(ExpiryFixture fx) : IClassFixture<ExpiryFixture>
{
    [Fact]
    public async Task HostDownPastLifetime_ExpiredDsnToSender()
    {
        var down = SmtpSink.Start("127.0.0.2");
        await using var _d = down;
        down.Refuse();
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("exp"), ("*@{d}", down.Host, down.Port, 10));
        var senderDomain = $"s{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        await using var senderMx = SmtpSink.Start("127.0.0.21", fx.OutboundPort);
        fx.Dns.AddMx(senderDomain, 10, "mx." + senderDomain).AddA("mx." + senderDomain, senderMx.Host);

        await fx.SendAsync("bob@" + senderDomain, ["u@" + d]);
        var dsn = Assert.Single(await senderMx.WaitForMessagesAsync(1, TimeSpan.FromSeconds(20)));
        var report = await MimeMessage.LoadAsync(new MemoryStream(dsn.Data));
        Assert.Equal("Delivery Status Notification (Expired)", report.Subject);
        var status = Assert.IsType<MessageDeliveryStatus>(Assert.IsType<MultipartReport>(report.Body)[1]);
        var group = status.StatusGroups.Where(g => g.Count > 0).Skip(1).Single();
        Assert.Equal("4.4.7", group["Status"]);
        Assert.Equal("failed", group["Action"]);
        Assert.Contains("connection refused", group["Diagnostic-Code"], StringComparison.Ordinal);

        // Log events are written in the background: wait for the last one before reading the log.
        await fx.WaitForLogAsync(d, e => e["event"] == "expired", "expiry logged");
        var log = await fx.LogAsync(d);
        Assert.True(log.Count(e => e["event"] == "attempt") >= 2, "retried before expiring");
        Assert.Single(log, e => e["event"] == "expired");
        Assert.Empty((await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = d })).Messages);
    }
}
