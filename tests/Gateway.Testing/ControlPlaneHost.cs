using Gateway.Api.V1;
using Gateway.ControlPlane;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;

namespace Gateway.Testing;

/// <summary>
/// The ControlPlane hosted in-process on real Kestrel listeners (port 0) for integration tests, with
/// settings that keep tests on loopback: background DNS checks off, loopback destinations allowed.
/// Later arguments override earlier ones, so a test passes only what it changes.
/// </summary>
public sealed class ControlPlaneHost : IAsyncDisposable
{
    public const string OperatorKey = "test-operator-key-0123456789";
    public const string GatewayDomain = "gw.test.example";

    private ControlPlaneHost(WebApplication app)
    {
        App = app;
        Address = ControlPlaneApp.GrpcAddress(app);
        HttpAddress = ControlPlaneApp.HttpAddress(app);
        Channel = GrpcChannel.ForAddress(Address);
    }

    public WebApplication App { get; }

    public IServiceProvider Services => App.Services;

    /// <summary>The gRPC (h2c) address.</summary>
    public string Address { get; }

    /// <summary>The HTTP/1.1 JSON address.</summary>
    public string? HttpAddress { get; }

    public GrpcChannel Channel { get; }

    public TenantService.TenantServiceClient Operator => new(WithKey(OperatorKey));

    public static async Task<ControlPlaneHost> StartAsync(string redis, params string[] extra)
    {
        ArgumentNullException.ThrowIfNull(extra);
        var app = ControlPlaneApp.Build(
        [
            "--urls", "http://127.0.0.1:0",
            "--ControlPlane:HttpUrl", "http://127.0.0.1:0",
            "--Gateway:Redis", redis,
            "--Gateway:OperatorKey", OperatorKey,
            "--Gateway:GatewayDomain", GatewayDomain,
            "--Gateway:AllowLoopbackDestinations", "true",
            "--Gateway:Onboarding:BackgroundChecks", "false",
            // Each host its own key-encryption key file (issue 17), not data/ under the test's working folder.
            "--Gateway:Secrets:KeyFile", Path.Combine(Path.GetTempPath(), $"gw-test-kek-{Guid.NewGuid():N}.key"),
            "--Logging:LogLevel:Default", "Warning",
            .. extra,
        ]);
        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        return new ControlPlaneHost(app);
    }

    /// <summary>Calls carrying a bearer key (and, for the operator acting for a tenant, x-company-id).</summary>
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

    /// <summary>Creates a tenant with a unique company id and an API key for it.</summary>
    public async Task<(string CompanyId, string Key)> NewTenantAsync(string prefix = "t")
    {
        var id = $"{prefix}-{Guid.NewGuid().ToString("N")[..10]}";
        await Operator.CreateTenantAsync(new CreateTenantRequest { CompanyId = id }).ConfigureAwait(false);
        var key = await Operator.CreateApiKeyAsync(new CreateApiKeyRequest { CompanyId = id, Description = "tests" }).ConfigureAwait(false);
        return (id, key.Key);
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await App.StopAsync().ConfigureAwait(false);
        await App.DisposeAsync().ConfigureAwait(false);
    }
}
