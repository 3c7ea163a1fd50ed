using Gateway.Core.Routing;
using Gateway.Core.Domains;
using Gateway.Core.Tls;

namespace Gateway.Core.Tests.Outbound;

/// <summary>TLS towards customer servers as a table (requirements §10; docs/outbound.md "TLS modes").</summary>
[Trait("Kind", "Unit")]
public sealed class TlsPolicyTests
{
    private static InboundServer Row(string host, int port, TlsMode tls, string? name = null, string recipient = "*@d.test") =>
        new(recipient, host, port, 10) { Tls = tls, TlsName = name };

    public static TheoryData<TlsMode, string?, TlsMode, string?> Rows => new()
    {
        // (first row's mode, its tls_name, expected mode, expected name) for host 192.0.2.1:25; a second row for the same host is opportunistic.
        { TlsMode.Opportunistic, null, TlsMode.Opportunistic, null },
        { TlsMode.Required, null, TlsMode.Required, null },
        { TlsMode.Verify, null, TlsMode.Verify, "192.0.2.1" },
        { TlsMode.Verify, "mx.customer.test", TlsMode.Verify, "mx.customer.test" },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void ForInboundHost_StrictestRowOfTheHostWins(TlsMode mode, string? name, TlsMode expected, string? expectedName)
    {
        var rows = new[] { Row("192.0.2.1", 25, TlsMode.Opportunistic, recipient: "a@d.test"), Row("192.0.2.1", 25, mode, name), Row("192.0.2.9", 25, TlsMode.Verify) };
        var requirement = TlsPolicy.ForInboundHost(rows, new RouteHost("192.0.2.1", 25));
        Assert.Equal(expected, requirement.Mode);
        Assert.Equal(expectedName, requirement.Name);
    }

    [Fact]
    public void ForInboundHost_OtherPortOrHost_NotAffected()
    {
        var rows = new[] { Row("192.0.2.1", 2525, TlsMode.Verify), Row("192.0.2.2", 25, TlsMode.Required) };
        Assert.Equal(TlsMode.Opportunistic, TlsPolicy.ForInboundHost(rows, new RouteHost("192.0.2.1", 25)).Mode);
        Assert.Equal(TlsMode.Required, TlsPolicy.ForInboundHost(rows, new RouteHost("192.0.2.2", 25)).Mode);
    }

    public static TheoryData<TlsMode, bool, string?, bool, string?> Observations => new()
    {
        // mode, STARTTLS offered, protocol, verified, expected reason fragment (null: met)
        { TlsMode.Opportunistic, false, null, false, null },
        { TlsMode.Opportunistic, true, "TLSv1.3", false, null },
        { TlsMode.Required, false, null, false, "does not offer STARTTLS" },
        { TlsMode.Required, true, null, false, "handshake failed" },
        { TlsMode.Required, true, "TLSv1.2", false, null },
        { TlsMode.Verify, false, null, false, "does not offer STARTTLS" },
        { TlsMode.Verify, true, "TLSv1.3", false, "certificate not verified" },
        { TlsMode.Verify, true, "TLSv1.3", true, null },
    };

    [Theory]
    [MemberData(nameof(Observations))]
    public void Unmet_Table(TlsMode mode, bool offered, string? protocol, bool verified, string? expected)
    {
        var unmet = TlsPolicy.Unmet(new TlsRequirement(mode, "mx.test", "test"), new TlsObservation(offered, protocol, verified, "reason"));
        if (expected is null)
        {
            Assert.Null(unmet);
        }
        else
        {
            Assert.Contains(expected, unmet, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(null, false, "none")]
    [InlineData("TLSv1.3", true, "TLSv1.3 verified")]
    [InlineData("TLSv1.2", false, "TLSv1.2 not verified")]
    public void Describe_LogWords(string? protocol, bool verified, string expected) =>
        Assert.Equal(expected, TlsPolicy.Describe(new TlsObservation(protocol is not null, protocol, verified, null)));
}
