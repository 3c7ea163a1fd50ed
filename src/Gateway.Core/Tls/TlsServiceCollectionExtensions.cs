using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Gateway.Core.Tls;

public static class TlsServiceCollectionExtensions
{
    /// <summary><c>Gateway:Tls</c> (validated at start: a configured TrustedCaFile must load) and the <see cref="CertificateVerifier"/>.</summary>
    public static IServiceCollection AddTlsVerification(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<TlsOptions>().Bind(configuration.GetSection(TlsOptions.Section))
            .Validate(Loads, "Gateway:Tls:TrustedCaFile must be a readable PEM file with at least one certificate.").ValidateOnStart();
        services.AddSingleton(sp => CertificateVerifier.FromOptions(sp.GetRequiredService<IOptions<TlsOptions>>().Value));
        return services;
    }

    private static bool Loads(TlsOptions options)
    {
        try
        {
            options.LoadTrustedRoots();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}
