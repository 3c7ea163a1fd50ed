using System.Text;
using Gateway.Deliverer.Protection;

namespace Deliverer.Tests;

/// <summary>The intake's header changes after a scan (<see cref="ScanHeaders"/>) and the Authentication-Results it writes (<see cref="AuthResults"/>).</summary>
[Trait("Kind", "Unit")]
public sealed class ScanHeadersTests
{
    private const string Received = "Received: from client.test ([192.0.2.1])\r\n\tby gateway.test (gateway-deliverer) with ESMTP id X;\r\n\tSun, 06 Dec 2026 12:00:00 +0000\r\n";

    private static string Rewrite(string message, string added = "X-Added: 1\r\n", bool tag = false)
    {
        var bytes = Encoding.UTF8.GetBytes(message);
        return Encoding.UTF8.GetString(ScanHeaders.Rewrite(bytes, ScanHeaders.Parse(bytes), "gateway.test", added, tag));
    }

    [Fact]
    public void Parse_FoldedFieldsAndBody_OneFieldPerHeaderUpToTheEmptyLine()
    {
        var bytes = Encoding.UTF8.GetBytes(Received + "Subject: a\r\n b\r\nFrom: x@y\r\n\r\nNot: a header\r\n");
        var fields = ScanHeaders.Parse(bytes);
        Assert.Equal(["Received", "Subject", "From"], fields.Select(f => f.Name(bytes)));
        Assert.Equal("a b", fields[1].Value(bytes));
    }

    [Fact]
    public void Rewrite_AddsAfterTheFirstField_KeepsTheBodyByteForByte()
    {
        var body = "\r\nline one\r\n.dot\r\n\r\nX-Spam-Flag: YES\r\n";
        var result = Rewrite(Received + "Subject: hi\r\n" + body);
        Assert.Equal(Received + "X-Added: 1\r\nSubject: hi\r\n" + body, result);
    }

    [Theory]
    [InlineData("Authentication-Results: gateway.test; spf=pass\r\n", true)]
    [InlineData("Authentication-Results: GATEWAY.TEST 1; dkim=pass\r\n", true)]
    [InlineData("Authentication-Results: (comment) gateway.test;\r\n\tdkim=pass header.d=bank.example\r\n", true)]
    [InlineData("authentication-results:gateway.test;spf=pass\r\n", true)]
    [InlineData("Authentication-Results: \"gateway.test\"; spf=pass\r\n", true)]
    [InlineData("Authentication-Results: mx.gateway.test; spf=pass\r\n", false)]
    [InlineData("Authentication-Results: other.example; spf=pass\r\n", false)]
    [InlineData("X-Spam-Score: -50\r\n", true)]
    [InlineData("X-Spam-Flag: NO\r\n", true)]
    [InlineData("x-gateway-unscanned: pretend\r\n", true)]
    [InlineData("X-Spam-Status: No\r\n", false)]
    public void Rewrite_IncomingFieldsTheGatewayOwns_Removed_OthersKept(string field, bool removed)
    {
        var result = Rewrite(Received + field + "Subject: hi\r\n\r\nbody\r\n");
        Assert.Equal(removed ? Received + "X-Added: 1\r\nSubject: hi\r\n\r\nbody\r\n" : Received + "X-Added: 1\r\n" + field + "Subject: hi\r\n\r\nbody\r\n", result);
    }

    [Theory]
    [InlineData("Subject: offer\r\n", "Subject: [SPAM] offer\r\n")]
    [InlineData("Subject:offer\r\n", "Subject: [SPAM] offer\r\n")]
    [InlineData("SUBJECT:  two\r\n spaces\r\n", "SUBJECT:  [SPAM] two\r\n spaces\r\n")]
    [InlineData("Subject: =?UTF-8?B?w7xiZXI=?=\r\n", "Subject: [SPAM] =?UTF-8?B?w7xiZXI=?=\r\n")]
    public void Rewrite_Tag_PrefixesTheFirstSubject(string subject, string expected)
    {
        Assert.Contains(expected, Rewrite(Received + subject + "\r\nbody\r\n", tag: true), StringComparison.Ordinal);
    }

    [Fact]
    public void Rewrite_TagWithoutSubject_AddsOne()
    {
        Assert.StartsWith(Received + "X-Added: 1\r\nSubject: [SPAM]\r\nFrom: x@y\r\n", Rewrite(Received + "From: x@y\r\n\r\nbody\r\n", tag: true), StringComparison.Ordinal);
    }

    [Fact]
    public void Rewrite_HeaderOnlyMessageWithoutBody_StillRewritten()
    {
        Assert.Equal(Received + "X-Added: 1\r\nSubject: x\r\n", Rewrite(Received + "Subject: x\r\nX-Spam-Flag: NO\r\n"));
    }

    [Theory]
    [InlineData("gateway.test; spf=pass", "gateway.test")]
    [InlineData("  (a (nested) comment) gw.example 1 ; none", "gw.example")]
    [InlineData("\"quoted.example\"; none", "quoted.example")]
    [InlineData("", "")]
    public void AuthServId_FirstTokenCommentsSkipped(string value, string expected) => Assert.Equal(expected, ScanHeaders.AuthServId(value));

    [Theory]
    [InlineData("From: Alice <alice@Example.COM>\r\n", "example.com")]
    [InlineData("From: alice@sub.example.org.\r\n", "sub.example.org")]
    [InlineData("From: \"x, y\" <a@one.example>, b@two.example\r\n", "one.example")]
    [InlineData("From: undisclosed\r\n", null)]
    [InlineData("Sender: a@b.example\r\n", null)]
    public void FromDomain_FirstMailboxOfTheHeaderFrom(string field, string? expected)
    {
        var bytes = Encoding.UTF8.GetBytes(Received + field + "\r\nbody");
        Assert.Equal(expected, ScanHeaders.FromDomain(bytes, ScanHeaders.Parse(bytes)));
    }

    [Fact]
    public void AuthResults_FromRspamdSymbols_Rfc8601Header()
    {
        var r = new RspamdResult("no action", 1, 15,
        [
            new RspamdSymbol("R_SPF_ALLOW", -0.2, ["+ip4:192.0.2.1"]),
            new RspamdSymbol("DKIM_TRACE", 0, ["example.com:+", "bulk.example:-"]),
            new RspamdSymbol("DMARC_POLICY_ALLOW", -0.5, ["example.com", "reject"]),
            new RspamdSymbol("ARC_NA", 0, []),
        ], false);
        var a = AuthResults.From(r);
        Assert.Equal("pass", a.Spf);
        Assert.Equal([new DkimResult("example.com", "pass"), new DkimResult("bulk.example", "fail")], a.Dkim);
        Assert.Equal("pass", a.Dmarc);
        Assert.Equal(
            "Authentication-Results: gateway.test;\r\n\tdkim=pass header.d=example.com;\r\n\tdkim=fail header.d=bulk.example;\r\n\tspf=pass smtp.mailfrom=alice@example.com;\r\n\tdmarc=pass header.from=example.com;\r\n\tarc=none\r\n",
            a.Header("gateway.test", "alice@example.com", "mx.example.com", "example.com"));
    }

    [Fact]
    public void AuthResults_NullSenderAndFailures_HeloAndPolicyNamed_OddValuesQuoted()
    {
        var r = new RspamdResult("add header", 8, 15, [new RspamdSymbol("R_SPF_SOFTFAIL", 0, []), new RspamdSymbol("DMARC_POLICY_QUARANTINE", 0, [])], false);
        var header = AuthResults.From(r).Header("gw", string.Empty, "helo name", "x.example");
        Assert.Equal("Authentication-Results: gw;\r\n\tdkim=none;\r\n\tspf=softfail smtp.helo=\"helo name\";\r\n\tdmarc=fail (policy=quarantine) header.from=x.example\r\n", header);
    }

    [Theory]
    [InlineData("example.com", "example.com", true)]
    [InlineData("mail.example.com", "example.com", true)]
    [InlineData("example.com", "news.EXAMPLE.com", true)]
    [InlineData("example.com.", "example.com", true)]
    [InlineData("badexample.com", "example.com", false)]
    [InlineData("example.com.evil.test", "example.com", false)]
    public void Aligned_SameOrSubdomain(string a, string b, bool expected) => Assert.Equal(expected, AuthResults.Aligned(a, b));
}
