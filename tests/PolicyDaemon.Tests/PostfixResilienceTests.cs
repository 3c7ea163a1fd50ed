using System.Net;
using Gateway.Core.Domains;
using Gateway.Core.Storage;
using Gateway.Testing;

namespace PolicyDaemon.Tests;

/// <summary>Real Postfix with the daemon in trouble: no snapshot yet, Redis gone after start; and direct mode.</summary>
public sealed class PostfixResilienceTests
{
    [Fact]
    public async Task NoSnapshotYet_PostfixAnswersTemporarily_NeverAcceptsOrRejects()
    {
        await using var redis = await RedisServer.StartAsync();
        await redis.StopAsync();
        await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString);
        await using var postfix = await GatewayFixture.StartPostfixAsync(daemon, "smtp:[127.0.0.1]:9");

        var reply = (await PostfixSmtpClient.SendAsync(postfix.SmtpEndPoint, "a@elsewhere.example", ["b@any.example"])).Rcpt[0];

        Assert.True(reply.IsTransient, reply.ToString());
    }

    [Fact]
    public async Task PolicyDaemonDown_PostfixDefaultActionIsTemporary()
    {
        await using var redis = await RedisServer.StartAsync();
        PostfixInstance postfix;
        await using (var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString))
        {
            postfix = await GatewayFixture.StartPostfixAsync(daemon, "smtp:[127.0.0.1]:9");
        }

        await using (postfix)
        {
            var reply = (await PostfixSmtpClient.SendAsync(postfix.SmtpEndPoint, "a@elsewhere.example", ["b@any.example"])).Rcpt[0];
            Assert.Equal(451, reply.Code);
            Assert.Contains("4.3.5", reply.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task RedisStoppedAfterStart_PostfixDecisionsKeepComingFromSnapshot()
    {
        await using var redis = await RedisServer.StartAsync();
        await DaemonFixture.SeedAsync(redis, "kept.example.com", DaemonFixture.Inbound("kept.example.com"));

        await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString);
        await daemon.WaitLoadedAsync();
        await using var postfix = await GatewayFixture.StartPostfixAsync(daemon, "smtp:[127.0.0.1]:9");
        Assert.Equal(250, (await PostfixSmtpClient.SendAsync(postfix.SmtpEndPoint, "a@elsewhere.example", ["b@kept.example.com"])).Rcpt[0].Code);

        await redis.StopAsync();
        await Task.Delay(TimeSpan.FromSeconds(2));

        for (var i = 0; i < 3; i++)
        {
            var (rcpt, _) = await PostfixSmtpClient.SendAsync(postfix.SmtpEndPoint, "a@elsewhere.example", [$"u{i}@kept.example.com", $"u{i}@gone.example.com"]);
            Assert.Equal(250, rcpt[0].Code);
            Assert.Equal(GatewayFixture.NoDomain($"u{i}@gone.example.com"), rcpt[1].ToString());
        }
    }

    [Fact]
    public async Task DirectMode_PostfixFollowsNextHopList_FailsOverToSecondServer()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var customer = await PostfixSmtpSink.StartAsync();
        var dead = FreePort.Get();
        await DaemonFixture.SeedAsync(redis, "direct.example.com", new DomainSettings(true,
        [
            new InboundServer("*@direct.example.com", "127.0.0.1", dead, 10),
            new InboundServer("*@direct.example.com", "127.0.0.1", customer.EndPoint.Port, 20),
        ], OutboundSettings.Disabled));

        await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString, "--PolicyDaemon:TransportMode", "Direct");
        await daemon.WaitLoadedAsync();
        // Direct mode per deploy/postfix/main.cf: unlisted mail by MX, so relay/default transport back to smtp.
        await using var postfix = await GatewayFixture.StartPostfixAsync(daemon, "smtp", main: new Dictionary<string, string>
        {
            ["relay_transport"] = "smtp",
            ["default_transport"] = "smtp",
        });
        var subject = "direct-" + Guid.NewGuid().ToString("N");

        var (rcpt, data) = await PostfixSmtpClient.SendAsync(postfix.SmtpEndPoint, "a@elsewhere.example", ["rcpt@direct.example.com"],
            $"Subject: {subject}\n\nhello\n");

        Assert.Equal(250, rcpt[0].Code);
        Assert.Equal(250, data!.Code);
        await customer.WaitForMessageAsync(subject, TimeSpan.FromSeconds(30));
        var log = await postfix.WaitForMaillogAsync("status=sent", TimeSpan.FromSeconds(10));
        Assert.Contains($"127.0.0.1[127.0.0.1]:{customer.EndPoint.Port}", log, StringComparison.Ordinal);
        Assert.Contains($"connect to 127.0.0.1[127.0.0.1]:{dead}: Connection refused", postfix.ReadMaillog(), StringComparison.Ordinal);
    }
}
