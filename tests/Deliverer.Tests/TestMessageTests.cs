using Gateway.Api.V1;
using Gateway.Testing;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using MimeKit;

namespace Deliverer.Tests;

/// <summary>requirements §3.13: SendTestMessage through the saved configuration, delivered by the Deliverer.</summary>
[Trait("Kind", "Integration")]
public sealed class TestMessageTests(GatewayFixture fx) : IClassFixture<GatewayFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task SendTestMessage_DeliveredToSavedServer_IdInQueueLogAndMessage()
    {
        var sink = SmtpSink.Start("127.0.0.3");
        await using var _ = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("tm"), ("*@{d}", sink.Host, sink.Port, 10));

        var reply = await fx.Domains.SendTestMessageAsync(new SendTestMessageRequest { Name = d, Recipient = "Postmaster@" + d.ToUpperInvariant() });
        Assert.False(string.IsNullOrEmpty(reply.MessageId));

        var message = Assert.Single(await sink.WaitForMessagesAsync(1, Wait));
        Assert.Equal(["postmaster@" + d], message.Recipients);
        Assert.Equal(string.Empty, message.MailFrom);
        var mime = MimeMessage.Load(new MemoryStream(message.Data));
        Assert.Contains(d, mime.Subject, StringComparison.Ordinal);

        var delivered = await fx.WaitForLogAsync(d, e => e["event"] == "delivered" && e["message_id"] == reply.MessageId, "test message delivered");
        Assert.Equal($"127.0.0.3:{sink.Port}", delivered["host"]);
        var log = (await fx.LogAsync(d)).Where(e => e["message_id"] == reply.MessageId).Select(e => e["event"]).ToList();
        Assert.Equal("intake", log[0]);
    }

    [Fact]
    public async Task SendTestMessage_AfterUnsavedEdit_StillDeliveredPerSavedConfig()
    {
        var saved = SmtpSink.Start("127.0.0.4");
        var edited = SmtpSink.Start("127.0.0.5");
        await using var _s = saved;
        await using var _e = edited;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("tm"), ("*@{d}", saved.Host, saved.Port, 10));
        var current = await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = d });

        // The edit pointing at the new server is never saved: it is only tested, and a save with a stale etag fails.
        var unsaved = new Gateway.Api.V1.InboundServer { Recipient = "*@" + d, Host = edited.Host, Port = edited.Port, Preference = 10 };
        var test = await fx.Domains.TestConnectionAsync(new TestConnectionRequest { Name = d, InboundServers = { unsaved } });
        Assert.True(test.Success, test.Message);
        var stale = await Assert.ThrowsAsync<RpcException>(async () => await fx.Domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = d, Etag = "999", InboundServers = { unsaved }, InboundEnabled = true },
            UpdateMask = new FieldMask { Paths = { "inbound_servers" } },
        }));
        Assert.Equal(StatusCode.Aborted, stale.StatusCode);

        var reply = await fx.Domains.SendTestMessageAsync(new SendTestMessageRequest { Name = d, Recipient = "admin@" + d });
        Assert.Single(await saved.WaitForMessagesAsync(1, Wait));
        Assert.Empty(edited.Messages);
        Assert.Equal(current.Etag, (await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = d })).Etag);
        Assert.False(string.IsNullOrEmpty(reply.MessageId));
    }

    [Fact]
    public async Task SendTestMessage_BadRecipientOrNoRoute_ClearErrors()
    {
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("tm"), ("john@{d}", "127.0.0.2", 2525, 10));
        foreach (var bad in new[] { "", "someone@elsewhere.example", "*@" + d, "no-at-sign" })
        {
            var e = await Assert.ThrowsAsync<RpcException>(async () => await fx.Domains.SendTestMessageAsync(new SendTestMessageRequest { Name = d, Recipient = bad }));
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        }

        var noRoute = await Assert.ThrowsAsync<RpcException>(async () =>
            await fx.Domains.SendTestMessageAsync(new SendTestMessageRequest { Name = d, Recipient = "hanako@" + d }));
        Assert.Equal(StatusCode.FailedPrecondition, noRoute.StatusCode);
        Assert.Contains("No saved inbound server", noRoute.Status.Detail, StringComparison.Ordinal);
    }
}
