using Gateway.Core;
using Gateway.Core.Delivery;
using Gateway.Core.Hosting;
namespace Gateway.ControlPlane.Application;

public static class ApplicationServiceCollectionExtensions
{
    /// <summary>
    /// The ControlPlane's use cases (tenants, domains, rules, queue, quarantine, message log) and its periodic jobs.
    /// Needs <c>AddGatewayCore</c>, <c>AddDeliveryQueue</c> and <c>AddQuarantine</c>.
    /// </summary>
    public static IServiceCollection AddControlPlaneApplication(this IServiceCollection services)
    {
        services.AddSingleton<TenantStore>();
        // What is the gateway itself, so a row pointing at it is refused at save (requirements §3.7): the gateway's
        // domain and host name, its sending addresses, and the Deliverer's intake listeners as configured.
        services.AddSingleton(sp =>
        {
            var gateway = sp.GetRequiredService<GatewayOptions>();
            var configuration = sp.GetRequiredService<IConfiguration>();
            var listeners = new[]
                {
                    configuration["Gateway:Deliverer:Listen"] ?? "127.0.0.1:10025", configuration["Gateway:Deliverer:InboundListen"],
                    configuration["Gateway:Deliverer:OutboundListen"],
                }
                .Select(l => System.Net.IPEndPoint.TryParse(l ?? string.Empty, out var ep) ? ep : null)
                .OfType<System.Net.IPEndPoint>().Where(ep => ep.Port != 0);
            var addresses = gateway.SendingAddresses.Select(a => System.Net.IPAddress.TryParse(a, out var ip) ? ip : null).OfType<System.Net.IPAddress>();
            var self = new GatewaySelf(listeners, addresses, [sp.GetRequiredService<QueueOptions>().EffectiveHostName], gateway.GatewayDomain);
            return new DomainValidator(gateway, self);
        });
        services.AddSingleton<DomainManager>();
        services.AddSingleton<RuleManager>();
        services.AddSingleton<TenantManager>();
        services.AddSingleton<MessageLogReader>();
        services.AddSingleton<MessageLogQueries>();
        services.AddSingleton<QueueAdmin>();
        services.AddSingleton<QuarantineAdmin>();
        return services;
    }
}
