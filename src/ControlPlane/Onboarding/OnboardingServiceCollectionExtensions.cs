using Gateway.Core.Hosting;
using Gateway.Core.Domains;
using Gateway.Core.Spf;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Gateway.ControlPlane.Spf;
using Gateway.Core;
using Gateway.Core.Dns;

namespace Gateway.ControlPlane.Onboarding;

public static class OnboardingServiceCollectionExtensions
{
    /// <summary>
    /// Verification, health checks, the connection test and the SPF evaluator (after
    /// <see cref="ServiceCollectionExtensions.AddGatewayCore"/>). Options are validated at start.
    /// </summary>
    public static IServiceCollection AddOnboarding(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<OnboardingOptions>()
            .Bind(configuration.GetSection(OnboardingOptions.Section))
            .ValidateDataAnnotations()
            .Validate(o => o.RoundInterval > TimeSpan.Zero && o.UnverifiedRecheckInterval > TimeSpan.Zero && o.HealthRefreshInterval > TimeSpan.Zero,
                "Gateway:Onboarding:RoundInterval, UnverifiedRecheckInterval and HealthRefreshInterval must be positive.")
            .Validate(o => o.ConnectTimeout > TimeSpan.Zero && o.ConnectTimeout <= TimeSpan.FromMinutes(5),
                "Gateway:Onboarding:ConnectTimeout must be positive and at most 5 minutes.")
            .Validate(o => o.CheckLockTime > TimeSpan.Zero, "Gateway:Onboarding:CheckLockTime must be positive.")
            .ValidateOnStart();
        services.AddOptions<GatewayOptions>()
            .Validate(o => o.SendingAddresses.All(a => IpAddressText.TryParseSingle(a, out _, out _)),
                "Gateway:SendingAddresses entries must be single IPv4 or IPv6 addresses (the gateway's outbound sending addresses).")
            .Validate(o => Gateway.Core.Spf.SpfRecord.TryParse("v=spf1 " + o.EffectiveSpfInclude.Trim(), out var r, out _) && r.Mechanisms.Count == 1,
                "Gateway:SpfInclude must be one SPF mechanism, e.g. include:_spf.gateway.example.")
            .ValidateOnStart();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<OnboardingOptions>>().Value);
        services.AddSingleton<TestMessageSender>();
        services.TryAddSingleton<IMailDns, MailDns>();
        services.AddSingleton<SpfEvaluator>();
        services.AddSingleton<SpfIncludeSearch>();
        services.AddSingleton<SpfFindings>();
        services.AddSingleton<DomainVerifier>();
        services.AddSingleton<SmtpTlsProbe>();
        services.AddSingleton<ConnectionTester>();
        services.AddSingleton<DomainHealthChecker>();
        services.AddSingleton<DomainHealthStore>();
        services.AddSingleton<Gateway.ControlPlane.Dkim.DkimManager>();
        services.AddSingleton<OnboardingService>();
        services.AddSingleton<OnboardingRound>();
        return services;
    }
}
