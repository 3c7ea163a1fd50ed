using System.Net;
using Gateway.Core;
using Gateway.Core.Hosting;
using Gateway.Core.Telemetry;
using Gateway.Core.Relay;
using Gateway.Core.Verification;
using Gateway.PolicyDaemon.Postfix;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Gateway.PolicyDaemon;

/// <summary>The listeners as bound (port 0 resolved), for tests and logs.</summary>
public sealed class PolicyDaemonEndpoints
{
    internal ListenOptions? Policy { get; set; }

    internal ListenOptions? Socketmap { get; set; }

    /// <summary>The policy listener (valid once the host started).</summary>
    public EndPoint PolicyEndPoint => Policy?.EndPoint ?? throw new InvalidOperationException("not started");

    /// <summary>The socketmap listener (valid once the host started).</summary>
    public EndPoint SocketmapEndPoint => Socketmap?.EndPoint ?? throw new InvalidOperationException("not started");

    internal ListenOptions? Http { get; set; }

    internal ListenOptions? Metrics { get; set; }

    /// <summary>The separate <c>/metrics</c> listener as <c>http://ip:port</c>; null when not configured.</summary>
    public string? MetricsAddress => Metrics is null ? null : KestrelUrls.Address(Metrics);

    /// <summary>The <c>/healthz</c> and <c>/metrics</c> listener as <c>http://ip:port</c>; null when turned off.</summary>
    public string? HttpAddress => Http is null ? null : KestrelUrls.Address(Http);
}

/// <summary>
/// Composition of the PolicyDaemon: Kestrel with two raw TCP listeners (no HTTP), each running a
/// connection handler, over the configuration snapshot and the relay core. Tests build it in-process.
/// </summary>
public static partial class PolicyDaemonApp
{
    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        // The slim builder fixes the console formatter to "simple"; let Logging:Console (FormatterName=json for the
        // systemd units, docs/operations.md) decide, as in the other two programs.
        builder.Logging.AddConsole();
        builder.Services.Configure<Microsoft.Extensions.Logging.Console.ConsoleLoggerOptions>(builder.Configuration.GetSection("Logging:Console"));
        builder.Services.AddGatewayCore(builder.Configuration);
        builder.Services.AddConfigSnapshot();
        builder.Services.AddBufferedMessageLog();
        builder.Services.AddSingleton<IEnvelopeCheck, RuleEnvelopeCheck>(); // per-domain envelope rules (docs/rules.md)
        builder.Services.AddRelayDecisions(builder.Configuration);
        builder.Services.AddUnixSocketPermissions(builder.Configuration);
        builder.Services.AddRecipientVerification(builder.Configuration); // per-domain callout at RCPT, off by default (docs/operations.md)
        builder.Services.AddOptions<PolicyDaemonOptions>()
            .Bind(builder.Configuration.GetSection(PolicyDaemonOptions.Section))
            .Validate(o => PolicyDaemonOptions.TryParseEndpoint(o.PolicyEndpoint, out _), "PolicyDaemon:PolicyEndpoint must be ip:port ([v6]:port) or unix:/absolute/path.")
            .Validate(o => PolicyDaemonOptions.TryParseEndpoint(o.SocketmapEndpoint, out _), "PolicyDaemon:SocketmapEndpoint must be ip:port ([v6]:port) or unix:/absolute/path.")
            .Validate(o => PolicyDaemonOptions.IsOneLine(o.AcceptAction), "PolicyDaemon:AcceptAction must be one line of printable ASCII (a Postfix access(5) action such as OK).")
            .Validate(o => PolicyDaemonOptions.IsOneLine(o.DelivererNextHop) && !o.DelivererNextHop.Contains(' ', StringComparison.Ordinal),
                "PolicyDaemon:DelivererNextHop must be a Postfix transport:nexthop such as smtp:[127.0.0.1]:10025.")
            .Validate(o => o.IdleTimeout > TimeSpan.Zero && o.RequestTimeout > TimeSpan.Zero, "PolicyDaemon:IdleTimeout and RequestTimeout must be positive.")
            .Validate(o => o.MaxLineLength is >= 256 and <= 1_048_576 && o.MaxAttributes is >= 10 and <= 10_000 &&
                           o.MaxRequestBytes >= o.MaxLineLength && o.MaxSocketmapRequest is >= 256 and <= 100_000,
                "PolicyDaemon limits out of range (MaxLineLength 256..1048576, MaxAttributes 10..10000, MaxRequestBytes >= MaxLineLength, MaxSocketmapRequest 256..100000).")
            .Validate(o => o.MaxConnections >= 0, "PolicyDaemon:MaxConnections must not be negative (0: no limit).")
            .Validate(o => Enum.IsDefined(o.TransportMode), "PolicyDaemon:TransportMode must be Deliverer or Direct.")
            .Validate(o => o.MetricsUrl.Length == 0 || KestrelUrls.TryParse(o.MetricsUrl, out _, out _, out _),
                "PolicyDaemon:MetricsUrl must be http://ip:port (a listener for /metrics only) or empty.")
            .Validate(o => o.HttpUrl.Length == 0 || KestrelUrls.TryParse(o.HttpUrl, out _, out _, out _),
                "PolicyDaemon:HttpUrl must be http://ip:port (the /healthz and /metrics listener) or empty to turn it off.")
            .ValidateOnStart();
        builder.Services.AddSingleton(sp => sp.GetRequiredService<IOptions<PolicyDaemonOptions>>().Value);
        builder.Services.AddSingleton<PolicyDaemonMetrics>();
        builder.Services.AddSingleton<PolicyDaemonEndpoints>();
        builder.Services.AddHostedService<ListenerAnnouncer>();
        var httpUrl = builder.Configuration[$"{PolicyDaemonOptions.Section}:{nameof(PolicyDaemonOptions.HttpUrl)}"] ?? new PolicyDaemonOptions().HttpUrl;
        var metricsUrl = builder.Configuration[$"{PolicyDaemonOptions.Section}:{nameof(PolicyDaemonOptions.MetricsUrl)}"] ?? string.Empty;
        builder.Services.AddGatewayTelemetry(exportMetrics: httpUrl.Length > 0 || metricsUrl.Length > 0).AddCheck<SnapshotHealthCheck>("snapshot");

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            var options = kestrel.ApplicationServices.GetRequiredService<PolicyDaemonOptions>();
            var endpoints = kestrel.ApplicationServices.GetRequiredService<PolicyDaemonEndpoints>();
            kestrel.Limits.MaxConcurrentConnections = options.MaxConnections == 0 ? null : options.MaxConnections;
            endpoints.Policy = Listen(kestrel, options.PolicyEndpoint, l => l.UseConnectionHandler<PolicyConnectionHandler>());
            endpoints.Socketmap = Listen(kestrel, options.SocketmapEndpoint, l => l.UseConnectionHandler<SocketmapConnectionHandler>());
            if (options.HttpUrl.Length > 0 && KestrelUrls.TryParse(options.HttpUrl, out _, out _, out _))
            {
                KestrelUrls.Bind(kestrel, options.HttpUrl, HttpProtocols.Http1, l => endpoints.Http = l);
            }

            if (options.MetricsUrl.Length > 0 && KestrelUrls.TryParse(options.MetricsUrl, out _, out _, out _))
            {
                KestrelUrls.Bind(kestrel, options.MetricsUrl, HttpProtocols.Http1, l =>
                {
                    MetricsListener.Tag(l);
                    endpoints.Metrics = l;
                });
            }
        });

        var app = builder.Build();
        if (metricsUrl.Length > 0)
        {
            app.UseMetricsOnlyOnItsListener();
        }

        app.MapGatewayTelemetry();
        return app;
    }

    private static ListenOptions Listen(KestrelServerOptions kestrel, string setting, Action<ListenOptions> configure)
    {
        if (!PolicyDaemonOptions.TryParseEndpoint(setting, out var endPoint))
        {
            throw new InvalidOperationException($"'{setting}' is not an endpoint"); // validated at start; defensive
        }

        ListenOptions? bound = null;
        void Capture(ListenOptions l)
        {
            bound = l;
            configure(l);
        }

        if (endPoint is System.Net.Sockets.UnixDomainSocketEndPoint unix)
        {
            // A stale file of a crashed run removed; the mode of Gateway:UnixSockets applied once bound (security review M13).
            UnixSockets.Listen(kestrel, unix.ToString(), Capture);
        }
        else
        {
            kestrel.Listen((IPEndPoint)endPoint, Capture);
        }

        return bound!;
    }

    /// <summary>Logs where the listeners ended up once Kestrel bound them.</summary>
    private sealed partial class ListenerAnnouncer(IHostApplicationLifetime lifetime, PolicyDaemonEndpoints endpoints, ILogger<ListenerAnnouncer> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            lifetime.ApplicationStarted.Register(() =>
            {
                LogListening(logger, "policy delegation", endpoints.PolicyEndPoint);
                LogListening(logger, "socketmap", endpoints.SocketmapEndPoint);
                if (endpoints.Http is { } http)
                {
                    LogListening(logger, "health and metrics (HTTP)", http.EndPoint);
                }
            });
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "PolicyDaemon {Protocol} listening on {EndPoint}")]
        private static partial void LogListening(ILogger logger, string protocol, EndPoint endPoint);
    }
}
