using System.Security.Cryptography;
using System.Text;
using Gateway.Api.V1;
using Gateway.Core.Storage;
using Gateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using Gateway.Core.Telemetry;

namespace Deliverer.Tests;

/// <summary>
/// deploy/redis/ as shipped: a redis-server started from redis-gateway.conf with the users of users.acl (passwords
/// of this test), and the whole gateway logged in as the limited "gateway" user (Gateway:RedisUser,
/// Gateway:RedisPasswordFile). Mail goes through a real Postfix to a sink, so every command the programs send passed
/// the ACL; an unauthenticated client gets nothing; the durability check finds the promise kept.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
[Trait("Kind", "Integration")]
public sealed class DeployRedisTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task WholeGateway_RedisFromDeployConfigWithAclUser_RelaysMail_DefaultUserRefused_DurabilityKept()
    {
        var deploy = Path.Combine(RepoRoot(), "deploy", "redis");
        var work = Directory.CreateTempSubdirectory("gw-deploy-redis-").FullName;
        var gatewayPassword = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var adminPassword = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var acl = File.ReadAllLines(Path.Combine(deploy, "users.acl"))
            .Select(l => l.StartsWith("user gateway ", StringComparison.Ordinal) ? l.Replace("#" + new string('0', 64), "#" + Sha256(gatewayPassword), StringComparison.Ordinal)
                : l.StartsWith("user admin ", StringComparison.Ordinal) ? l.Replace("#" + new string('0', 64), "#" + Sha256(adminPassword), StringComparison.Ordinal) : l);
        var aclFile = Path.Combine(work, "users.acl");
        await File.WriteAllLinesAsync(aclFile, acl);
        var passwordFile = Path.Combine(work, "redis-password");
        await File.WriteAllTextAsync(passwordFile, gatewayPassword + "\n");
        try
        {
            await using var gw = await WholeGateway.StartAsync(new Dictionary<string, string>(),
                () => RedisServer.StartWithConfigAsync(Path.Combine(deploy, "redis-gateway.conf"), ["--aclfile", aclFile]),
                "--Gateway:RedisUser=gateway", $"--Gateway:RedisPasswordFile={passwordFile}");

            // Without credentials: the default user is off. Asked over a plain socket, so the answer is Redis's own reply
            // (a client library's handshake can time out first on a loaded machine and hide it).
            using (var anonymous = new System.Net.Sockets.TcpClient())
            {
                await anonymous.ConnectAsync(System.Net.IPAddress.Loopback, gw.Redis.Port);
                var stream = anonymous.GetStream();
                await stream.WriteAsync("GET gw:{cfg}:version\r\n"u8.ToArray());
                var reply = new byte[256];
                var n = await stream.ReadAsync(reply).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
                Assert.StartsWith("-NOAUTH", Encoding.ASCII.GetString(reply, 0, n), StringComparison.Ordinal);
            }

            // The gateway user cannot reach keys outside gw:* or wipe the store.
            using (var asGateway = await ConnectionMultiplexer.ConnectAsync($"{gw.Redis.ConnectionString},user=gateway,password={gatewayPassword},allowAdmin=true"))
            {
                var db = asGateway.GetDatabase();
                Assert.Contains("NOPERM", (await Assert.ThrowsAsync<RedisServerException>(() => db.StringSetAsync("other:key", "x"))).Message, StringComparison.Ordinal);
                Assert.Contains("NOPERM", (await Assert.ThrowsAsync<RedisServerException>(() => db.ExecuteAsync("FLUSHALL"))).Message, StringComparison.Ordinal);
            }

            await using var sink = SmtpSink.Start("127.0.0.2");
            var (_, key) = await gw.ControlPlane.NewTenantAsync("acl");
            var domains = new DomainService.DomainServiceClient(gw.ControlPlane.WithKey(key));
            var name = $"acl{Guid.NewGuid().ToString("N")[..8]}.example.com";
            var domain = new Domain { Name = name, InboundEnabled = true };
            domain.InboundServers.Add(new InboundServer { Recipient = "*@" + name, Host = sink.Host, Port = sink.Port });
            var created = await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
            await gw.WaitAppliedAsync(name, created.Etag);
            var (rcpt, data) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "sender@remote.test", [$"bob@{name}"],
                $"From: <sender@remote.test>\r\nTo: <bob@{name}>\r\nSubject: acl\r\n\r\nThrough an ACL'd Redis.\r\n");
            Assert.True(rcpt[0].IsPositive, rcpt[0].ToString());
            Assert.True(data!.IsPositive, data.ToString());
            Assert.Single(await sink.WaitForMessagesAsync(1, Wait));

            // Every program read the durability settings with the gateway user and found them as deploy/redis sets them.
            foreach (var services in new[] { gw.ControlPlane.Services, gw.PolicyDaemon.Services, gw.Deliverer.Services })
            {
                var durability = services.GetRequiredService<RedisDurability>();
                await Eventually.WaitAsync(() => durability.Last.Known, Wait, "durability checked");
                Assert.True(durability.Last.Durable, string.Join("; ", durability.Last.Problems.Concat(durability.Last.Notes)));
            }
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [Fact]
    public async Task Durability_RedisWithoutAofAndWithEviction_ReportedProblemsNamed()
    {
        await using var redis = await RedisServer.StartAsync();
        using (var admin = await redis.ConnectAsync())
        {
            await admin.GetServers()[0].ConfigSetAsync("maxmemory-policy", "allkeys-lru");
        }

        var check = new RedisDurability(new Gateway.Core.GatewayOptions { Redis = redis.ConnectionString }, TimeProvider.System,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<RedisDurability>.Instance);
        var report = await check.CheckAsync(CancellationToken.None);
        Assert.True(report.Known);
        Assert.False(report.Durable);
        Assert.Contains(report.Problems, p => p.Contains("appendonly is no", StringComparison.Ordinal));
        Assert.Contains(report.Problems, p => p.Contains("appendfsync is everysec", StringComparison.Ordinal));
        Assert.Contains(report.Problems, p => p.Contains("maxmemory-policy is allkeys-lru", StringComparison.Ordinal));
    }

    private static string Sha256(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    internal static string RepoRoot() => Gateway.Testing.RepositoryPaths.Get();
}
