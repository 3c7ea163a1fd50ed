using System.Net;
using Gateway.ControlPlane.Application;
using Gateway.Core;
using Gateway.Core.Delivery;
using Gateway.Core.Domains;
using Gateway.Core.Errors;

namespace ControlPlane.Tests;

/// <summary>An inbound row pointing at the gateway itself is refused at save (requirements §3.7: loops).</summary>
[Trait("Kind", "Unit")]
public sealed class DomainValidatorLoopTests
{
    private static readonly GatewayOptions Options = new()
    {
        GatewayDomain = "gw.example.net", AllowLoopbackDestinations = true, SendingAddresses = ["198.51.100.25", "2001:db8::25"],
    };

    private static readonly GatewaySelf Self = new([IPEndPoint.Parse("127.0.0.1:10025"), IPEndPoint.Parse("192.0.2.50:2525")],
        [IPAddress.Parse("198.51.100.25"), IPAddress.Parse("2001:db8::25")], ["gw1.example.org"], "gw.example.net");

    [Theory]
    // host, port → refused
    [InlineData("acme.in.gw.example.net", 25, true)] // a tenant MX host of this gateway
    [InlineData("relay.gw.example.net", 25, true)] // the relay host
    [InlineData("gw.example.net", 25, true)]
    [InlineData("GW1.example.org.", 25, true)] // the gateway's own host name
    [InlineData("198.51.100.25", 25, true)] // a sending address, any port
    [InlineData("2001:db8::25", 587, true)]
    [InlineData("::ffff:198.51.100.25", 25, true)] // IPv4-mapped: no way around
    [InlineData("127.0.0.1", 10025, true)] // the intake's listener
    [InlineData("192.0.2.50", 2525, true)]
    [InlineData("127.0.0.1", 2525, false)] // loopback allowed here (tests); another port is no loop
    [InlineData("192.0.2.50", 25, false)]
    [InlineData("mx.example.com", 25, false)]
    [InlineData("gw.example.net.example.com", 25, false)]
    [InlineData("notgw.example.net.org", 25, false)]
    public void InboundRow_PointingAtTheGateway_Refused(string host, int port, bool refused)
    {
        var violations = new List<FieldViolation>();
        var settings = new DomainValidator(Options, Self).NormalizeSettings("example.com",
            new DomainSettings(true, [new InboundServer("*@example.com", host, port, 10)], OutboundSettings.Disabled), "domain", violations);
        if (refused)
        {
            var v = Assert.Single(violations);
            Assert.Equal("domain.inbound_servers[0].host", v.Field);
            Assert.Contains("loop back", v.Description, StringComparison.Ordinal);
            Assert.Empty(settings.InboundServers);
        }
        else
        {
            Assert.Empty(violations);
            Assert.Single(settings.InboundServers);
        }
    }

    [Fact]
    public void WithoutSelf_GatewayDomainAndSendingAddressesStillRefused()
    {
        var violations = new List<FieldViolation>();
        new DomainValidator(Options).NormalizeSettings("example.com", new DomainSettings(true,
        [
            new InboundServer("*@example.com", "x.in.gw.example.net", 25, 10), new InboundServer("*@example.com", "198.51.100.25", 25, 20),
            new InboundServer("*@example.com", "mx.example.com", 25, 30),
        ], OutboundSettings.Disabled), "domain", violations);
        Assert.Equal(["domain.inbound_servers[0].host", "domain.inbound_servers[1].host"], violations.Select(v => v.Field));
    }
}
