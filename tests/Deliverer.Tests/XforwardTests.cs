using Gateway.Testing;
using Gateway.Deliverer.Smtp;

namespace Deliverer.Tests;

/// <summary>XFORWARD (Postfix XFORWARD_README): the parser from strings, and the intake over a real socket.</summary>
[Trait("Kind", "Integration")]
public sealed class XforwardTests(IntakeFixture fx) : IClassFixture<IntakeFixture>
{
    [Fact]
    public void TryParseXforward_PostfixAttributes_DecodedCaseInsensitiveUnavailableIsNull()
    {
        Assert.True(SmtpParser.TryParseXforward("NAME=mx.example.net addr=192.0.2.9 PORT=4711 HELO=[UNAVAILABLE] IDENT=4XyZ1abc SOURCE=REMOTE", out var attrs, out _));
        var map = attrs.ToDictionary(a => a.Key, a => a.Value);
        Assert.Equal("mx.example.net", map["NAME"]);
        Assert.Equal("192.0.2.9", map["ADDR"]);
        Assert.Null(map["HELO"]);
        Assert.Equal("4XyZ1abc", map["IDENT"]);
        Assert.True(SmtpParser.TryParseXforward("HELO=a+3Db+2Bc", out attrs, out _));
        Assert.Equal("a=b+c", attrs[0].Value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("COLOR=red")]
    [InlineData("IDENT")]
    [InlineData("=x")]
    [InlineData("IDENT=a+4")]
    [InlineData("IDENT=a+zz")]
    [InlineData("IDENT=a=b")]
    [InlineData("IDENT=a+0Ab")]
    public void TryParseXforward_BadInput_FalseWithError(string argument)
    {
        Assert.False(SmtpParser.TryParseXforward(argument, out _, out var error));
        Assert.NotEmpty(error);
    }

    [Fact]
    public void TryParseXforward_ValueOver255_False() =>
        Assert.False(SmtpParser.TryParseXforward("NAME=" + new string('a', 256), out _, out _));

    [Fact]
    public async Task Intake_XforwardBeforeMail_IntakeEventCarriesPostfixQueueIdAndClient_NotKeptForNextMessage()
    {
        var sink = SmtpSink.Start("127.0.0.2");
        await using var _ = sink;
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("xf"), ("*@{d}", sink.Host, sink.Port, 10));
        await using var c = await RawSmtp.ConnectAsync(fx.Intake);
        await c.ReadReplyAsync();
        await c.WriteAsync("EHLO postfix.test\r\n");
        Assert.Contains("250-XFORWARD NAME ADDR PORT PROTO HELO IDENT SOURCE", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync("XFORWARD NAME=mx.remote.test ADDR=IPv6:2001:db8::9 PROTO=ESMTP\r\n");
        Assert.StartsWith("250 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync("XFORWARD HELO=mx.remote.test IDENT=4Q8ZxK1abcD SOURCE=REMOTE\r\n");
        Assert.StartsWith("250 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync("XFORWARD BOGUS=1\r\n");
        Assert.StartsWith("501 ", await c.ReadReplyAsync(), StringComparison.Ordinal);

        await c.WriteAsync("MAIL FROM:<a@remote.test>\r\n");
        Assert.StartsWith("250 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync("XFORWARD IDENT=LATE\r\n");
        Assert.StartsWith("503 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync($"RCPT TO:<b@{d}>\r\n");
        Assert.StartsWith("250 ", await c.ReadReplyAsync(), StringComparison.Ordinal);
        await c.WriteAsync("DATA\r\n");
        await c.ReadReplyAsync();
        await c.WriteAsync("Subject: one\r\n\r\nx\r\n.\r\n");
        var first = (await c.ReadReplyAsync()).Split(' ')[^1];

        // The next transaction without XFORWARD carries neither.
        await c.WriteAsync($"MAIL FROM:<a@remote.test>\r\nRCPT TO:<b@{d}>\r\nDATA\r\n");
        await c.ReadReplyAsync();
        await c.ReadReplyAsync();
        await c.ReadReplyAsync();
        await c.WriteAsync("Subject: two\r\n\r\nx\r\n.\r\n");
        var second = (await c.ReadReplyAsync()).Split(' ')[^1];

        var intake = await fx.WaitForLogAsync(d, e => e["event"] == "intake" && e["message_id"] == first, "first intake");
        Assert.Equal("4Q8ZxK1abcD", intake["postfix_queue_id"]);
        Assert.Equal("2001:db8::9", intake["client_address"]);
        var next = await fx.WaitForLogAsync(d, e => e["event"] == "intake" && e["message_id"] == second, "second intake");
        Assert.False(next.ContainsKey("postfix_queue_id"));
        Assert.Equal("127.0.0.1", next["client_address"]);
    }
}
