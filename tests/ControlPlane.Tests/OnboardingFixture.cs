using System.Net;
using System.Net.Sockets;
using Gateway.Api.V1;
using Gateway.ControlPlane;
using Gateway.Testing;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using StackExchange.Redis;

namespace ControlPlane.Tests;

/// <summary>
/// A real redis-server, the real in-process DNS server on loopback (UDP/TCP) and the ControlPlane on a real
/// Kestrel listener whose resolver (Gateway:Dns:Servers) is that DNS server. The gateway's SPF include
/// <c>_spf.gw.test.example</c> lists its sending addresses, as an operator would publish it.
/// </summary>
public sealed class OnboardingFixture : IAsyncLifetime
{
    public const string OperatorKey = ControlPlaneHost.OperatorKey;
    public const string GatewayDomain = "gw.test.example";
    public const string SpfInclude = "include:_spf.gw.test.example";
    public const string SendingV4 = "127.0.0.10";
    public const string SendingV6 = "2001:db8::10";

    private readonly List<ControlPlaneHost> _apps = [];

    public RedisServer Redis { get; private set; } = null!;

    public ConnectionMultiplexer RedisClient { get; private set; } = null!;

    public DnsTestServer Dns { get; private set; } = null!;

    public GrpcChannel Channel { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        RedisClient = await Redis.ConnectAsync();
        Dns = DnsTestServer.Start();
        Dns.AddTxt("_spf." + GatewayDomain, $"v=spf1 ip4:{SendingV4} ip6:{SendingV6} -all");
        Channel = await StartControlPlaneAsync();
    }

    /// <summary>Starts (another) ControlPlane on the same Redis and DNS; extra arguments override the defaults.</summary>
    public async Task<GrpcChannel> StartControlPlaneAsync(params string[] extra)
    {
        var host = await ControlPlaneHost.StartAsync(Redis.ConnectionString,
        [
            "--Gateway:GatewayDomain", GatewayDomain,
            "--Gateway:Dns:Servers:0", Dns.Address,
            "--Gateway:Dns:UseCache", "false",
            "--Gateway:Dns:Timeout", "00:00:02",
            "--Gateway:Dns:Retries", "0",
            "--Gateway:SendingAddresses:0", SendingV4,
            "--Gateway:SendingAddresses:1", SendingV6,
            "--Gateway:Onboarding:ConnectTimeout", "00:00:03",
            .. extra,
        ]);
        _apps.Add(host);
        return host.Channel;
    }

    /// <summary>The services of the first ControlPlane (for the background round).</summary>
    public IServiceProvider Services => _apps[0].Services;

    public IServiceProvider ServicesOf(int index) => _apps[index].Services;

    public async Task DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.DisposeAsync();
        }

        RedisClient?.Dispose();
        if (Dns is not null)
        {
            await Dns.DisposeAsync();
        }

        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }
    }

    public static CallInvoker WithKey(GrpcChannel channel, string key) =>
        channel.Intercept(metadata =>
        {
            metadata.Add("authorization", "Bearer " + key);
            return metadata;
        });

    /// <summary>A new tenant and a DomainService client with its key, on <paramref name="channel"/> (default: the first ControlPlane).</summary>
    public async Task<(string CompanyId, string Key, DomainService.DomainServiceClient Domains)> NewTenantAsync(GrpcChannel? channel = null)
    {
        var id = $"t-{Guid.NewGuid().ToString("N")[..10]}";
        var op = new TenantService.TenantServiceClient(WithKey(Channel, OperatorKey));
        await op.CreateTenantAsync(new CreateTenantRequest { CompanyId = id });
        var key = await op.CreateApiKeyAsync(new CreateApiKeyRequest { CompanyId = id, Description = "onboarding tests" });
        return (id, key.Key, new DomainService.DomainServiceClient(WithKey(channel ?? Channel, key.Key)));
    }

    public static string NewDomainName() => $"d{Guid.NewGuid().ToString("N")[..10]}.example.com";

    public static string MxHostOf(string companyId) => $"{companyId}.in.{GatewayDomain}";

    /// <summary>A TCP listener on a free loopback port that accepts and closes connections, as an inbound server that is up.</summary>
    public static TcpListener StartListener()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        _ = AcceptLoopAsync(listener);
        return listener;
    }

    /// <summary>A loopback port with nothing listening (connections are refused), as an inbound server that is down.</summary>
    public static int ClosedPort() => FreePort.Get(IPAddress.Loopback);

    private static async Task AcceptLoopAsync(TcpListener listener)
    {
        try
        {
            while (true)
            {
                using var client = await listener.AcceptTcpClientAsync();
            }
        }
        catch (Exception e) when (e is ObjectDisposedException or SocketException or InvalidOperationException)
        {
            // Listener stopped.
        }
    }
}
