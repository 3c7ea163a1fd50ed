using Gateway.Core.Domains;
using Gateway.PolicyDaemon.Postfix;
using Gateway.Testing;

namespace PolicyDaemon.Tests;

/// <summary>
/// Recipient verification over the policy protocol (SMTPD_POLICY_README): the answer waits for the cache or the probe, and
/// requests pipelined on one connection are answered in order even when one of them waits. Real Redis, real SMTP sinks.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class PolicyVerificationTests : IAsyncLifetime
{
    private RedisServer _redis = null!;
    private PolicyDaemonServer _daemon = null!;

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _daemon = await PolicyDaemonServer.StartAsync(_redis.ConnectionString,
            "--Gateway:AllowLoopbackDestinations", "true",
            "--Gateway:RecipientVerification:ProbeWait", "00:00:01",
            "--Gateway:RecipientVerification:CommandTimeout", "00:00:02");
        await _daemon.WaitLoadedAsync();
    }

    public async Task DisposeAsync()
    {
        await _daemon.DisposeAsync();
        await _redis.DisposeAsync();
    }

    private async Task<string> DomainAsync(SmtpSink sink)
    {
        var name = DaemonFixture.NewName("pv");
        var settings = DaemonFixture.Inbound(name, sink.Host, sink.Port) with { RecipientVerification = RecipientVerificationSettings.Off with { Enabled = true } };
        await DaemonFixture.SeedAsync(_redis, name, settings);
        await Eventually.WaitAsync(() => _daemon.Snapshot.Find(name) is not null, TimeSpan.FromSeconds(5), "domain in snapshot");
        return name;
    }

    [Fact]
    public async Task Policy_PipelinedRequests_AnsweredInOrder_ProbedRecipientsWaitForTheirAnswer()
    {
        await using var sink = SmtpSink.Start("127.0.0.13");
        sink.Behavior = SinkBehavior.Accept with { RcptReply = r => r.StartsWith("ann@", StringComparison.Ordinal) ? "250 2.1.5 Ok" : "550 5.1.1 No such user" };
        var d = await DomainAsync(sink);
        await using var wire = await PolicyWire.ConnectAsync(_daemon.Policy);

        // Four requests in one write: an unmanaged domain, a probe that refuses, one that accepts, an unmanaged one again.
        await wire.SendAsync(PolicyWire.Request("x@unmanaged.example") + PolicyWire.Request($"bob@{d}") + PolicyWire.Request($"ann@{d}") +
                             PolicyWire.Request("y@unmanaged.example"));
        Assert.Equal(PostfixPolicy.RejectNoDomain, await wire.ReadPolicyReplyAsync());
        Assert.Equal("550 5.1.1 undeliverable address: 550 5.1.1 No such user", await wire.ReadPolicyReplyAsync());
        Assert.Equal("OK", await wire.ReadPolicyReplyAsync());
        Assert.Equal(PostfixPolicy.RejectNoDomain, await wire.ReadPolicyReplyAsync());
        Assert.Equal(2, sink.Connections);
    }

    [Fact]
    public async Task Policy_ServerNeverGreets_450411WithinTheWait_ConnectionServesTheNextRequest()
    {
        await using var sink = SmtpSink.Start("127.0.0.13");
        sink.Behavior = SinkBehavior.Accept with { StallAt = SinkStage.Greeting };
        var d = await DomainAsync(sink);
        await using var wire = await PolicyWire.ConnectAsync(_daemon.Policy);

        Assert.Equal("450 4.1.1 unverified address: verification in progress, try again later", await wire.AskAsync(PolicyWire.Request($"ann@{d}")));
        Assert.Equal(PostfixPolicy.RejectNoDomain, await wire.AskAsync(PolicyWire.Request("x@unmanaged.example")));
        Assert.Equal(1, sink.Connections);
    }
}
