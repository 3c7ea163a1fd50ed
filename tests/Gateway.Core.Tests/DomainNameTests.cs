using Gateway.Core.Domains;

namespace Gateway.Core.Tests;

[Trait("Kind", "Unit")]
public sealed class DomainNameTests
{
    [Theory]
    [InlineData("example.com", "example.com")]
    [InlineData("EXAMPLE.COM", "example.com")]
    [InlineData("example.com.", "example.com")]
    [InlineData("  Sales.Example.COM.  ", "sales.example.com")]
    [InlineData("bücher.example", "xn--bcher-kva.example")]
    [InlineData("BÜCHER.example", "xn--bcher-kva.example")]
    [InlineData("xn--bcher-kva.example", "xn--bcher-kva.example")]
    [InlineData("例え.テスト", "xn--r8jz45g.xn--zckzah")]
    [InlineData("ＥＸＡＭＰＬＥ.com", "example.com")]
    [InlineData("a-b.c-d.example", "a-b.c-d.example")]
    [InlineData("123.example", "123.example")]
    public void TryNormalize_Valid_ReturnsALabelLowerCase(string input, string expected)
    {
        Assert.True(DomainName.TryNormalize(input, out var n, out var error), error);
        Assert.Equal(expected, n);
    }

    [Theory]
    [InlineData(null, "required")]
    [InlineData("", "required")]
    [InlineData("*.example.com", "wildcard")]
    [InlineData("a.*.example.com", "wildcard")]
    [InlineData("192.0.2.1", "IP address")]
    [InlineData("192.0.2.1.", "IP address")]
    [InlineData("[192.0.2.1]", "IP address")]
    [InlineData("::1", "IP address")]
    [InlineData("[IPv6:2001:db8::1]", "IP address")]
    [InlineData("example", "single label")]
    [InlineData(".example.com", "empty label")]
    [InlineData("example..com", "empty label")]
    [InlineData("example.com..", "empty label")]
    [InlineData("ex ample.com", "white space")]
    [InlineData("ex_ample.com", "contains '_'")]
    [InlineData("-example.com", "hyphen")]
    [InlineData("example-.com", "hyphen")]
    [InlineData("user@example.com", "email address")]
    [InlineData("xn--zz.com", "not a valid domain name")]
    public void TryNormalize_Invalid_SaysWhy(string? input, string reason)
    {
        Assert.False(DomainName.TryNormalize(input, out _, out var error));
        Assert.Contains(reason, error, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void TryNormalize_Lengths_LabelOf63AndNameOf253Accepted_LongerRefused()
    {
        var label63 = new string('a', 63);
        Assert.True(DomainName.TryNormalize(label63 + ".com", out _, out _));
        Assert.False(DomainName.TryNormalize(new string('a', 64) + ".com", out _, out _));

        var name253 = string.Join('.', Enumerable.Repeat(new string('b', 49), 5)) + ".abc"; // 5*50 + 3
        Assert.Equal(253, name253.Length);
        Assert.True(DomainName.TryNormalize(name253, out _, out var e1), e1);
        Assert.False(DomainName.TryNormalize("c" + name253, out _, out _));
    }

    [Theory]
    [InlineData("example.com", "example.com", true)]
    [InlineData("mail.example.com", "example.com", true)]
    [InlineData("badexample.com", "example.com", false)]
    [InlineData("example.com", "mail.example.com", false)]
    public void IsSameOrSubdomain(string name, string parent, bool expected) => Assert.Equal(expected, DomainName.IsSameOrSubdomain(name, parent));
}
