using Gateway.Api.V1;
using Gateway.ControlPlane;
using Gateway.Testing;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using StackExchange.Redis;

namespace ControlPlane.Tests;

/// <summary>A real redis-server and the ControlPlane on a real Kestrel listener (port 0), shared by a test class.</summary>
public sealed class ControlPlaneFixture : IAsyncLifetime
{
    public const string OperatorKey = "test-operator-key-0123456789";

    private WebApplication? _app;

    public RedisServer Redis { get; private set; } = null!;

    public ConnectionMultiplexer RedisClient { get; private set; } = null!;

    public string Address { get; private set; } = string.Empty;

    /// <summary>The HTTP/1.1 listener: JSON transcoding of the same API.</summary>
    public string HttpAddress { get; private set; } = string.Empty;

    public GrpcChannel Channel { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        RedisClient = await Redis.ConnectAsync();
        _app = ControlPlaneApp.Build(
        [
            "--urls", "http://127.0.0.1:0", "--ControlPlane:HttpUrl", "http://127.0.0.1:0",
            "--Gateway:Redis", Redis.ConnectionString,
            "--Gateway:OperatorKey", OperatorKey,
            "--Gateway:GatewayDomain", "gw.test.example",
            "--Gateway:AllowLoopbackDestinations", "true",
            // No test DNS server here: keep the background checks from asking real DNS or connecting to 192.0.2.x.
            "--Gateway:Onboarding:BackgroundChecks", "false",
            "--Logging:LogLevel:Default", "Warning",
        ]);
        await _app.StartAsync();
        Address = ControlPlaneApp.GrpcAddress(_app);
        HttpAddress = ControlPlaneApp.HttpAddress(_app)!;
        Channel = GrpcChannel.ForAddress(Address);
    }

    public async Task DisposeAsync()
    {
        Channel?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        RedisClient?.Dispose();
        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }
    }

    public CallInvoker WithKey(string? key, string? companyId = null) =>
        Channel.Intercept(metadata =>
        {
            if (key is not null)
            {
                metadata.Add("authorization", "Bearer " + key);
            }

            if (companyId is not null)
            {
                metadata.Add("x-company-id", companyId);
            }

            return metadata;
        });

    public TenantService.TenantServiceClient Operator => new(WithKey(OperatorKey));

    /// <summary>A new tenant with a unique company id and a client holding its API key.</summary>
    public async Task<(string CompanyId, string Key, DomainService.DomainServiceClient Domains)> NewTenantAsync(string prefix = "t")
    {
        var id = $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}";
        await Operator.CreateTenantAsync(new CreateTenantRequest { CompanyId = id });
        var key = await Operator.CreateApiKeyAsync(new CreateApiKeyRequest { CompanyId = id, Description = "tests" });
        return (id, key.Key, new DomainService.DomainServiceClient(WithKey(key.Key)));
    }

    /// <summary>A unique registrable domain name.</summary>
    public static string NewDomainName(string label = "d") => $"{label}{Guid.NewGuid().ToString("N")[..10]}.example.com";
}
