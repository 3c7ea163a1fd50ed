using Gateway.Core.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Gateway.Core.Quarantine;

public static class QuarantineServiceCollectionExtensions
{
    /// <summary>The quarantine store and its options (<c>Gateway:Quarantine</c>); needs <c>AddGatewayCore</c> and <c>AddDeliveryQueue</c>.</summary>
    public static IServiceCollection AddQuarantine(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<QuarantineOptions>()
            .Bind(configuration.GetSection(QuarantineOptions.Section))
            .Validate(QuarantineOptions.IsValid, "Gateway:Quarantine: Retention and ReleaseClaimTimeout must be positive.")
            .ValidateOnStart();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<QuarantineOptions>>().Value);
        services.AddSingleton<QuarantineStore>();
        return services;
    }
}
