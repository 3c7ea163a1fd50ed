using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Gateway.Core.Telemetry;

/// <summary>
/// <c>/metrics</c> on a listener of its own (<c>ControlPlane:MetricsUrl</c>, <c>PolicyDaemon:MetricsUrl</c>,
/// <c>Gateway:Deliverer:MetricsUrl</c>): once one is configured, <c>/metrics</c> answers only there (404 elsewhere),
/// so it can be bound to a monitoring network while the API and <c>/healthz</c> stay where they are (security review L5).
/// Connections of the metrics listener carry a mark in their items; a middleware checks it.
/// </summary>
public static class MetricsListener
{
    private const string Mark = "gateway.metrics-listener";

    /// <summary>Marks every connection of <paramref name="listen"/> as the metrics listener's.</summary>
    public static void Tag(ListenOptions listen)
    {
        ArgumentNullException.ThrowIfNull(listen);
        listen.Use(next => connection =>
        {
            connection.Items[Mark] = true;
            return next(connection);
        });
    }

    /// <summary>Serves <c>/metrics</c> only on connections of the metrics listener (call before the endpoints are mapped).</summary>
    public static void UseMetricsOnlyOnItsListener(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.Use(async (context, next) =>
        {
            if (context.Request.Path.StartsWithSegments(TelemetryServiceCollectionExtensions.MetricsPath, StringComparison.Ordinal) &&
                context.Features.Get<IConnectionItemsFeature>()?.Items.ContainsKey(Mark) != true)
            {
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                return;
            }

            await next(context).ConfigureAwait(false);
        });
    }
}
