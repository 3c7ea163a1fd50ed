using Gateway.Core.Delivery;
using Gateway.Core.Dns;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Gateway.Core.Verification;

public static class VerificationServiceCollectionExtensions
{
    /// <summary>
    /// Recipient verification for a front end that judges RCPT (PolicyDaemon, Deliverer intake): <c>Gateway:RecipientVerification</c>
    /// (validated at start), the cache, the probe and <see cref="RecipientVerifier"/>. Needs <c>AddGatewayCore</c>. The loop
    /// check is the program's <see cref="GatewaySelf"/> when it has one (the Deliverer), else the gateway's domain and sending addresses.
    /// </summary>
    public static IServiceCollection AddRecipientVerification(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<VerificationOptions>().Bind(configuration.GetSection(VerificationOptions.Section))
            .Validate(VerificationOptions.IsValid,
                "Gateway:RecipientVerification: every timeout and limit must be positive, ProbeSender empty or an address, HeloName one word.")
            .ValidateOnStart();
        services.TryAddSingleton<IMailDns, MailDns>();
        services.AddSingleton<VerificationCache>();
        services.AddSingleton(sp =>
        {
            var options = sp.GetRequiredService<IOptions<VerificationOptions>>().Value;
            var gateway = sp.GetRequiredService<GatewayOptions>();
            var self = sp.GetService<GatewaySelf>() ?? new GatewaySelf([],
                gateway.SendingAddresses.Select(a => System.Net.IPAddress.TryParse(a, out var ip) ? ip : null).OfType<System.Net.IPAddress>(), [], gateway.GatewayDomain);
            var helo = options.HeloName.Length > 0 ? options.HeloName
                : configuration[$"{QueueOptions.Section}:{nameof(QueueOptions.HostName)}"] is { Length: > 0 } h ? h : System.Net.Dns.GetHostName();
            return new SmtpCallout(sp.GetRequiredService<IMailDns>(), options, gateway, self, helo, sp.GetService<Tls.CertificateVerifier>());
        });
        services.AddSingleton(sp => new RecipientVerifier(sp.GetRequiredService<VerificationCache>(), sp.GetRequiredService<SmtpCallout>(),
            sp.GetRequiredService<IOptions<VerificationOptions>>().Value, sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<RecipientVerifier>>(), sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(),
            sp.GetService<MessageLog.BufferedMessageLog>()));
        return services;
    }
}
