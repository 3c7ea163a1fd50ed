using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Prometheus;

namespace Gateway.Core.Telemetry;

/// <summary>
/// Health (<c>/healthz</c>) and Prometheus metrics (<c>/metrics</c>) for every program (requirements §8), see
/// docs/telemetry.md. Metrics: the host's own prometheus-net registry, fed by <see cref="PrometheusMeterBridge"/>
/// from the <c>gateway.*</c> instruments of its <see cref="System.Diagnostics.Metrics.IMeterFactory"/>, plus
/// prometheus-net's process and .NET runtime series (<c>process_*</c>, <c>dotnet_*</c>).
/// </summary>
public static class TelemetryServiceCollectionExtensions
{
    public const string MetricsPath = "/metrics";
    public const string HealthPath = "/healthz";

    /// <summary>
    /// The registry, the bridge (started with the host) and the health check builder to add checks to. Without
    /// <paramref name="exportMetrics"/> (no HTTP listener serves <c>/metrics</c>) no listener is attached to the
    /// instruments, so recording them costs next to nothing.
    /// </summary>
    public static IHealthChecksBuilder AddGatewayTelemetry(this IServiceCollection services, bool exportMetrics = true)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddMetrics();
        services.AddSingleton(_ =>
        {
            // Our own registry rather than prometheus-net's static default one: one per host, and no meter
            // adapter of its own that would publish every instrument of the process a second time.
            var registry = Metrics.NewCustomRegistry();
            DotNetStats.Register(registry);
            return registry;
        });
        services.AddSingleton<PrometheusMeterBridge>();
        // First among the hosted services: the bridge must listen before anything records.
        if (exportMetrics)
        {
            services.Insert(0, ServiceDescriptor.Singleton<IHostedService, TelemetryStarter>());
        }

        // Redis's durability settings (RedisDurability, registered by AddGatewayCore): Degraded when they do not keep the promise.
        return services.AddHealthChecks().Add(new HealthCheckRegistration("redis-durability",
            sp => sp.GetRequiredService<RedisDurability>(), HealthStatus.Degraded, null));
    }

    /// <summary>Registers a class whose constructor creates instruments; it is built when the host starts.</summary>
    public static IServiceCollection AddGatewayInstruments<T>(this IServiceCollection services)
        where T : class, IGatewayInstruments
    {
        services.AddSingleton<T>();
        services.AddSingleton<IGatewayInstruments>(sp => sp.GetRequiredService<T>());
        return services;
    }

    /// <summary>
    /// <c>GET /metrics</c> (Prometheus text format 0.0.4) and <c>GET /healthz</c> (200 "Healthy"/"Degraded",
    /// 503 "Unhealthy", one line per check).
    /// </summary>
    public static void MapGatewayTelemetry(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var registry = endpoints.ServiceProvider.GetRequiredService<CollectorRegistry>();
        endpoints.MapMetrics(MetricsPath, registry);
        endpoints.MapHealthChecks(HealthPath, new HealthCheckOptions { ResponseWriter = WriteHealthAsync });
    }

    private static Task WriteHealthAsync(HttpContext context, HealthReport report)
    {
        var text = new StringBuilder();
        text.Append(report.Status.ToString()).Append('\n');
        foreach (var (name, entry) in report.Entries.OrderBy(e => e.Key, StringComparer.Ordinal))
        {
            text.Append(name).Append(": ").Append(entry.Status.ToString());
            if (!string.IsNullOrEmpty(entry.Description))
            {
                text.Append(" (").Append(entry.Description).Append(')');
            }

            text.Append('\n');
        }

        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(text.ToString(), context.RequestAborted);
    }

    /// <summary>Builds the bridge and every <see cref="IGatewayInstruments"/> before the listeners open.</summary>
    private sealed class TelemetryStarter(IServiceProvider services) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            services.GetRequiredService<PrometheusMeterBridge>();
            foreach (var _ in services.GetServices<IGatewayInstruments>())
            {
            }

            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
