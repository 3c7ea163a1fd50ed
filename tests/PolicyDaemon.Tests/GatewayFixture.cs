using System.Net;
using Gateway.Api.V1;
using Gateway.ControlPlane;
using Gateway.Testing;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using StackExchange.Redis;

namespace PolicyDaemon.Tests;

/// <summary>
/// The whole decision path with real parts: redis-server, the ControlPlane (gRPC, in-process), the
/// PolicyDaemon (in-process, real sockets), a private Postfix configured from deploy/postfix, and
/// smtp-sink standing in for the Deliverer's intake. Postfix has three SMTP listeners: the deploy file's
/// public one (both directions), "mx" (policy_context=inbound) and "relay" (policy_context=outbound).
/// </summary>
public sealed class GatewayFixture : IAsyncLifetime
{
    public const string OperatorKey = ControlPlaneHost.OperatorKey;

    private ControlPlaneHost? _controlPlane;

    public RedisServer Redis { get; private set; } = null!;

    public ConnectionMultiplexer RedisClient { get; private set; } = null!;

    internal PolicyDaemonServer Daemon { get; private set; } = null!;

    public PostfixSmtpSink Intake { get; private set; } = null!;

    public PostfixInstance Postfix { get; private set; } = null!;

    public GrpcChannel Channel { get; private set; } = null!;

    public DomainService.DomainServiceClient Domains { get; private set; } = null!;

    public string CompanyId { get; } = "acme" + Guid.NewGuid().ToString("N")[..6];

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        RedisClient = await Redis.ConnectAsync();
        _controlPlane = await ControlPlaneHost.StartAsync(Redis.ConnectionString);
        Channel = _controlPlane.Channel;
        var op = new TenantService.TenantServiceClient(Channel.Intercept(m => { m.Add("authorization", "Bearer " + OperatorKey); return m; }));
        await op.CreateTenantAsync(new CreateTenantRequest { CompanyId = CompanyId });
        var key = (await op.CreateApiKeyAsync(new CreateApiKeyRequest { CompanyId = CompanyId, Description = "policy tests" })).Key;
        Domains = new DomainService.DomainServiceClient(Channel.Intercept(m => { m.Add("authorization", "Bearer " + key); return m; }));

        Intake = await PostfixSmtpSink.StartAsync();
        var intake = $"smtp:[{Intake.EndPoint.Address}]:{Intake.EndPoint.Port}";
        Daemon = await PolicyDaemonServer.StartAsync(Redis.ConnectionString, "--PolicyDaemon:DelivererNextHop", intake);
        await Daemon.WaitLoadedAsync();
        Postfix = await StartPostfixAsync(Daemon, intake, extraListeners: true);
    }

    /// <summary>A private Postfix from deploy/postfix wired to a daemon (and an intake next hop).</summary>
    internal static Task<PostfixInstance> StartPostfixAsync(PolicyDaemonServer daemon, string intake, bool extraListeners = false, IReadOnlyDictionary<string, string>? main = null)
    {
        var options = new PostfixOptions();
        options.Main["gateway_policy_service"] = $"inet:{daemon.Policy.Address}:{daemon.Policy.Port}";
        options.Main["gateway_socketmap"] = $"inet:{daemon.Socketmap.Address}:{daemon.Socketmap.Port}";
        options.Main["gateway_intake"] = intake;
        foreach (var (k, v) in main ?? new Dictionary<string, string>())
        {
            options.Main[k] = v;
        }

        if (extraListeners)
        {
            options.ExtraListeners.Add(new PostfixListener("mx", new Dictionary<string, string> { ["smtpd_policy_service_policy_context"] = "inbound" }));
            options.ExtraListeners.Add(new PostfixListener("relay", new Dictionary<string, string> { ["smtpd_policy_service_policy_context"] = "outbound" }));
        }

        return PostfixInstance.StartAsync(options);
    }

    public async Task DisposeAsync()
    {
        if (Postfix is not null)
        {
            await Postfix.DisposeAsync();
        }

        if (Intake is not null)
        {
            await Intake.DisposeAsync();
        }

        if (Daemon is not null)
        {
            await Daemon.DisposeAsync();
        }

        if (_controlPlane is not null)
        {
            await _controlPlane.DisposeAsync();
        }

        RedisClient?.Dispose();
        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }
    }

    /// <summary>Creates a domain through gRPC with inbound relay to a documentation address.</summary>
    public async Task<string> CreateInboundDomainAsync(string label = "in")
    {
        var name = DaemonFixture.NewName(label);
        await Domains.CreateDomainAsync(new CreateDomainRequest
        {
            Domain = new Domain
            {
                Name = name,
                InboundEnabled = true,
                InboundServers = { new Gateway.Api.V1.InboundServer { Recipient = "*@" + name, Host = "192.0.2.1" } },
            },
        });
        return name;
    }

    /// <summary>One RCPT through Postfix's public listener (or another), in a session of its own.</summary>
    public async Task<SmtpReply> RcptAsync(string sender, string recipient, IPAddress? from = null, IPEndPoint? listener = null)
    {
        var (rcpt, _) = await PostfixSmtpClient.SendAsync(listener ?? Postfix.SmtpEndPoint, sender, [recipient], localAddress: from);
        return rcpt[0];
    }

    public static string NoDomain(string recipient) => $"554 5.7.1 <{recipient}>: Recipient address rejected: NO-DOMAIN";
}
