using Gateway.Core.Verification;
using Gateway.Core;
using Gateway.Core.Dkim;
using Gateway.Core.Tls;
using Gateway.Core.Delivery;
using Gateway.Core.Quarantine;
using Gateway.Core.Relay;
using Gateway.Core.Hosting;
using Gateway.Core.Telemetry;
using Gateway.Deliverer.Delivery;
using Gateway.Deliverer.Intake;
using Gateway.Deliverer.Protection;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;

namespace Gateway.Deliverer;

/// <summary>Composition of the Deliverer; tests build it in-process, and run the published program as a process to kill it.</summary>
public static class DelivererApp
{
    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        builder.Services.AddGatewayCore(builder.Configuration);
        builder.Services.AddConfigSnapshot();
        builder.Services.AddBufferedMessageLog();
        builder.Services.AddDeliveryQueue(builder.Configuration);
        builder.Services.AddQuarantine(builder.Configuration); // QUARANTINE rules at intake (docs/rules.md)
        builder.Services.AddOptions<DelivererOptions>()
            .Bind(builder.Configuration.GetSection(DelivererOptions.Section))
            .ValidateDataAnnotations()
            .Validate(DelivererOptions.IsValid,
                "Gateway:Deliverer: Listen must be ip:port, HttpUrl http://ip:port or empty, TrustedNetworks addresses or CIDR ranges, and every timeout and interval positive.")
            .ValidateOnStart();
        builder.Services.AddSingleton(sp => sp.GetRequiredService<IOptions<DelivererOptions>>().Value);
        builder.Services.AddSingleton<DestinationResolver>();
        // The one loop check of delivery: the intake's listeners, the sending addresses and the gateway's own names.
        builder.Services.AddSingleton(sp =>
        {
            var gateway = sp.GetRequiredService<GatewayOptions>();
            var own = gateway.SendingAddresses.Select(a => System.Net.IPAddress.TryParse(a, out var ip) ? ip : null).OfType<System.Net.IPAddress>();
            return new Gateway.Core.Delivery.GatewaySelf(sp.GetRequiredService<DelivererOptions>().IntakeEndPoints(), own,
                [sp.GetRequiredService<QueueOptions>().EffectiveHostName], gateway.GatewayDomain);
        });
        builder.Services.AddRecipientVerification(builder.Configuration); // the intake's RCPT, as the policy service's (docs/operations.md)
        builder.Services.AddSingleton<SmtpTransport>();
        builder.Services.AddSingleton<DestinationLimiter>();
        builder.Services.AddSingleton<DeadHosts>();
        builder.Services.AddSingleton<MessageDeliverer>();
        builder.Services.AddSingleton<FailureDsnCoalescer>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<FailureDsnCoalescer>());
        builder.Services.AddSingleton<DeliveryScheduler>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<DeliveryScheduler>());
        builder.Services.AddSingleton<IntakeWriter>();
        builder.Services.AddSingleton<SpoolQuota>();
        builder.Services.AddDkimKeys(builder.Configuration, createKeyFile: false); // the ControlPlane generates the key file
        builder.Services.AddSingleton<DkimSigning>();
        builder.Services.AddTlsVerification(builder.Configuration); // Gateway:Tls (docs/outbound.md)
        builder.Services.AddOptions<MtaStsOptions>().Bind(builder.Configuration.GetSection(MtaStsOptions.Section));
        builder.Services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<MtaStsOptions>>().Value;
            return MtaStsOptions.IsValid(o, sp.GetRequiredService<GatewayOptions>()) ? o
                : throw new OptionsValidationException(MtaStsOptions.Section, typeof(MtaStsOptions),
                    ["Gateway:Deliverer:MtaSts: FetchTimeout must be positive; PolicyPortForTests only with Gateway:AllowLoopbackDestinations (tests)."]);
        });
        builder.Services.AddSingleton<MtaStsPolicySource>();
        builder.Services.AddGatewayInstruments<OutboundMetrics>();
        // The intake decides every RCPT with the relay rule and the domains' envelope rules, as the PolicyDaemon does.
        builder.Services.AddSingleton<IEnvelopeCheck, RuleEnvelopeCheck>();
        builder.Services.AddRelayDecisions(builder.Configuration);
        builder.Services.AddUnixSocketPermissions(builder.Configuration);
        builder.Services.AddProtection(builder.Configuration); // rspamd + clamd before the intake's 250 (docs/protection.md)
        var configured = builder.Configuration.GetSection(DelivererOptions.Section).Get<DelivererOptions>() ?? new DelivererOptions();
        builder.Services.AddGatewayTelemetry(exportMetrics: configured.HttpUrl.Length > 0 || configured.MetricsUrl.Length > 0)
            .AddCheck<RedisHealthCheck>("redis")
            .AddCheck<SnapshotHealthCheck>("snapshot")
            .AddCheck<ScannerHealthCheck>("scanners");
        builder.Services.AddGatewayInstruments<DelivererMetrics>();
        builder.Services.AddSingleton<QueueDepth>();
        if (configured.HttpUrl.Length > 0)
        {
            // The queue depth is read from Redis only for the metrics.
            builder.Services.AddHostedService<QueueDepthSampler>();
        }
        var listeners = new DelivererListeners();
        builder.Services.AddSingleton(listeners);

        // The intake is raw SMTP on Kestrel (no HTTP): see docs/architecture.md for why not the SmtpServer package.
        // /healthz and /metrics on their own HTTP/1.1 listener (Gateway:Deliverer:HttpUrl).
        builder.WebHost.ConfigureKestrel(k =>
        {
            // ip:port, or unix:/path (security review M13: only the socket's owner and group can connect).
            void Bind(string address, Action<Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions> configure)
            {
                if (System.Net.IPEndPoint.TryParse(address, out var endpoint))
                {
                    k.Listen(endpoint, configure);
                }
                else if (Gateway.Core.Hosting.UnixSockets.TryParse(address, out var path))
                {
                    Gateway.Core.Hosting.UnixSockets.Listen(k, path, configure);
                }
            }

            Bind(configured.Listen, l =>
            {
                listeners.Intake = l;
                l.UseConnectionHandler<SmtpIntakeHandler>();
            });

            foreach (var (address, scope) in new[] { (configured.InboundListen, RelayScope.Inbound), (configured.OutboundListen, RelayScope.Outbound) })
            {
                if (address.Length > 0)
                {
                    Bind(address, l =>
                    {
                        if (scope == RelayScope.Inbound)
                        {
                            listeners.InboundIntake = l;
                        }
                        else
                        {
                            listeners.OutboundIntake = l;
                        }

                        // The scope travels with each connection of this listener to the intake's relay rule.
                        l.Use(next => connection =>
                        {
                            connection.Items[SmtpIntakeHandler.ScopeKey] = scope;
                            return next(connection);
                        });
                        l.UseConnectionHandler<SmtpIntakeHandler>();
                    });
                }
            }

            if (configured.HttpUrl.Length > 0 && KestrelUrls.TryParse(configured.HttpUrl, out _, out _, out _))
            {
                KestrelUrls.Bind(k, configured.HttpUrl, Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1, l => listeners.Http = l);
            }

            if (configured.MetricsUrl.Length > 0 && KestrelUrls.TryParse(configured.MetricsUrl, out _, out _, out _))
            {
                KestrelUrls.Bind(k, configured.MetricsUrl, Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1, l =>
                {
                    MetricsListener.Tag(l);
                    listeners.Metrics = l;
                });
            }
        });
        builder.WebHost.UseUrls();
        var app = builder.Build();
        if (configured.MetricsUrl.Length > 0)
        {
            app.UseMetricsOnlyOnItsListener();
        }

        app.MapGatewayTelemetry();
        return app;
    }

    /// <summary>The <c>/healthz</c> and <c>/metrics</c> address (<c>http://ip:port</c>, port 0 resolved); null when turned off.</summary>
    public static string? HttpAddress(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Services.GetRequiredService<DelivererListeners>().Http is { } http ? KestrelUrls.Address(http) : null;
    }

    /// <summary>The separate <c>/metrics</c> address; null when not configured.</summary>
    public static string? MetricsAddress(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Services.GetRequiredService<DelivererListeners>().Metrics is { } m ? KestrelUrls.Address(m) : null;
    }

    /// <summary>The intake's actual address (port 0 resolved).</summary>
    public static System.Net.IPEndPoint IntakeEndPoint(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Services.GetRequiredService<DelivererListeners>().Intake?.IPEndPoint ?? throw new InvalidOperationException("not started");
    }
}

/// <summary>The Deliverer's listeners as bound (their real ports are known once the host started).</summary>
public sealed class DelivererListeners
{
    public Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? Intake { get; set; }

    public Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? InboundIntake { get; set; }

    public Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? OutboundIntake { get; set; }

    public Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? Http { get; set; }

    public Microsoft.AspNetCore.Server.Kestrel.Core.ListenOptions? Metrics { get; set; }
}
