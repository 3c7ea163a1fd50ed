using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>Loops (requirements §3.7): an address of the gateway is never connected to, whatever name leads there.</summary>
[Trait("Kind", "Integration")]
public sealed class LoopTests(GatewayFixture fx) : IClassFixture<GatewayFixture>
{
    [Fact]
    public async Task Inbound_RowNameResolvingToTheIntake_BouncedAsLoopWithoutConnecting()
    {
        // The row's host name is no name of the gateway (so it passes the save-time check), but DNS points it at the intake.
        var sneaky = $"sneaky{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        fx.Dns.AddA(sneaky, fx.Intake.Address.ToString());
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("loop"), ("*@{d}", sneaky, fx.Intake.Port, 10));

        await fx.SendAsync("someone@remote.test", ["user@" + d], subject: "would loop");

        var bounced = await fx.WaitForLogAsync(d, e => e["event"] == "bounced", "the loop bounced");
        // Decided before any connection: the gateway's own intake never saw the message again (it would have said "Too many hops").
        Assert.StartsWith("554 5.4.6 Mail for " + d + " loops back to myself", bounced["reply"], StringComparison.Ordinal);
        var log = await fx.LogAsync(d);
        Assert.Single(log, e => e["event"] == "intake");
        Assert.DoesNotContain(log, e => e["event"] == "deferred");
    }
}
