using System.Net;
using Gateway.Core.Spf;
using Gateway.ControlPlane.Spf;

namespace Gateway.Core.Tests.Spf;

/// <summary>Record parsing and macro expansion as pure functions over strings (RFC 7208 §4.5, §4.6, §5, §7).</summary>
[Trait("Kind", "Unit")]
public sealed class SpfParsingTests
{
    [Theory]
    [InlineData("v=spf1", true)]
    [InlineData("v=spf1 -all", true)]
    [InlineData("V=SPF1 ~all", true)]
    [InlineData("v=spf10", false)]
    [InlineData("v=spf1mx", false)]
    [InlineData("tmes=0123", false)]
    [InlineData(" v=spf1 -all", false)]
    public void IsSpfRecord_VersionFollowedBySpaceOrEnd(string text, bool expected) => Assert.Equal(expected, SpfRecord.IsSpfRecord(text));

    [Fact]
    public void TryParse_FullRecord_MechanismsQualifiersAndModifiers()
    {
        Assert.True(SpfRecord.TryParse("v=spf1 +a -mx:mail.example.com/24//64 ~ip4:192.0.2.0/24 ?ip6:2001:db8::/32 include:_spf.gw.example exists:%{i}.bl.example ptr all redirect=other.example exp=why.example x-unknown=%{d}",
            out var record, out var error), error);
        Assert.Collection(record.Mechanisms,
            m => Assert.Equal((SpfResult.Pass, SpfMechanismKind.A, null), (m.Qualifier, m.Kind, m.DomainSpec)),
            m =>
            {
                Assert.Equal((SpfResult.Fail, SpfMechanismKind.Mx, "mail.example.com"), (m.Qualifier, m.Kind, m.DomainSpec));
                Assert.Equal((24, 64), (m.Cidr4, m.Cidr6));
            },
            m => Assert.Equal((SpfResult.SoftFail, SpfMechanismKind.Ip4, IPAddress.Parse("192.0.2.0"), 24), (m.Qualifier, m.Kind, m.Network, m.Cidr4)),
            m => Assert.Equal((SpfResult.Neutral, SpfMechanismKind.Ip6, IPAddress.Parse("2001:db8::"), 32), (m.Qualifier, m.Kind, m.Network, m.Cidr6)),
            m => Assert.Equal((SpfMechanismKind.Include, "_spf.gw.example", true), (m.Kind, m.DomainSpec, m.QueriesDns)),
            m => Assert.Equal((SpfMechanismKind.Exists, "%{i}.bl.example"), (m.Kind, m.DomainSpec)),
            m => Assert.Equal((SpfMechanismKind.Ptr, null), (m.Kind, m.DomainSpec)),
            m => Assert.Equal((SpfMechanismKind.All, false), (m.Kind, m.QueriesDns)));
        Assert.Equal("other.example", record.Redirect);
        Assert.Equal("why.example", record.Explanation);
    }

    [Theory]
    [InlineData("v=spf1 ip4:192.0.2.1 moo", "unknown mechanism 'moo'")]
    [InlineData("v=spf1 include", "'include' needs ':' and a domain")]
    [InlineData("v=spf1 a:example.com:8080", "does not end in a valid top-level label")]
    [InlineData("v=spf1 ip4:192.0.2.1/33", "not a valid prefix length")]
    [InlineData("v=spf1 ip4:010.0.0.1", "is not an IPv4 address")]
    [InlineData("v=spf1 redirect=a.example redirect=b.example", "'redirect=' appears more than once")]
    [InlineData("v=spf1 exists:%{x}.example.com", "unknown macro letter 'x'")]
    [InlineData("v=spf1 exists:%{c}.example.com", "only allowed in explanation text")]
    [InlineData("v=spf1 a:%{d0}.example.com", "must not be zero")]
    [InlineData("v=spf1 a\t-all", "not printable ASCII")]
    [InlineData("v=spf1 -all/8", "'all' takes no argument")]
    public void TryParse_SyntaxError_SaysWhat(string text, string expected)
    {
        Assert.False(SpfRecord.TryParse(text, out _, out var error));
        Assert.Contains(expected, error, StringComparison.Ordinal);
    }

    // RFC 7208 §7.4's examples: sender strong-bad@email.example.com, client 192.0.2.3 or 2001:db8::cb01.
    [Theory]
    [InlineData("%{s}", "strong-bad@email.example.com")]
    [InlineData("%{o}", "email.example.com")]
    [InlineData("%{d}", "email.example.com")]
    [InlineData("%{d4}", "email.example.com")]
    [InlineData("%{d3}", "email.example.com")]
    [InlineData("%{d2}", "example.com")]
    [InlineData("%{d1}", "com")]
    [InlineData("%{dr}", "com.example.email")]
    [InlineData("%{d2r}", "example.email")]
    [InlineData("%{l}", "strong-bad")]
    [InlineData("%{l-}", "strong.bad")]
    [InlineData("%{lr}", "strong-bad")]
    [InlineData("%{lr-}", "bad.strong")]
    [InlineData("%{l1r-}", "strong")]
    [InlineData("%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com")]
    [InlineData("%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com")]
    [InlineData("%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", "bad.strong.lp.3.2.0.192.in-addr._spf.example.com")]
    [InlineData("%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", "3.2.0.192.in-addr.strong.lp._spf.example.com")]
    [InlineData("%{d2}.trusted-domains.example.net", "example.com.trusted-domains.example.net")]
    [InlineData("%%%_%-", "% %20")]
    [InlineData("%{L}.x", "strong-bad.x")]
    public void Expand_Rfc7208Examples(string spec, string expected)
    {
        var context = new SpfMacroContext("strong-bad@email.example.com", "email.example.com", IPAddress.Parse("192.0.2.3"), "mail.example.com");
        Assert.Equal(expected, SpfMacro.Expand(spec, context));
    }

    [Fact]
    public void Expand_Ipv6_DotFormatNibbles()
    {
        var context = new SpfMacroContext("strong-bad@email.example.com", "email.example.com", IPAddress.Parse("2001:db8::cb01"), "mail.example.com");
        Assert.Equal("1.0.b.c.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6._spf.example.com",
            SpfMacro.Expand("%{ir}.%{v}._spf.%{d2}", context));
    }

    [Fact]
    public void Expand_UpperCaseLetter_UrlEscapes()
    {
        var context = new SpfMacroContext("~jack&jill=up@example.com", "example.com", IPAddress.Parse("192.0.2.3"), "h");
        Assert.Equal("~jack%26jill%3Dup", SpfMacro.Expand("%{L}", context));
    }

    [Fact]
    public void ExpandDomain_LongerThan253_DropsLabelsOnTheLeft()
    {
        var sender = "x@" + string.Join('.', Enumerable.Repeat("abcdefghij", 20)) + ".example";
        var context = new SpfMacroContext(sender, "example.com", IPAddress.Parse("192.0.2.3"), "h");
        var name = SpfMacro.ExpandDomain("%{o}.%{o}.example.com", context);
        Assert.True(name.Length <= 253, name);
        Assert.EndsWith(".example.example.com", name, StringComparison.Ordinal);
        Assert.DoesNotMatch("^\\.", name);
    }
}
