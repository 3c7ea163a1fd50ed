using System.Net;
using Gateway.Core.Delivery;
using Gateway.Core.Domains;
using Gateway.Core.Mail;
using Gateway.Core.Routing;

namespace Gateway.Core.Tests;

/// <summary>The route choice of one attempt as tables (requirements §3.5, §6.4, §6.5): batches, host order, endpoints, loops, the address cap.</summary>
[Trait("Kind", "Unit")]
public sealed class RouteChoiceTests
{
    private static readonly InboundServer[] Seed =
    [
        new("*@example.com", "192.0.2.1", 25, 20),
        new("john@example.com", "203.0.113.1", 25, 10),
        new("sophie@example.com", "203.0.113.2", 25, 20),
        new("taro@example.com", "198.51.100.1", 25, 50),
    ];

    private static QueuedMessage Message(Direction direction, params string[] recipients) => new()
    {
        Id = "m1",
        Domain = "example.com",
        Direction = direction,
        Sender = "a@remote.test",
        Recipients = recipients.Select(r => new QueuedRecipient { Address = r }).ToList(),
        CreateTime = DateTimeOffset.UnixEpoch,
        NextAttempt = DateTimeOffset.UnixEpoch,
    };

    private static string Describe(RouteBatch b) =>
        string.Join(',', b.Recipients) + " -> " + (b.Outcome is { } o ? o.Kind + ": " + o.Reply : b.Destination switch
        {
            InboundDestination i => "inbound " + i.Domain + " " + RoutePlanner.PlanKey(i.Plan).Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
            OutboundDestination d => "outbound " + d.Domain,
            _ => "?",
        });

    [Fact]
    public void Batches_Inbound_SameRouteTogether_OtherRoutesApart()
    {
        var snapshot = RelayTestData.SnapshotOf(RelayTestData.Domain("example.com", inbound: true, servers: Seed));
        var batches = RouteChoice.Batches(Message(Direction.Inbound, "hanako@example.com", "john@example.com", "kenji@example.com", "sophie@example.com"), snapshot);
        Assert.Equal(3, batches.Count);
        Assert.Equal(["hanako@example.com", "kenji@example.com"], batches.Single(b => b.Recipients.Count == 2).Recipients);
        Assert.All(batches, b => Assert.Equal("example.com", Assert.IsType<InboundDestination>(b.Destination).Domain));
        Assert.All(batches, b => Assert.Null(b.Outcome));
    }

    [Theory]
    [InlineData(true, false, "a@elsewhere.test,b@elsewhere.test -> outbound elsewhere.test")]
    [InlineData(false, false, "a@elsewhere.test,b@elsewhere.test -> Transient: Outbound is disabled for example.com: held until outbound is turned on again")]
    [InlineData(false, true, "a@elsewhere.test,b@elsewhere.test -> outbound elsewhere.test")] // the gateway's own DSN is not the customer's outbound mail
    public void Batches_Outbound_HeldWhileTheDomainsOutboundIsOff(bool outboundOn, bool isDsn, string expected)
    {
        var outbound = outboundOn ? new OutboundSettings(true, false, false, ["192.0.2.10"]) : OutboundSettings.Disabled;
        var snapshot = RelayTestData.SnapshotOf(RelayTestData.Domain("example.com", verified: true, outbound: outbound));
        var message = Message(Direction.Outbound, "a@elsewhere.test", "b@elsewhere.test") with { IsDsn = isDsn };
        var batches = RouteChoice.Batches(message, snapshot);
        Assert.Equal(expected, Describe(batches.Single()));
        Assert.Equal(!outboundOn && !isDsn, batches.Single().Held);
    }

    public static TheoryData<string, bool, string> InboundImmediate => new()
    {
        // recipient, inbound on, expected outcome
        { "x@unmanaged.test", true, "Transient: No inbound route: unmanaged.test is not a managed domain (any more)" },
        { "x@example.com", false, "Transient: No inbound route: inbound is disabled for example.com" },
    };

    [Theory]
    [MemberData(nameof(InboundImmediate))]
    public void Batches_InboundWithoutRoute_DeferredWithoutConnection(string recipient, bool inbound, string expected)
    {
        var snapshot = RelayTestData.SnapshotOf(RelayTestData.Domain("example.com", inbound: inbound, servers: Seed));
        var b = Assert.Single(RouteChoice.Batches(Message(Direction.Inbound, recipient), snapshot));
        Assert.Equal(recipient + " -> " + expected, Describe(b));
    }

    [Fact]
    public void Batches_InboundNoRowMatches_Deferred()
    {
        var snapshot = RelayTestData.SnapshotOf(RelayTestData.Domain("example.com", inbound: true, servers: [new("ann@example.com", "192.0.2.1", 25, 10)]));
        var b = Assert.Single(RouteChoice.Batches(Message(Direction.Inbound, "bob@example.com"), snapshot));
        Assert.Equal(new DeliveryOutcome(OutcomeKind.Transient, "No inbound server of example.com matches bob@example.com"), b.Outcome);
    }

    [Fact]
    public void Batches_OnlyPendingRecipients()
    {
        var snapshot = RelayTestData.SnapshotOf(RelayTestData.Domain("example.com", inbound: true, servers: Seed));
        var m = Message(Direction.Inbound, "a@example.com", "b@example.com", "c@example.com");
        m = m with { Recipients = [m.Recipients[0] with { State = RecipientState.Delivered }, m.Recipients[1], m.Recipients[2] with { State = RecipientState.Failed }] };
        Assert.Equal(["b@example.com"], Assert.Single(RouteChoice.Batches(m, snapshot)).Recipients);
    }

    [Fact]
    public void Batches_Outbound_OneBatchPerRecipientDomain_CaseFolded()
    {
        var snapshot = RelayTestData.SnapshotOf();
        var batches = RouteChoice.Batches(Message(Direction.Outbound, "a@one.test", "b@TWO.test", "c@two.test", "noDomain"), snapshot);
        Assert.Equal(
            ["a@one.test -> outbound one.test", "b@TWO.test,c@two.test -> outbound two.test", "noDomain -> Permanent: 550 5.1.3 Recipient address has no domain"],
            batches.Select(Describe));
    }

    [Theory]
    [InlineData("sophie@example.com", 0, "192.0.2.1,203.0.113.2")]
    [InlineData("sophie@example.com", 1, "203.0.113.2,192.0.2.1")]
    [InlineData("john@example.com", 1, "203.0.113.1,192.0.2.1")]
    [InlineData("taro@example.com", 3, "192.0.2.1,198.51.100.1")]
    public void Hosts_TurnRotatesGroupsOfSeveralHosts(string recipient, long turn, string expected)
    {
        var snapshot = RelayTestData.SnapshotOf(RelayTestData.Domain("example.com", inbound: true, servers: Seed));
        var destination = Assert.IsType<InboundDestination>(Assert.Single(RouteChoice.Batches(Message(Direction.Inbound, recipient), snapshot)).Destination);
        var turns = destination.TurnsNeeded.ToDictionary(g => g.Key, _ => turn);
        Assert.Equal(expected, string.Join(',', RouteChoice.Hosts(destination, turns).Select(h => h.Host)));
    }

    private static Resolution Addresses(string name, int port, params string[] ips) =>
        new(ips.Select(ip => new Endpoint(name, new IPEndPoint(IPAddress.Parse(ip), port))).ToList(), null);

    private static readonly GatewaySelf Self = new([IPEndPoint.Parse("127.0.0.1:10025")], [IPAddress.Parse("198.51.100.25")], ["gw1.gateway.test"], "gateway.test");

    public static TheoryData<string, string> InboundEndpointTable => new()
    {
        // hosts as "name=ip,ip|name=!" (! = did not resolve) -> endpoints, "X" marking a failure
        { "a.test=192.0.2.1,192.0.2.2|b.test=192.0.2.3", "a.test[192.0.2.1]:25 a.test[192.0.2.2]:25 b.test[192.0.2.3]:25" },
        { "a.test=!|b.test=192.0.2.3", "a.test:25 X(Transient) b.test[192.0.2.3]:25" },
        // The gateway's own address (any port), its intake, a mapped spelling of the intake, its names: a loop, and nothing after it.
        { "a.test=198.51.100.25|b.test=192.0.2.3", "a.test[198.51.100.25]:25 X(Permanent)" },
        { "a.test=192.0.2.1|x.in.gateway.test=192.0.2.9|b.test=192.0.2.3", "a.test[192.0.2.1]:25 x.in.gateway.test:25 X(Permanent)" },
        { "GW1.gateway.test.=192.0.2.9", "GW1.gateway.test.:25 X(Permanent)" },
        // Cap: at most 4 addresses in this table.
        { "a.test=192.0.2.1,192.0.2.2,192.0.2.3|b.test=192.0.2.4,192.0.2.5|c.test=!", "a.test[192.0.2.1]:25 a.test[192.0.2.2]:25 a.test[192.0.2.3]:25 b.test[192.0.2.4]:25" },
    };

    [Theory]
    [MemberData(nameof(InboundEndpointTable))]
    public void InboundEndpoints_OrderFailuresLoopsAndCap(string hosts, string expected)
    {
        var resolved = hosts.Split('|').Select(h =>
        {
            var (name, ips) = (h.Split('=')[0], h.Split('=')[1]);
            var host = new RouteHost(name, 25);
            return (host, ips == "!" ? Resolution.Fail(DeliveryOutcome.Transient("not found")) : Addresses(name, 25, ips.Split(',')));
        }).ToList();
        var endpoints = RouteChoice.InboundEndpoints("example.com", resolved, Self, maxAddresses: 4);
        Assert.Equal(expected, string.Join(' ', endpoints.Select(e => e.ToString() + (e.Failure is { } f ? " X(" + f.Kind + ")" : string.Empty))));
    }

    [Theory]
    [InlineData("127.0.0.1", 10025, true)]
    [InlineData("::ffff:127.0.0.1", 10025, true)]
    [InlineData("127.0.0.1", 25, false)]
    [InlineData("127.0.0.2", 10025, false)]
    [InlineData("198.51.100.25", 2525, true)]
    [InlineData("::ffff:198.51.100.25", 25, true)]
    public void GatewaySelf_ListenersAndOwnAddresses(string ip, int port, bool self) =>
        Assert.Equal(self, Self.IsSelf(new IPEndPoint(IPAddress.Parse(ip), port)));

    [Fact]
    public void GatewaySelf_WildcardListener_EveryLoopbackAddressOnItsPort()
    {
        var any = new GatewaySelf([IPEndPoint.Parse("0.0.0.0:10025")], [], [], null);
        Assert.True(any.IsSelf(IPEndPoint.Parse("127.0.0.9:10025")));
        Assert.False(any.IsSelf(IPEndPoint.Parse("127.0.0.9:25")));
        Assert.False(any.IsSelf(IPEndPoint.Parse("192.0.2.1:10025")));
    }

    [Fact]
    public void OutboundEndpoints_DnsFailure_OutcomeForTheBatch()
    {
        var (endpoints, outcome) = RouteChoice.OutboundEndpoints("x.test", Resolution.Fail(DeliveryOutcome.Permanent("550 5.1.2 not found")), Self, 10);
        Assert.Empty(endpoints);
        Assert.Equal(OutcomeKind.Permanent, outcome!.Value.Kind);
    }

    [Fact]
    public void OutboundEndpoints_BestMxIsGateway_Loop_LessPreferredNotTried()
    {
        var mx = new Resolution([
            new Endpoint("mx.in.gateway.test", IPEndPoint.Parse("192.0.2.7:25")),
            new Endpoint("backup.x.test", IPEndPoint.Parse("192.0.2.8:25")),
        ], null);
        var (endpoints, outcome) = RouteChoice.OutboundEndpoints("x.test", mx, Self, 10);
        Assert.Empty(endpoints);
        Assert.Equal("554 5.4.6 Mail for x.test loops back to myself (mx.in.gateway.test[192.0.2.7]:25)", outcome!.Value.Reply);
    }

    [Fact]
    public void OutboundEndpoints_GatewayAmongMx_OnlyMorePreferredTried_Capped()
    {
        var mx = new Resolution([
            new Endpoint("mx1.x.test", IPEndPoint.Parse("192.0.2.1:25")),
            new Endpoint("mx2.x.test", IPEndPoint.Parse("192.0.2.2:25")),
            new Endpoint("mx3.x.test", IPEndPoint.Parse("198.51.100.25:25")),
            new Endpoint("mx4.x.test", IPEndPoint.Parse("192.0.2.4:25")),
        ], null);
        var (endpoints, outcome) = RouteChoice.OutboundEndpoints("x.test", mx, Self, 10);
        Assert.Null(outcome);
        Assert.Equal(["mx1.x.test", "mx2.x.test"], endpoints.Select(e => e.HostName));
        Assert.Single(RouteChoice.OutboundEndpoints("x.test", mx, Self, 1).Endpoints);
    }
}
