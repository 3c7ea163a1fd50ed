using Gateway.ControlPlane.Grpc;
using Gateway.ControlPlane.Services;
using Gateway.ControlPlane.Application;
using Gateway.Core;
using Gateway.Core.Hosting;
using Gateway.ControlPlane.Onboarding;
using Gateway.Core.Delivery;
using Gateway.Core.Quarantine;
using Gateway.Core.Telemetry;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Gateway.ControlPlane;

/// <summary>Composition of the ControlPlane; tests build it in-process on real Kestrel listeners.</summary>
public static class ControlPlaneApp
{
    public const string DefaultUrl = "http://127.0.0.1:50051";
    public const string DefaultHttpUrl = "http://127.0.0.1:50052";
    public const string HttpUrlKey = "ControlPlane:HttpUrl";

    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });

        // gRPC: cleartext HTTP/2 (h2c) on --urls / ASPNETCORE_URLS, default 127.0.0.1:50051. Kestrel speaks
        // h2c only on HTTP/2-only endpoints, so HTTP/1.1 clients (curl with JSON, health probes) get their own
        // listener, ControlPlane:HttpUrl (default 127.0.0.1:50052; empty turns it off).
        var grpcUrls = KestrelUrls.Split(builder.Configuration[WebHostDefaults.ServerUrlsKey] is { Length: > 0 } u ? u : DefaultUrl);
        var httpUrl = builder.Configuration[HttpUrlKey] ?? DefaultHttpUrl;
        var listeners = new ControlPlaneListeners();
        builder.Services.AddSingleton(listeners);
        if (!builder.Configuration.GetSection("Kestrel:Endpoints").Exists())
        {
            builder.WebHost.ConfigureKestrel(k =>
            {
                foreach (var url in grpcUrls)
                {
                    KestrelUrls.Bind(k, url, HttpProtocols.Http2, listeners.Grpc.Add);
                }

                if (httpUrl.Length > 0)
                {
                    KestrelUrls.Bind(k, httpUrl, HttpProtocols.Http1, o => listeners.Http = o);
                }
            });
        }

        builder.Services.AddGatewayCore(builder.Configuration);
        builder.Services.AddSingleton<DomainMapper>();
        builder.Services.AddDeliveryQueue(builder.Configuration);
        builder.Services.AddQuarantine(builder.Configuration); // docs/rules.md
        builder.Services.AddControlPlaneApplication();
        builder.Services.AddGatewayTelemetry();
        builder.Services.AddGatewayInstruments<ControlPlaneMetrics>();
        builder.Services.AddGrpc(o =>
        {
            o.Interceptors.Add<MetricsInterceptor>();
            o.Interceptors.Add<ErrorInterceptor>();
            o.Interceptors.Add<AuthInterceptor>();
        }).AddJsonTranscoding(o =>
        {
            // Error details travel as google.protobuf.Any; JSON needs their descriptors to print them.
            o.TypeRegistry = Google.Protobuf.Reflection.TypeRegistry.FromMessages(Google.Rpc.BadRequest.Descriptor, Google.Rpc.ErrorInfo.Descriptor);
        });
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks().AddCheck<RedisHealthCheck>("redis");
        builder.Services.AddSingleton<OperatorKeyBootstrap>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<OperatorKeyBootstrap>());
        builder.Services.AddOnboarding(builder.Configuration);
        builder.Services.AddHostedService<Jobs.DomainRecheckService>();
        builder.Services.AddHostedService<Jobs.MaintenanceService>(); // log trim, quarantine expiry, purge resume

        var app = builder.Build();
        app.UseJsonBodyDefaults(); // curl -d '{…}' without -H content-type (README)
        app.MapGrpcService<TenantGrpcService>();
        app.MapGrpcService<DomainGrpcService>();
        app.MapGrpcService<QueueGrpcService>();
        app.MapGrpcService<PolicyRuleGrpcService>();
        app.MapGrpcService<QuarantineGrpcService>();
        app.MapGrpcService<MessageLogGrpcService>();
        app.MapGrpcReflectionService();
        app.MapGrpcHealthChecksService();
        app.MapGatewayTelemetry(); // /metrics and /healthz (docs/telemetry.md), meant for the HTTP/1.1 listener
        return app;
    }

    /// <summary>The gRPC address Kestrel actually listens on (port 0 resolved), once started.</summary>
    public static string GrpcAddress(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return KestrelUrls.Address(app.Services.GetRequiredService<ControlPlaneListeners>().Grpc[0]);
    }

    /// <summary>The HTTP/1.1 (JSON, health) address, once started; null when turned off.</summary>
    public static string? HttpAddress(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Services.GetRequiredService<ControlPlaneListeners>().Http is { } http ? KestrelUrls.Address(http) : null;
    }
}

/// <summary>The listen options of the ControlPlane's endpoints (their real ports are known after start).</summary>
public sealed class ControlPlaneListeners
{
    public List<Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions> Grpc { get; } = [];

    public Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? Http { get; set; }
}
