using Gateway.Core.Domains;

namespace Gateway.Core.Tests;

[Trait("Kind", "Unit")]
public sealed class IpAddressTextTests
{
    [Theory]
    [InlineData("192.0.2.1", "192.0.2.1")]
    [InlineData(" 192.0.2.1 ", "192.0.2.1")]
    [InlineData("255.255.255.254", "255.255.255.254")]
    [InlineData("2001:DB8::1", "2001:db8::1")]
    [InlineData("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1")]
    [InlineData("::ffff:192.0.2.9", "192.0.2.9")]
    [InlineData("::1", "::1")]
    public void TryParseSingle_Valid_Canonical(string input, string expected)
    {
        Assert.True(IpAddressText.TryParseSingle(input, out var ip, out var error), error);
        Assert.Equal(expected, IpAddressText.Canonical(ip));
    }

    [Theory]
    [InlineData("", "required")]
    [InlineData("192.0.2.0/24", "CIDR")]
    [InlineData("2001:db8::/48", "CIDR")]
    [InlineData("192.0.2.1-192.0.2.5", "range")]
    [InlineData("192.0.2.*", "range")]
    [InlineData("192.0.2.1 192.0.2.2", "range")]
    [InlineData("fe80::1%2", "zone")]
    [InlineData("10.1", "IPv4")]
    [InlineData("1", "IPv4")]
    [InlineData("0x7f.0.0.1", "IPv4")]
    [InlineData("010.0.0.1", "IPv4")]
    [InlineData("256.0.0.1", "IPv4")]
    [InlineData("1.2.3.4.5", "IPv4")]
    [InlineData("1.2.3.", "IPv4")]
    [InlineData("2001:db8:::1", "IPv6")]
    public void TryParseSingle_Invalid_SaysWhy(string input, string reason)
    {
        Assert.False(IpAddressText.TryParseSingle(input, out _, out var error));
        Assert.Contains(reason, error, StringComparison.Ordinal);
    }
}
