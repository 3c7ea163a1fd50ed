using Gateway.Core.Domains;
using Gateway.PolicyDaemon.Postfix;
using Gateway.Testing;

namespace PolicyDaemon.Tests;

/// <summary>Start without Redis, Redis lost after start, idle timeouts, direct mode: each with its own daemon.</summary>
[Trait("Kind", "Integration")]
public sealed class DaemonLifecycleTests
{
    [Fact]
    public async Task Start_RedisUnreachable_DeferIfPermitAndTemp_ThenDecidesOnceRedisIsUp()
    {
        await using var redis = await RedisServer.StartAsync();
        await redis.StopAsync();
        await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString);
        await using var policy = await PolicyWire.ConnectAsync(daemon.Policy);
        await using var socketmap = await PolicyWire.ConnectAsync(daemon.Socketmap);

        Assert.Equal("DEFER_IF_PERMIT " + PostfixPolicy.NotLoadedText, await policy.AskAsync(PolicyWire.Request("a@any.example")));
        Assert.Equal(PostfixPolicy.Dunno, await policy.AskAsync(PolicyWire.Request("a@any.example", state: "CONNECT")));
        Assert.Equal("TEMP " + SocketmapConnectionHandler.NotLoadedReason, await socketmap.LookupAsync("domains", "any.example"));
        Assert.Equal("TEMP " + SocketmapConnectionHandler.NotLoadedReason, await socketmap.LookupAsync("transport", "a@any.example"));

        await redis.RestartAsync();
        await daemon.WaitLoadedAsync();
        Assert.Equal(PostfixPolicy.RejectNoDomain, await policy.AskAsync(PolicyWire.Request("a@any.example")));
        Assert.Equal("NOTFOUND ", await socketmap.LookupAsync("domains", "any.example"));
    }

    [Fact]
    public async Task RedisStoppedAfterStart_DecisionsContinueFromSnapshot()
    {
        await using var redis = await RedisServer.StartAsync();
        await DaemonFixture.SeedAsync(redis, "kept.example.com", DaemonFixture.Inbound("kept.example.com"));

        await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString);
        await daemon.WaitLoadedAsync();
        await redis.StopAsync();

        // Let the snapshot service notice (reconcile fails, logs, keeps the snapshot); then ask on new connections.
        await Task.Delay(TimeSpan.FromSeconds(2));
        for (var i = 0; i < 3; i++)
        {
            await using var policy = await PolicyWire.ConnectAsync(daemon.Policy);
            Assert.Equal("OK", await policy.AskAsync(PolicyWire.Request("a@kept.example.com")));
            Assert.Equal(PostfixPolicy.RejectNoDomain, await policy.AskAsync(PolicyWire.Request("a@gone.example.com")));
            await using var socketmap = await PolicyWire.ConnectAsync(daemon.Socketmap);
            Assert.Equal("OK kept.example.com", await socketmap.LookupAsync("domains", "kept.example.com"));
        }
    }

    [Fact]
    public async Task IdleConnection_ClosedAfterIdleTimeout()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString, "--PolicyDaemon:IdleTimeout", "00:00:01", "--PolicyDaemon:RequestTimeout", "00:00:01");
        await daemon.WaitLoadedAsync();
        await using var idle = await PolicyWire.ConnectAsync(daemon.Policy);
        Assert.Equal(PostfixPolicy.RejectNoDomain, await idle.AskAsync(PolicyWire.Request("a@x.example")));
        Assert.True(await idle.ClosedWithoutReplyAsync());

        await using var half = await PolicyWire.ConnectAsync(daemon.Policy);
        await half.SendAsync("request=smtpd_access_policy\nprotocol_state=RCPT\n");
        Assert.True(await half.ClosedWithoutReplyAsync());
    }

    [Fact]
    public async Task DirectMode_TransportIsTheInboundRoute()
    {
        await using var redis = await RedisServer.StartAsync();
        await DaemonFixture.SeedAsync(redis, "example.com", new DomainSettings(true,
        [
            new InboundServer("*@example.com", "192.0.2.1", 25, 20),
            new InboundServer("john@example.com", "203.0.113.1", 25, 10),
        ], OutboundSettings.Disabled));

        await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString, "--PolicyDaemon:TransportMode", "Direct");
        await daemon.WaitLoadedAsync();
        await using var socketmap = await PolicyWire.ConnectAsync(daemon.Socketmap);

        Assert.Equal("OK smtp:[203.0.113.1]:25, [192.0.2.1]:25", await socketmap.LookupAsync("transport", "John@Example.COM"));
        Assert.Equal("OK smtp:[192.0.2.1]:25", await socketmap.LookupAsync("transport", "hanako@example.com"));
        Assert.Equal("NOTFOUND ", await socketmap.LookupAsync("transport", "bob@gmail.example"));
    }

    [Fact]
    public async Task PolicyEndpoint_UnixSocket_Answers()
    {
        await using var redis = await RedisServer.StartAsync();
        var path = Path.Combine(Path.GetTempPath(), "gw-policy-" + Guid.NewGuid().ToString("N")[..8] + ".sock");
        try
        {
            await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString, "--PolicyDaemon:PolicyEndpoint", "unix:" + path);
            await daemon.WaitLoadedAsync();
            await using var wire = await PolicyWire.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(path));

            Assert.Equal(PostfixPolicy.RejectNoDomain, await wire.AskAsync(PolicyWire.Request("a@x.example")));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("--PolicyDaemon:PolicyEndpoint", "localhost:10040", "PolicyDaemon:PolicyEndpoint")]
    [InlineData("--PolicyDaemon:SocketmapEndpoint", "unix:relative.sock", "PolicyDaemon:SocketmapEndpoint")]
    [InlineData("--PolicyDaemon:AcceptAction", "", "PolicyDaemon:AcceptAction")]
    [InlineData("--PolicyDaemon:TransportMode", "Sideways", "TransportMode")]
    [InlineData("--Gateway:ProviderRanges:CheckInterval", "00:00:00", "Gateway:ProviderRanges:CheckInterval")]
    [InlineData("--Gateway:UnixSockets:Mode", "888", "Gateway:UnixSockets:Mode")]
    public async Task Start_InvalidSetting_FailsNamingIt(string name, string value, string expected)
    {
        var e = await Record.ExceptionAsync(async () =>
        {
            await using var app = PolicyDaemonServer.Build("127.0.0.1:1", name, value);
            await app.StartAsync();
            await app.StopAsync();
        });

        Assert.NotNull(e);
        Assert.Contains(expected, e.ToString(), StringComparison.Ordinal);
    }
}
