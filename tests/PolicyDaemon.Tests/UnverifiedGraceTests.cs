using Gateway.Testing;

namespace PolicyDaemon.Tests;

/// <summary>
/// Gateway:UnverifiedInboundGracePeriod through the real daemon and socket: an unverified domain is accepted inbound
/// within the grace period after its registration, refused NO-DOMAIN after it, and accepted again once verified.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class UnverifiedGraceTests
{
    [Fact]
    public async Task Policy_UnverifiedDomain_AcceptedThenNoDomainAfterGrace_AcceptedOnceVerified()
    {
        await using var redis = await RedisServer.StartAsync();
        var name = DaemonFixture.NewName("grace");
        await DaemonFixture.SeedAsync(redis, name, DaemonFixture.Inbound(name));
        var registered = DateTimeOffset.UtcNow;
        await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString, "--Gateway:UnverifiedInboundGracePeriod", "00:00:03",
            "--Gateway:SnapshotReconcileInterval", "00:00:00.200");
        await daemon.WaitLoadedAsync();
        await using var wire = await PolicyWire.ConnectAsync(daemon.Policy);

        var early = await wire.AskAsync(PolicyWire.Request($"bob@{name}"));
        if (DateTimeOffset.UtcNow - registered < TimeSpan.FromSeconds(3))
        {
            Assert.Equal("OK", early);
        }

        await Eventually.WaitAsync(async () => await wire.AskAsync(PolicyWire.Request($"bob@{name}")) == "REJECT NO-DOMAIN",
            TimeSpan.FromSeconds(20), "NO-DOMAIN once the grace period has passed");

        using var mux = await redis.ConnectAsync();
        await DaemonFixture.VerifyAsync(DaemonFixture.NewDomainManager(mux), name);
        await Eventually.WaitAsync(async () => await wire.AskAsync(PolicyWire.Request($"bob@{name}")) == "OK",
            TimeSpan.FromSeconds(10), "accepted again once verified");
    }
}
