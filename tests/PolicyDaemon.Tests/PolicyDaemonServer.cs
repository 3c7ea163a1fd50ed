using System.Net;
using Gateway.Core.Snapshot;
using Gateway.PolicyDaemon;
using Gateway.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace PolicyDaemon.Tests;

/// <summary>The PolicyDaemon in-process on real Kestrel listeners (port 0), against a given Redis.</summary>
internal sealed class PolicyDaemonServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private PolicyDaemonServer(WebApplication app)
    {
        _app = app;
        var endpoints = app.Services.GetRequiredService<PolicyDaemonEndpoints>();
        PolicyAny = endpoints.PolicyEndPoint;
        Policy = PolicyAny as IPEndPoint ?? new IPEndPoint(IPAddress.None, 0);
        Socketmap = (IPEndPoint)endpoints.SocketmapEndPoint;
        HttpAddress = endpoints.HttpAddress;
    }

    /// <summary>The /healthz and /metrics listener (http://ip:port).</summary>
    public string? HttpAddress { get; }

    public IPEndPoint Policy { get; }

    /// <summary>The policy listener as bound (a Unix socket when configured so).</summary>
    public EndPoint PolicyAny { get; }

    public IPEndPoint Socketmap { get; }

    public IServiceProvider Services => _app.Services;

    public ConfigSnapshot Snapshot => _app.Services.GetRequiredService<ConfigSnapshot>();

    /// <param name="redis">StackExchange.Redis configuration string.</param>
    /// <param name="args">More settings, e.g. <c>--PolicyDaemon:TransportMode Direct</c>.</param>
    public static async Task<PolicyDaemonServer> StartAsync(string redis, params string[] args)
    {
        var app = Build(redis, args);
        await app.StartAsync();
        return new PolicyDaemonServer(app);
    }

    public static WebApplication Build(string redis, params string[] args) =>
        PolicyDaemonApp.Build(
        [
            // Short Redis timeouts: the tests stop Redis and expect the daemon to carry on from its snapshot.
            "--Gateway:Redis", redis + ",connectTimeout=1000,asyncTimeout=1000,syncTimeout=1000",
            "--PolicyDaemon:PolicyEndpoint", "127.0.0.1:0",
            "--PolicyDaemon:SocketmapEndpoint", "127.0.0.1:0",
            "--PolicyDaemon:HttpUrl", "http://127.0.0.1:0",
            // No DNS from tests: the shipped provider ranges (or the copy in Redis) are used.
            "--Gateway:ProviderRanges:RefreshInterval", "00:00:00",
            "--Gateway:GatewayDomain", "gw.test.example",
            "--Logging:LogLevel:Default", "Warning",
            .. args,
        ]);

    public Task WaitLoadedAsync() => Eventually.WaitAsync(() => Snapshot.IsLoaded, TimeSpan.FromSeconds(20), "PolicyDaemon snapshot loaded");

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
