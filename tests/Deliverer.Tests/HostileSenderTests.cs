using System.Net;
using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>
/// The intake against a hostile sender (requirements §11.1): recipients without a route refused at RCPT, smuggling
/// sequences, bare line ends. Real sockets, a real Redis, real sinks.
/// </summary>
public sealed class HostileSenderTests(GatewayFixture fx) : IClassFixture<GatewayFixture>
{
    private async Task<RawSmtp> OpenAsync(IPAddress? from = null)
    {
        var c = await RawSmtp.ConnectAsync(fx.Intake, from);
        Assert.StartsWith("220 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync("EHLO client.test\r\n");
        Assert.StartsWith("250", await c.ReadReplyAsync(), StringComparison.Ordinal);
        return c;
    }

    [Fact]
    public async Task Rcpt_NoRowMatches_550UnknownRecipient_SameWordsAsThePolicyService()
    {
        await using var sink = SmtpSink.Start("127.0.0.2");
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("rows"), ("ann@{d}", sink.Host, sink.Port, 10));
        await using var c = await OpenAsync();
        await c.WriteAsync($"MAIL FROM:<s@remote.test>\r\nRCPT TO:<ann@{d}>\r\nRCPT TO:<carol@{d}>\r\n");
        Assert.Equal("250 2.1.0 Ok", await c.ReadReplyAsync());
        Assert.Equal("250 2.1.5 Ok", await c.ReadReplyAsync());
        Assert.Equal($"550 5.1.1 <carol@{d}>: Recipient address rejected: unknown recipient", await c.ReadReplyAsync());
        var logged = await fx.WaitForLogAsync(d, e => e["event"] == "policy_reject", "the refusal in the domain's log");
        Assert.Equal($"carol@{d}", logged["recipient"]);
    }
}
