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
    public const string OperatorKey = ControlPlaneHost.OperatorKey;

    private ControlPlaneHost? _host;

    public RedisServer Redis { get; private set; } = null!;

    public ConnectionMultiplexer RedisClient { get; private set; } = null!;

    public string Address { get; private set; } = string.Empty;

    /// <summary>The HTTP/1.1 listener: JSON transcoding of the same API.</summary>
    public string HttpAddress { get; private set; } = string.Empty;

    public GrpcChannel Channel { get; private set; } = null!;

    /// <summary>The in-process ControlPlane's services.</summary>
    public IServiceProvider Services => _host!.Services;

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        RedisClient = await Redis.ConnectAsync();
        _host = await ControlPlaneHost.StartAsync(Redis.ConnectionString);
        Address = _host.Address;
        HttpAddress = _host.HttpAddress!;
        Channel = _host.Channel;
    }

    public async Task DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        RedisClient?.Dispose();
        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }
    }

    public CallInvoker WithKey(string? key, string? companyId = null) => _host!.WithKey(key, companyId);

    public TenantService.TenantServiceClient Operator => new(WithKey(OperatorKey));

    /// <summary>A new tenant with a unique company id and a client holding its API key.</summary>
    public async Task<(string CompanyId, string Key, DomainService.DomainServiceClient Domains)> NewTenantAsync(string prefix = "t")
    {
        var (id, key) = await _host!.NewTenantAsync(prefix);
        return (id, key, new DomainService.DomainServiceClient(WithKey(key)));
    }

    /// <summary>A unique registrable domain name.</summary>
    public static string NewDomainName(string label = "d") => $"{label}{Guid.NewGuid().ToString("N")[..10]}.example.com";
}
