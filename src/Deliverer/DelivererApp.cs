using Gateway.Core;
using Gateway.Core.Delivery;
using Gateway.Deliverer.Delivery;
using Gateway.Deliverer.Intake;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
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
        builder.Services.AddOptions<DelivererOptions>()
            .Bind(builder.Configuration.GetSection(DelivererOptions.Section))
            .ValidateDataAnnotations()
            .Validate(DelivererOptions.IsValid,
                "Gateway:Deliverer: Listen must be ip:port, TrustedNetworks addresses or CIDR ranges, and every timeout and interval positive.")
            .ValidateOnStart();
        builder.Services.AddSingleton(sp => sp.GetRequiredService<IOptions<DelivererOptions>>().Value);
        builder.Services.AddSingleton<DestinationResolver>();
        builder.Services.AddSingleton<SmtpTransport>();
        builder.Services.AddSingleton<MessageDeliverer>();
        builder.Services.AddSingleton<DeliveryScheduler>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<DeliveryScheduler>());
        builder.Services.AddSingleton<IntakeWriter>();

        // The intake is raw SMTP on Kestrel (no HTTP): see docs/architecture.md for why not the SmtpServer package.
        var listen = builder.Configuration.GetSection(DelivererOptions.Section).Get<DelivererOptions>()?.Listen ?? new DelivererOptions().Listen;
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (System.Net.IPEndPoint.TryParse(listen, out var endpoint))
            {
                k.Listen(endpoint, l => l.UseConnectionHandler<SmtpIntakeHandler>());
            }
        });
        builder.WebHost.UseUrls();
        return builder.Build();
    }

    /// <summary>The intake's actual address (port 0 resolved).</summary>
    public static System.Net.IPEndPoint IntakeEndPoint(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.Single()
            ?? throw new InvalidOperationException("not started");
        var uri = new Uri(address);
        return new System.Net.IPEndPoint(System.Net.IPAddress.Parse(uri.Host.Trim('[', ']')), uri.Port);
    }
}
