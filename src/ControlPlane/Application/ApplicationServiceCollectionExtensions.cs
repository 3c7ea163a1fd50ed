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
        services.AddSingleton<DomainValidator>();
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
