using System.Net;
using Gateway.Core.Relay;
using Gateway.Core.Domains;

namespace Gateway.Core.Tests;

[Trait("Kind", "Unit")]
public sealed class IpRangeSetTests
{
    private static readonly IpRangeSet Set = IpRangeSet.Parse(["40.92.0.0/15", "40.107.0.0/16", "104.47.0.0/17", "192.0.2.7", "2a01:111:f400::/48", "2001:db8::1"]);

    [Theory]
    [InlineData("40.92.0.0", true)]
    [InlineData("40.93.255.255", true)]
    [InlineData("40.94.0.0", false)]
    [InlineData("40.91.255.255", false)]
    [InlineData("40.107.3.4", true)]
    [InlineData("104.47.127.255", true)]
    [InlineData("104.47.128.0", false)]
    [InlineData("192.0.2.7", true)]
    [InlineData("192.0.2.8", false)]
    [InlineData("::ffff:40.92.1.1", true)]
    [InlineData("2a01:111:f400::", true)]
    [InlineData("2a01:111:f400:ffff:ffff:ffff:ffff:ffff", true)]
    [InlineData("2a01:111:f401::", false)]
    [InlineData("2001:db8::1", true)]
    [InlineData("2001:db8::2", false)]
    public void Contains_Boundaries(string address, bool expected)
    {
        Assert.Equal(expected, Set.Contains(IPAddress.Parse(address)));
    }

    [Fact]
    public void Create_OverlappingAndAdjacent_Merged()
    {
        var set = IpRangeSet.Parse(["10.0.0.0/24", "10.0.1.0/24", "10.0.0.128/25", "0.0.0.0/0"]);
        Assert.True(set.Contains(IPAddress.Parse("255.255.255.255")));
        Assert.True(set.Contains(IPAddress.Parse("0.0.0.0")));
        Assert.False(set.Contains(IPAddress.Parse("::1")));
        Assert.True(IpRangeSet.Empty.IsEmpty);
        Assert.False(IpRangeSet.Empty.Contains(IPAddress.Loopback));
    }

    [Theory]
    [InlineData("192.0.2.77/24", "192.0.2.0/24")]
    [InlineData("2001:db8::ff/64", "2001:db8::/64")]
    [InlineData(" 192.0.2.1 ", "192.0.2.1/32")]
    public void TryParseNetwork_HostBitsCleared(string text, string canonical)
    {
        Assert.True(IpRangeSet.TryParseNetwork(text, out var n));
        Assert.Equal(canonical, n.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("10.1/8")]
    [InlineData("192.0.2.0/33")]
    [InlineData("2001:db8::/129")]
    [InlineData("192.0.2.0/")]
    [InlineData("192.0.2.0/-1")]
    [InlineData("192.0.2.0/+8")]
    [InlineData("fe80::1%eth0")]
    [InlineData("example.com")]
    public void TryParseNetwork_Invalid_False(string text)
    {
        Assert.False(IpRangeSet.TryParseNetwork(text, out _));
    }

    [Fact]
    public void Shipped_ProviderRanges_LoadWithSourceAndDate()
    {
        var shipped = ProviderRanges.Shipped;
        Assert.True(shipped.Office365.Contains(IPAddress.Parse("40.92.10.10")));
        Assert.True(shipped.Office365.Contains(IPAddress.Parse("2a01:111:f400::1")));
        Assert.True(shipped.GoogleWorkspace.Contains(IPAddress.Parse("209.85.220.41")));
        Assert.True(shipped.GoogleWorkspace.Contains(IPAddress.Parse("2a00:1450:4864::1")));
        Assert.False(shipped.Office365.Contains(IPAddress.Parse("209.85.220.41")));
        Assert.Contains("spf.protection.outlook.com", shipped.Office365Info.Source, StringComparison.Ordinal);
        Assert.Contains("_spf.google.com", shipped.GoogleWorkspaceInfo.Source, StringComparison.Ordinal);
        Assert.True(shipped.Office365Info.AsOf > new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero));
    }
}
