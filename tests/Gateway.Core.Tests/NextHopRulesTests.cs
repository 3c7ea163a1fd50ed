using Gateway.Core.Domains;
using Gateway.Core.Relay;
using Gateway.Core.Snapshot;
using static Gateway.Core.Tests.RelayTestData;

namespace Gateway.Core.Tests;

/// <summary>The socketmap tables of requirements §5: managed domains and next hops, in both transport modes.</summary>
[Trait("Kind", "Unit")]
public sealed class NextHopRulesTests
{
    private const string Intake = "smtp:[127.0.0.1]:10025";

    /// <summary>requirements §3.5's normative worked example.</summary>
    private static readonly ConfigSnapshot Table = SnapshotOf(
        Domain("example.com", inbound: true, servers:
        [
            new InboundServer("*@example.com", "192.0.2.1", 25, 20),
            new InboundServer("john@example.com", "203.0.113.1", 25, 10),
            new InboundServer("sophie@example.com", "203.0.113.2", 25, 20),
            new InboundServer("taro@example.com", "198.51.100.1", 25, 50),
        ]),
        Domain("v6.example", inbound: true, servers:
        [
            new InboundServer("*@v6.example", "2001:db8::1", 25, 10),
            new InboundServer("*@v6.example", "mail.v6.example", 2525, 20),
        ]),
        Domain("outonly.example", inbound: false),
        Domain("sub.parent.example", inbound: true));

    [Theory]
    [InlineData("example.com")]
    [InlineData("EXAMPLE.COM")]
    [InlineData("outonly.example")]
    [InlineData("sub.parent.example")]
    public void ManagedDomain_Managed_Found(string key)
    {
        var answer = NextHopRules.ManagedDomain(key, Table);
        Assert.Equal(LookupStatus.Found, answer.Status);
    }

    [Theory]
    [InlineData("sub.example.com")]
    [InlineData(".example.com")]
    [InlineData("parent.example")]
    [InlineData("a@example.com")]
    [InlineData("unmanaged.example")]
    [InlineData("")]
    public void ManagedDomain_NotExactlyManaged_NotFound(string key)
    {
        Assert.Equal(LookupStatus.NotFound, NextHopRules.ManagedDomain(key, Table).Status);
    }

    [Fact]
    public void Lookups_NotLoaded_TryLater()
    {
        var empty = new ConfigSnapshot();
        Assert.Equal(LookupStatus.TryLater, NextHopRules.ManagedDomain("example.com", empty).Status);
        Assert.Equal(LookupStatus.TryLater, NextHopRules.Transport("a@example.com", empty, TransportMode.Deliverer, Intake).Status);
        Assert.Equal(LookupStatus.TryLater, NextHopRules.Transport("*", empty, TransportMode.Direct, Intake).Status);
    }

    [Theory]
    [InlineData("john@example.com")]
    [InlineData("John@Example.COM")]
    [InlineData("example.com")]
    public void Transport_DelivererMode_ManagedDomainsToIntake(string key)
    {
        var answer = NextHopRules.Transport(key, Table, TransportMode.Deliverer, Intake);
        Assert.Equal(LookupStatus.Found, answer.Status);
        Assert.Equal(Intake, answer.Value);
    }

    /// <summary>Outbound recipients fall through to Postfix's default_transport (the intake, but for Postfix's own bounces).</summary>
    [Theory]
    [InlineData("someone@gmail.example")]
    [InlineData("someone@sub.example.com")]
    public void Transport_DelivererMode_UnmanagedDomains_NotFound(string key)
    {
        Assert.Equal(LookupStatus.NotFound, NextHopRules.Transport(key, Table, TransportMode.Deliverer, Intake).Status);
    }

    [Theory]
    [InlineData("*")]
    [InlineData(".example.com")]
    [InlineData("user@")]
    public void Transport_WildcardAndPartialKeys_NotFound(string key)
    {
        Assert.Equal(LookupStatus.NotFound, NextHopRules.Transport(key, Table, TransportMode.Deliverer, Intake).Status);
        Assert.Equal(LookupStatus.NotFound, NextHopRules.Transport(key, Table, TransportMode.Direct, Intake).Status);
    }

    [Theory]
    [InlineData("john@example.com", "smtp:[203.0.113.1]:25, [192.0.2.1]:25")]
    [InlineData("JOHN@EXAMPLE.COM", "smtp:[203.0.113.1]:25, [192.0.2.1]:25")]
    [InlineData("taro@example.com", "smtp:[192.0.2.1]:25, [198.51.100.1]:25")]
    [InlineData("hanako@example.com", "smtp:[192.0.2.1]:25")]
    [InlineData("example.com", "smtp:[192.0.2.1]:25")]
    [InlineData("x@v6.example", "smtp:[2001:db8::1]:25, [mail.v6.example]:2525")]
    public void Transport_DirectMode_RouteInPreferenceOrder(string key, string expected)
    {
        var answer = NextHopRules.Transport(key, Table, TransportMode.Direct, Intake);
        Assert.Equal(LookupStatus.Found, answer.Status);
        Assert.Equal(expected, answer.Value);
    }

    [Fact]
    public void Transport_DirectMode_EqualPreferenceRotates()
    {
        var first = NextHopRules.Transport("sophie@example.com", Table, TransportMode.Direct, Intake, rotation: 0).Value;
        var second = NextHopRules.Transport("sophie@example.com", Table, TransportMode.Direct, Intake, rotation: 1).Value;

        Assert.NotEqual(first, second);
        string[] both = [first!, second!];
        Assert.Equal(["[192.0.2.1]:25", "[203.0.113.2]:25"], both.Select(v => v["smtp:".Length..].Split(", ")[0]).Order(StringComparer.Ordinal));
        Assert.All(both, v => Assert.Equal(2, v.Split(", ").Length));
    }

    [Theory]
    [InlineData("a@outonly.example")]
    [InlineData("a@gmail.example")]
    [InlineData("a@sub.example.com")]
    public void Transport_DirectMode_NotInboundManaged_NotFoundSoPostfixUsesMx(string key)
    {
        Assert.Equal(LookupStatus.NotFound, NextHopRules.Transport(key, Table, TransportMode.Direct, Intake).Status);
    }
}
