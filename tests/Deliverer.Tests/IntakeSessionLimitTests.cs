using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>A Deliverer whose intake takes at most three sessions at once.</summary>
public sealed class SessionLimitFixture : GatewayFixture
{
    protected override IEnumerable<string> DelivererSettings => ["--Gateway:Deliverer:MaxSessions=3"];
}

/// <summary>Bounded memory at the intake (requirements §11): a cap on concurrent sessions, 421 beyond it.</summary>
[Trait("Kind", "Integration")]
public sealed class IntakeSessionLimitTests(SessionLimitFixture fx) : IClassFixture<SessionLimitFixture>
{
    [Fact]
    public async Task Connect_BeyondMaxSessions_421_ThenServedOnceOneCloses()
    {
        var open = new List<RawSmtp>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var c = await RawSmtp.ConnectAsync(fx.Intake);
                open.Add(c);
                Assert.StartsWith("220", await c.ReadReplyAsync(), StringComparison.Ordinal);
            }

            await using (var fourth = await RawSmtp.ConnectAsync(fx.Intake))
            {
                Assert.StartsWith("421 4.3.2", await fourth.ReadReplyAsync(), StringComparison.Ordinal);
            }

            // The sessions held are still served.
            await open[0].WriteAsync("EHLO client.test\r\n");
            Assert.StartsWith("250", await open[0].ReadReplyAsync(), StringComparison.Ordinal);

            // One leaves: the next client is greeted (the count goes down when a session ends, however it ends).
            await open[1].WriteAsync("QUIT\r\n");
            await open[1].ReadReplyAsync();
            await open[1].DisposeAsync();
            open.RemoveAt(1);
            await Eventually.WaitAsync(async () =>
            {
                await using var next = await RawSmtp.ConnectAsync(fx.Intake);
                return (await next.ReadReplyAsync()).StartsWith("220", StringComparison.Ordinal);
            }, TimeSpan.FromSeconds(10), "a session is free again");
        }
        finally
        {
            foreach (var c in open)
            {
                await c.DisposeAsync();
            }
        }
    }
}
