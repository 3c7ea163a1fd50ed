using System.Net;
using System.Net.Sockets;
using System.Text;
using Gateway.Core.Domains;
using Gateway.Core.Snapshot;
using Gateway.ControlPlane.Application;
using Gateway.Deliverer;
using Gateway.PolicyDaemon;
using Gateway.Testing;
using MailKit.Net.Smtp;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace EndToEnd.Tests;

/// <summary>
/// requirements §1: the PolicyDaemon and the Deliverer are stateless workers; two of each (in-process hosts on their own
/// free ports) against one Redis or a 3-master Redis Cluster decide alike, share one queue, and keep the round
/// robin of requirements §3 exact across the fleet.
/// </summary>
[Trait("Kind", "Integration")]
public abstract class FleetTests
{
    private const int Messages = 100;

    protected abstract Task<(IAsyncDisposable Server, string ConnectionString)> StartRedisAsync();

    [Fact]
    public async Task TwoDaemonsTwoDeliverers_SameDecisions_RoundRobinExactAcrossFleet_EachMessageOnce()
    {
        var (redis, connection) = await StartRedisAsync();
        await using var _r = redis;
        await using var dns = DnsTestServer.Start();
        var sinkA = SmtpSink.Start("127.0.0.2");
        var sinkB = SmtpSink.Start("127.0.0.3");
        await using var _a = sinkA;
        await using var _b = sinkB;
        string[] common =
        [
            $"--Gateway:Redis={connection}",
            $"--Gateway:GatewayDomain={ControlPlaneHost.GatewayDomain}",
            $"--Gateway:Dns:Servers:0={dns.Address}",
            "--Gateway:Dns:UseCache=false",
            "--Gateway:AllowLoopbackDestinations=true",
            "--Gateway:SnapshotReconcileInterval=00:00:00.200",
            "--Gateway:ProviderRanges:RefreshInterval=00:00:00",
            "--Logging:LogLevel:Default=Warning",
        ];
        await using var controlPlane = await ControlPlaneHost.StartAsync(connection, common);
        var apps = new List<WebApplication>();
        try
        {
            var deliverers = new List<WebApplication>();
            var daemons = new List<WebApplication>();
            for (var i = 0; i < 2; i++)
            {
                var deliverer = DelivererApp.Build([.. common, "--Gateway:Deliverer:Listen=127.0.0.1:0", "--Gateway:Deliverer:HttpUrl=http://127.0.0.1:0",
                    "--Gateway:Deliverer:PollInterval=00:00:00.200", "--Gateway:Queue:HostName=gateway.test", "--Gateway:Protection:Mode=Off"]);
                apps.Add(deliverer);
                await deliverer.StartAsync();
                deliverers.Add(deliverer);
                var daemon = PolicyDaemonApp.Build([.. common, "--PolicyDaemon:PolicyEndpoint=127.0.0.1:0", "--PolicyDaemon:SocketmapEndpoint=127.0.0.1:0",
                    "--PolicyDaemon:HttpUrl=http://127.0.0.1:0"]);
                apps.Add(daemon);
                await daemon.StartAsync();
                daemons.Add(daemon);
            }

            // One managed domain whose route is two hosts of equal preference: requirements §3 round robin, message by message.
            await controlPlane.Services.GetRequiredService<TenantManager>().CreateAsync("fleet", null);
            var created = await controlPlane.Services.GetRequiredService<DomainManager>().CreateAsync("fleet", "fleet.example.com",
                new DomainSettings(true, [new InboundServer("*@fleet.example.com", sinkA.Host, sinkA.Port, 10), new InboundServer("*@fleet.example.com", sinkB.Host, sinkB.Port, 10)],
                    OutboundSettings.Disabled));
            await Eventually.WaitAsync(() => apps.All(a => a.Services.GetRequiredService<ConfigSnapshot>().Find("fleet.example.com")?.Config.Etag == created.Etag),
                TimeSpan.FromSeconds(10), "every program to apply the domain");

            // Both daemons decide alike: accept the managed recipient, refuse the unmanaged one, never an accept for a bad request.
            foreach (var daemon in daemons)
            {
                var policy = (IPEndPoint)daemon.Services.GetRequiredService<PolicyDaemonEndpoints>().PolicyEndPoint;
                Assert.Equal("action=OK", await AskPolicyAsync(policy, "user@fleet.example.com"));
                Assert.Equal("action=REJECT NO-DOMAIN", await AskPolicyAsync(policy, "user@unmanaged.example.org"));
            }

            // 75 messages through one Deliverer's intake and 25 through the other's, concurrently, each with a unique
            // token. Each intake hands its messages to its own workers, so both deliver; uneven shares on purpose:
            // counters kept per process would end 38/37 + 13/12 = 51/49, only the fleet-wide counter gives 50/50.
            var tokens = Enumerable.Range(0, Messages).Select(i => $"tok-{i:D3}-{Guid.NewGuid():N}").ToList();
            await Task.WhenAll(deliverers.Select((d, k) => SendAsync(DelivererApp.IntakeEndPoint(d), tokens.Where((_, i) => (i % 4 == 0 ? 1 : 0) == k).ToList())));

            await Eventually.WaitAsync(() => sinkA.Messages.Count + sinkB.Messages.Count >= Messages, TimeSpan.FromSeconds(60), "every message at a sink");
            var delivered = sinkA.Messages.Concat(sinkB.Messages).Select(m => Token(m.Text)).ToList();
            Assert.Equal(tokens.Order(StringComparer.Ordinal), delivered.Order(StringComparer.Ordinal));
            Assert.Equal(Messages / 2, sinkA.Messages.Count);
            Assert.Equal(Messages / 2, sinkB.Messages.Count);
        }
        finally
        {
            foreach (var app in Enumerable.Reverse(apps))
            {
                await app.StopAsync();
                await app.DisposeAsync();
            }
        }
    }

    private static string Token(string text)
    {
        var at = text.IndexOf("tok-", StringComparison.Ordinal);
        return at < 0 ? "(none)" : text.Substring(at, 4 + 3 + 1 + 32);
    }

    private static async Task SendAsync(IPEndPoint intake, IReadOnlyList<string> tokens)
    {
        using var client = new SmtpClient();
        await client.ConnectAsync(intake.Address.ToString(), intake.Port, MailKit.Security.SecureSocketOptions.None);
        foreach (var token in tokens)
        {
            var message = new MimeMessage();
            message.From.Add(MailboxAddress.Parse("sender@remote.example.org"));
            message.To.Add(MailboxAddress.Parse("user@fleet.example.com"));
            message.Subject = token;
            message.Body = new TextPart("plain") { Text = token + "\r\n" };
            await client.SendAsync(message);
        }

        await client.DisconnectAsync(true);
    }

    private static async Task<string> AskPolicyAsync(IPEndPoint policy, string recipient)
    {
        using var socket = new Socket(policy.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(policy);
        var request = "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=198.51.100.7\n" +
                      $"sender=someone@remote.example.org\nrecipient={recipient}\npolicy_context=\n\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(request), SocketFlags.None);
        var buffer = new byte[1024];
        var received = 0;
        while (!Encoding.ASCII.GetString(buffer, 0, received).Contains("\n\n", StringComparison.Ordinal))
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(received), SocketFlags.None);
            Assert.NotEqual(0, n);
            received += n;
        }

        return Encoding.ASCII.GetString(buffer, 0, received).TrimEnd('\n');
    }
}

public sealed class SingleRedisFleetTests : FleetTests
{
    protected override Task<(IAsyncDisposable Server, string ConnectionString)> StartRedisAsync() => RedisTopology.StartSingleAsync();
}

public sealed class ClusterFleetTests : FleetTests
{
    protected override Task<(IAsyncDisposable Server, string ConnectionString)> StartRedisAsync() => RedisTopology.StartClusterAsync();
}
