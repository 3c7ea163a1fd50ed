using System.Net;
using Gateway.Core.Domains;

namespace Gateway.Core.Tests;

/// <summary>DestinationFilter (security review H2): every spelling of a forbidden address is refused; settings open loopback and close private ranges.</summary>
[Trait("Kind", "Unit")]
public sealed class DestinationFilterTests
{
    private static DestinationFilter Filter(bool loopback = false, bool @private = true, params string[] own) =>
        new(new GatewayOptions { AllowLoopbackDestinations = loopback, AllowPrivateDestinations = @private }, () => own.Select(IPAddress.Parse).ToList());

    [Theory]
    [InlineData("127.0.0.1", "loopback")]
    [InlineData("127.3.2.1", "loopback")]
    [InlineData("::1", "loopback")]
    [InlineData("::ffff:127.0.0.1", "loopback")]
    [InlineData("::127.0.0.1", "loopback")]
    [InlineData("64:ff9b::127.0.0.1", "loopback")]
    [InlineData("0.0.0.0", "unspecified")]
    [InlineData("0.1.2.3", "unspecified")]
    [InlineData("::", "unspecified")]
    [InlineData("::ffff:0.0.0.0", "unspecified")]
    [InlineData("169.254.169.254", "link-local")]
    [InlineData("::ffff:169.254.169.254", "link-local")]
    [InlineData("fe80::1", "link-local")]
    [InlineData("fe80::1%2", "link-local")]
    [InlineData("224.0.0.1", "multicast")]
    [InlineData("ff02::1", "multicast")]
    [InlineData("::ffff:239.1.2.3", "multicast")]
    [InlineData("255.255.255.255", "reserved")]
    [InlineData("240.0.0.1", "reserved")]
    public void Refusal_ForbiddenInAnySpelling(string address, string kind) =>
        Assert.Equal($"a {kind} address", Filter().Refusal(IPAddress.Parse(address))?.Split(' ').Take(2).Aggregate((a, b) => a + " " + b) + " address");

    [Theory]
    [InlineData("10.1.2.3")]
    [InlineData("172.16.0.1")]
    [InlineData("172.31.255.255")]
    [InlineData("192.168.1.1")]
    [InlineData("100.64.0.1")]
    [InlineData("fd00::1")]
    [InlineData("::ffff:10.0.0.1")]
    public void Refusal_PrivateAllowedByDefault_RefusedWhenTurnedOff(string address)
    {
        Assert.Null(Filter().Refusal(IPAddress.Parse(address)));
        Assert.Equal("a private address (Gateway:AllowPrivateDestinations is off)", Filter(@private: false).Refusal(IPAddress.Parse(address)));
    }

    [Theory]
    [InlineData("192.0.2.1")]
    [InlineData("172.32.0.1")]
    [InlineData("2001:db8::1")]
    [InlineData("::ffff:198.51.100.7")]
    public void Refusal_PublicAllowed(string address) => Assert.Null(Filter(@private: false).Refusal(IPAddress.Parse(address)));

    [Fact]
    public void Refusal_LoopbackOnlyWithTheSetting_AllSpellings()
    {
        foreach (var a in new[] { "127.0.0.1", "::1", "::ffff:127.0.0.1" })
        {
            Assert.Null(Filter(loopback: true).Refusal(IPAddress.Parse(a)));
            Assert.Equal("a loopback address (Gateway:AllowLoopbackDestinations is off)", Filter().Refusal(IPAddress.Parse(a)));
        }
    }

    [Fact]
    public void Refusal_OwnAddresses_InAnySpelling_EvenWhenPrivateAllowed()
    {
        var filter = Filter(own: ["10.0.0.5", "2001:db8::5"]);
        Assert.Equal("an address of this gateway host", filter.Refusal(IPAddress.Parse("10.0.0.5")));
        Assert.Equal("an address of this gateway host", filter.Refusal(IPAddress.Parse("::ffff:10.0.0.5")));
        Assert.Equal("an address of this gateway host", filter.Refusal(IPAddress.Parse("2001:db8::5")));
        Assert.Null(filter.Refusal(IPAddress.Parse("10.0.0.6")));
    }
}
