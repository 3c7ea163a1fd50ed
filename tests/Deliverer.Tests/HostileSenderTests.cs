using System.Net;
using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>
/// The intake against a hostile sender (requirements §3.6, §11.8): recipients without a route refused at RCPT, smuggling
/// sequences, bare line ends. Real sockets, a real Redis, real sinks.
/// </summary>
[Trait("Kind", "Integration")]
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

    [Theory]
    [InlineData("\n.\n")]
    [InlineData("\n.\r\n")]
    [InlineData("\r.\r\n")]
    [InlineData("\r\n.\r")]
    public async Task Smuggling_StraightToTheIntake_OneMessage_OnlyCrLfStored(string sequence)
    {
        await using var sink = SmtpSink.Start("127.0.0.2");
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("smuggle"), ("*@{d}", sink.Host, sink.Port, 10));
        await using var c = await OpenAsync();
        await c.WriteAsync($"MAIL FROM:<s@remote.test>\r\nRCPT TO:<first@{d}>\r\nDATA\r\n");
        Assert.Equal("250 2.1.0 Ok", await c.ReadReplyAsync());
        Assert.Equal("250 2.1.5 Ok", await c.ReadReplyAsync());
        Assert.StartsWith("354", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync($"Subject: first\r\n\r\nfirst{sequence}MAIL FROM:<ceo@{d}>\r\nRCPT TO:<smuggled@{d}>\r\nDATA\r\nSubject: second\r\n\r\nx\r\n.\r\nQUIT\r\n");
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        Assert.Equal("221 2.0.0 Bye", await c.ReadReplyAsync());

        var m = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(15)));
        Assert.Equal([$"first@{d}"], m.Recipients);
        var text = m.Text.Replace("\r\n", string.Empty, StringComparison.Ordinal);
        Assert.DoesNotContain('\r', text);
        Assert.DoesNotContain('\n', text);
        await Task.Delay(500);
        Assert.Single(sink.Messages);
    }

    [Fact]
    public async Task Bdat_BareLineEnds_StoredAsCrLf()
    {
        await using var sink = SmtpSink.Start("127.0.0.2");
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("bdat"), ("*@{d}", sink.Host, sink.Port, 10));
        await using var c = await OpenAsync();
        var chunk1 = "Subject: b\r\n\r\nline\r";
        var chunk2 = ".\rmore\nend\r\n";
        await c.WriteAsync($"MAIL FROM:<s@remote.test>\r\nRCPT TO:<x@{d}>\r\nBDAT {chunk1.Length}\r\n{chunk1}BDAT {chunk2.Length} LAST\r\n{chunk2}");
        Assert.Equal("250 2.1.0 Ok", await c.ReadReplyAsync());
        Assert.Equal("250 2.1.5 Ok", await c.ReadReplyAsync());
        Assert.StartsWith("250 2.0.0 Ok: ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        Assert.StartsWith("250 2.0.0 Ok: queued as ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        var m = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(15)));
        Assert.EndsWith("Subject: b\r\n\r\nline\r\n.\r\nmore\r\nend\r\n", m.Text, StringComparison.Ordinal);
    }
}
