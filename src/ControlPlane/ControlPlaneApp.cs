using Gateway.Core.Dkim;
using Gateway.Core.Tls;
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
    public const string MetricsUrlKey = "ControlPlane:MetricsUrl";

    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });

        // gRPC: cleartext HTTP/2 (h2c) on --urls / ASPNETCORE_URLS, default 127.0.0.1:50051. Kestrel speaks
        // h2c only on HTTP/2-only endpoints, so HTTP/1.1 clients (curl with JSON, health probes) get their own
        // listener, ControlPlane:HttpUrl (default 127.0.0.1:50052; empty turns it off).
        var grpcUrls = KestrelUrls.Split(builder.Configuration[WebHostDefaults.ServerUrlsKey] is { Length: > 0 } u ? u : DefaultUrl);
        var httpUrl = builder.Configuration[HttpUrlKey] ?? DefaultHttpUrl;
        var metricsUrl = builder.Configuration[MetricsUrlKey] ?? string.Empty;
        var listeners = new ControlPlaneListeners();
        builder.Services.AddSingleton(listeners);
        if (!builder.Configuration.GetSection("Kestrel:Endpoints").Exists())
        {
            // https:// URLs take the certificate of Kestrel's own settings (Kestrel:Certificates:Default:Path/KeyPath):
            // TLS for the API (README "TLS for the API"), so keys never travel in the clear off the host.
            var certificate = KestrelUrls.LoadCertificate(builder.Configuration);
            builder.WebHost.ConfigureKestrel(k =>
            {
                foreach (var url in grpcUrls)
                {
                    KestrelUrls.Bind(k, url, HttpProtocols.Http2, listeners.Grpc.Add, certificate);
                }

                if (httpUrl.Length > 0)
                {
                    KestrelUrls.Bind(k, httpUrl, HttpProtocols.Http1, o => listeners.Http = o, certificate);
                }

                if (metricsUrl.Length > 0)
                {
                    KestrelUrls.Bind(k, metricsUrl, HttpProtocols.Http1, o =>
                    {
                        MetricsListener.Tag(o);
                        listeners.Metrics = o;
                    }, certificate);
                }
            });
        }

        builder.Services.AddGatewayCore(builder.Configuration);
        builder.Services.AddSingleton<DomainMapper>();
        builder.Services.AddOptions<TenantLimits>()
            .Bind(builder.Configuration.GetSection(TenantLimits.Section))
            .ValidateDataAnnotations()
            .Validate(o => o.FollowRecheckInterval > TimeSpan.Zero && o.FollowRecheckInterval <= TimeSpan.FromMinutes(1),
                "Gateway:Limits:FollowRecheckInterval must be positive and at most a minute.")
            .Validate(o => o.FollowSlotLease >= TimeSpan.FromSeconds(1), "Gateway:Limits:FollowSlotLease must be at least a second.")
            .ValidateOnStart();
        builder.Services.AddSingleton(sp => sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<TenantLimits>>().Value);
        builder.Services.AddSingleton<TenantRateLimiter>();
        builder.Services.AddSingleton<FollowSlots>();
        builder.Services.AddSingleton<FollowGuard>();
        builder.Services.AddSingleton<Onboarding.DomainTakeover>();
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
            o.Interceptors.Add<LimitsInterceptor>(); // tenant rate limits (docs/reliability.md "Hostile tenant")
        }).AddJsonTranscoding(o =>
        {
            // Error details travel as google.protobuf.Any; JSON needs their descriptors to print them.
            o.TypeRegistry = Google.Protobuf.Reflection.TypeRegistry.FromMessages(Google.Rpc.BadRequest.Descriptor, Google.Rpc.ErrorInfo.Descriptor, Google.Rpc.QuotaFailure.Descriptor);
        });
        builder.Services.AddGrpcReflection();
        builder.Services.AddGrpcHealthChecks().AddCheck<RedisHealthCheck>("redis");
        builder.Services.AddSingleton<OperatorKeyBootstrap>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<OperatorKeyBootstrap>());
        builder.Services.AddOnboarding(builder.Configuration);
        builder.Services.AddDkimKeys(builder.Configuration, createKeyFile: true); // docs/outbound.md
        builder.Services.AddHostedService<SecretsBootstrap>();
        builder.Services.AddTlsVerification(builder.Configuration); // the connection test verifies certificates
        builder.Services.AddHostedService<Jobs.DomainRecheckService>();
        builder.Services.AddHostedService<Jobs.MaintenanceService>(); // log trim, quarantine expiry, purge resume

        var app = builder.Build();
        app.UseJsonBodyDefaults(); // curl -d '{…}' without -H content-type (README)
        if (metricsUrl.Length > 0)
        {
            app.UseMetricsOnlyOnItsListener();
        }

        app.MapGrpcService<TenantGrpcService>();
        app.MapGrpcService<DomainGrpcService>();
        app.MapGrpcService<QueueGrpcService>();
        app.MapGrpcService<PolicyRuleGrpcService>();
        app.MapGrpcService<QuarantineGrpcService>();
        app.MapGrpcService<MessageLogGrpcService>();
        app.MapGrpcService<ConfigStateGrpcService>();
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

    /// <summary>The separate /metrics address, once started; null when not configured.</summary>
    public static string? MetricsAddress(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Services.GetRequiredService<ControlPlaneListeners>().Metrics is { } m ? KestrelUrls.Address(m) : null;
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

    /// <summary>The separate <c>/metrics</c> listener (ControlPlane:MetricsUrl), when configured.</summary>
    public Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? Metrics { get; set; }
}
