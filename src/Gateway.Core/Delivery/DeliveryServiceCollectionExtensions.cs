using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Gateway.Core.Delivery;

public static class DeliveryServiceCollectionExtensions
{
    /// <summary>The delivery queue store and its options (<c>Gateway:Queue</c>), for the Deliverer and the ControlPlane.</summary>
    public static IServiceCollection AddDeliveryQueue(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<QueueOptions>()
            .Bind(configuration.GetSection(QueueOptions.Section))
            .ValidateDataAnnotations()
            .Validate(QueueOptions.IsValid, "Gateway:Queue: Lease must be at least 0.5 s, FirstRetryDelay and MaxLifetime positive, MaxRetryDelay >= FirstRetryDelay.")
            .ValidateOnStart();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<QueueOptions>>().Value);
        services.AddSingleton<MessageQueue>();
        return services;
    }
}
