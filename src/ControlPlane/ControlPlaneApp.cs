using Gateway.ControlPlane.Grpc;
using Gateway.ControlPlane.Services;
using Gateway.Core;
using Gateway.Core.Delivery;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Gateway.ControlPlane;

/// <summary>Composition of the ControlPlane; tests build it in-process on real Kestrel listeners.</summary>
public static class ControlPlaneApp
{
    public const string DefaultUrl = "http://127.0.0.1:50051";

    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });

        // h2c on loopback unless --urls / ASPNETCORE_URLS / Kestrel:Endpoints say otherwise.
        if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey]) &&
            !builder.Configuration.GetSection("Kestrel:Endpoints").Exists())
        {
            builder.WebHost.UseUrls(DefaultUrl);
        }

        builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Protocols = HttpProtocols.Http2));

        builder.Services.AddGatewayCore(builder.Configuration);
        builder.Services.AddSingleton<DomainMapper>();
        builder.Services.AddDeliveryQueue(builder.Configuration);
        builder.Services.AddGrpc(o =>
        {
            o.Interceptors.Add<ErrorInterceptor>();
            o.Interceptors.Add<AuthInterceptor>();
        });
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks().AddCheck<RedisHealthCheck>("redis");
        builder.Services.AddSingleton<OperatorKeyBootstrap>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<OperatorKeyBootstrap>());

        var app = builder.Build();
        app.MapGrpcService<TenantGrpcService>();
        app.MapGrpcService<DomainGrpcService>();
        app.MapGrpcService<QueueGrpcService>();
        app.MapGrpcReflectionService();
        app.MapGrpcHealthChecksService();
        return app;
    }

    /// <summary>The addresses Kestrel actually listens on (port 0 resolved).</summary>
    public static IReadOnlyList<string> Addresses(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];
    }
}
