using Gateway.Core.Routing;
using Gateway.Core.Delivery;
using Gateway.Core.Domains;

namespace Gateway.Core.Tests;

/// <summary>requirements §3 route choice as a table (pure functions, no I/O).</summary>
[Trait("Kind", "Unit")]
public sealed class RouteTableTests
{
    private const string D = "example.com";

    // The seed's worked example (normative).
    private static readonly InboundServer[] Seed =
    [
        new("*@example.com", "192.0.2.1", 25, 20),
        new("john@example.com", "203.0.113.1", 25, 10),
        new("sophie@example.com", "203.0.113.2", 25, 20),
        new("taro@example.com", "198.51.100.1", 25, 50),
    ];

    [Theory]
    [InlineData("john@example.com", 0, "203.0.113.1,192.0.2.1")]
    [InlineData("John@Example.com", 0, "203.0.113.1,192.0.2.1")]
    [InlineData("sophie@example.com", 0, "192.0.2.1,203.0.113.2")]
    [InlineData("sophie@example.com", 1, "203.0.113.2,192.0.2.1")]
    [InlineData("sophie@example.com", 2, "192.0.2.1,203.0.113.2")]
    [InlineData("sophie@example.com", 7, "203.0.113.2,192.0.2.1")]
    [InlineData("taro@example.com", 0, "192.0.2.1,198.51.100.1")]
    [InlineData("hanako@example.com", 0, "192.0.2.1")]
    [InlineData("hanako@example.com", 5, "192.0.2.1")]
    public void Order_SeedWorkedExample_HostsInTryOrder(string recipient, long turn, string expected)
    {
        var plan = RoutePlanner.Plan(recipient, D, Seed);
        var order = RoutePlanner.Order(plan, _ => turn);
        Assert.Equal(expected, string.Join(',', order.Select(h => h.Host)));
    }

    [Fact]
    public void Order_SophieOverHundredTurns_FiftyFifty()
    {
        var plan = RoutePlanner.Plan("sophie@example.com", D, Seed);
        var first = Enumerable.Range(0, 100).Select(t => RoutePlanner.Order(plan, _ => t)[0].Host).ToList();
        Assert.Equal(50, first.Count(h => h == "192.0.2.1"));
        Assert.Equal(50, first.Count(h => h == "203.0.113.2"));
    }

    [Fact]
    public void Plan_SameHostTwice_KeepsLowestPreferenceOnly()
    {
        InboundServer[] rows = [new("*@example.com", "192.0.2.1", 25, 20), new("ann@example.com", "192.0.2.1", 25, 5), new("*@example.com", "192.0.2.9", 25, 30)];
        var plan = RoutePlanner.Plan("ann@example.com", D, rows);
        Assert.Equal([5, 30], plan.Select(g => g.Preference));
        Assert.Equal("192.0.2.1,192.0.2.9", string.Join(',', RoutePlanner.Order(plan, _ => 0).Select(h => h.Host)));
    }

    [Fact]
    public void Plan_SameHostOtherPort_TwoHosts()
    {
        InboundServer[] rows = [new("*@example.com", "192.0.2.1", 25, 10), new("*@example.com", "192.0.2.1", 2525, 10)];
        var plan = Assert.Single(RoutePlanner.Plan("x@example.com", D, rows));
        Assert.Equal(2, plan.Hosts.Count);
        Assert.True(plan.NeedsTurn);
    }

    [Fact]
    public void Plan_GroupKey_IndependentOfRowOrder()
    {
        InboundServer[] a = [new("*@example.com", "192.0.2.1", 25, 10), new("*@example.com", "192.0.2.2", 25, 10)];
        InboundServer[] b = [a[1], a[0]];
        Assert.Equal(RoutePlanner.Plan("x@example.com", D, a)[0].Key, RoutePlanner.Plan("x@example.com", D, b)[0].Key);
        Assert.Equal(RoutePlanner.Order(RoutePlanner.Plan("x@example.com", D, a), _ => 1), RoutePlanner.Order(RoutePlanner.Plan("x@example.com", D, b), _ => 1));
    }

    [Fact]
    public void Plan_NoMatchingRow_Empty()
    {
        Assert.Empty(RoutePlanner.Plan("x@example.com", D, [new("john@example.com", "192.0.2.1", 25, 10)]));
    }

    [Fact]
    public void MxPlanner_ByPreference_EqualOnesShuffled()
    {
        MxRecord[] records = [new(20, "c.mx.test"), new(10, "a.mx.test."), new(10, "b.mx.test"), new(30, "d.mx.test")];
        var seen = new HashSet<string>();
        for (var seed = 0; seed < 50; seed++)
        {
            var plan = MxPlanner.Plan("x.test", records, new Random(seed));
            Assert.Equal(["c.mx.test", "d.mx.test"], plan.Hosts.Skip(2));
            seen.Add(string.Join(',', plan.Hosts.Take(2)));
        }

        Assert.Equal(new HashSet<string> { "a.mx.test,b.mx.test", "b.mx.test,a.mx.test" }, seen);
    }

    [Fact]
    public void MxPlanner_NoRecords_ImplicitMxOnTheDomain()
    {
        var plan = MxPlanner.Plan("x.test", [], new Random(1));
        Assert.True(plan.ImplicitMx);
        Assert.Equal(["x.test"], plan.Hosts);
    }

    [Fact]
    public void MxPlanner_NullMx_NoHosts()
    {
        Assert.True(MxPlanner.Plan("x.test", [new MxRecord(0, ".")], new Random(1)).NullMx);
        // RFC 7505 §3: mixed with real MX records, the null one is ignored.
        Assert.Equal(["a.test"], MxPlanner.Plan("x.test", [new MxRecord(0, "."), new MxRecord(10, "a.test")], new Random(1)).Hosts);
    }
}
