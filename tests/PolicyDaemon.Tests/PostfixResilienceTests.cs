using System.Net;
using Gateway.Core.Domains;
using Gateway.Core.Storage;
using Gateway.Testing;

namespace PolicyDaemon.Tests;

/// <summary>Real Postfix with the daemon in trouble: no snapshot yet, Redis gone after start; and direct mode.</summary>
[Trait("Kind", "Integration")]
public sealed class PostfixResilienceTests
{
    /// <summary>These tests ask about RCPT only: no intake listens (port 9), so no before-queue proxy either.</summary>
    private static readonly Dictionary<string, string> NoIntake = new() { ["smtpd_proxy_filter"] = string.Empty };

    [Fact]
    public async Task NoSnapshotYet_PostfixAnswersTemporarily_NeverAcceptsOrRejects()
    {
        await using var redis = await RedisServer.StartAsync();
        await redis.StopAsync();
        await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString);
        await using var postfix = await GatewayFixture.StartPostfixAsync(daemon, "smtp:[127.0.0.1]:9", main: NoIntake);

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
            postfix = await GatewayFixture.StartPostfixAsync(daemon, "smtp:[127.0.0.1]:9", main: NoIntake);
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
        await using var postfix = await GatewayFixture.StartPostfixAsync(daemon, "smtp:[127.0.0.1]:9", main: NoIntake);
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
    public async Task IntakeDown_BeforeQueueProxy_ClientToldToRetryAtFirstRcpt_PostfixQueuesNothing()
    {
        await using var redis = await RedisServer.StartAsync();
        await DaemonFixture.SeedAsync(redis, "kept.example.com", DaemonFixture.Inbound("kept.example.com"));
        await using var daemon = await PolicyDaemonServer.StartAsync(redis.ConnectionString);
        await daemon.WaitLoadedAsync();
        var dead = FreePort.Get();
        await using var postfix = await GatewayFixture.StartPostfixAsync(daemon, $"smtp:[127.0.0.1]:{dead}");

        await using var client = await PostfixSmtpClient.ConnectAsync(postfix.SmtpEndPoint);
        var ehlo = await client.EhloAsync();
        Assert.Contains("DSN", ehlo.Lines); // smtpd forwards DSN parameters to the intake, which takes them
        Assert.Equal(250, (await client.MailFromAsync("a@elsewhere.example")).Code);

        // smtpd connects to the proxy once the policy service accepted the first recipient.
        Assert.Equal("451 4.3.0 Error: queue file write error", (await client.RcptToAsync("b@kept.example.com")).ToString());
        Assert.Equal(554, (await client.CommandAsync("DATA")).Code);
        await postfix.WaitForMaillogAsync($"connect to proxy filter 127.0.0.1:{dead}", TimeSpan.FromSeconds(5));
        foreach (var queue in new[] { "incoming", "active", "deferred" })
        {
            var dir = Path.Combine(postfix.QueueDirectory, queue);
            Assert.True(!Directory.Exists(dir) || !Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Any(), $"Postfix queued a file in {queue}");
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
        // Direct mode per deploy/postfix/main.cf: no intake proxy, unlisted mail by MX (relay/default transport smtp).
        await using var postfix = await GatewayFixture.StartPostfixAsync(daemon, "smtp", main: new Dictionary<string, string>
        {
            ["smtpd_proxy_filter"] = string.Empty,
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
