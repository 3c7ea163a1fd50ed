using Gateway.Core.Secrets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Gateway.Core.Dkim;

/// <summary>The key-encryption key, read (or, in the ControlPlane, generated) on first use and kept once read.</summary>
public sealed class KeyEncryptionProvider(SecretsOptions options, bool create)
{
    private readonly object _gate = new();
    private KeyEncryption? _kek;

    /// <exception cref="SecretUnavailableException">The key file is missing or malformed (tried again at the next call).</exception>
    public KeyEncryption Get()
    {
        lock (_gate)
        {
            return _kek ??= KeyEncryption.Load(options.KeyFile, create);
        }
    }
}

public static class DkimServiceCollectionExtensions
{
    /// <summary>
    /// DKIM key storage: <c>Gateway:Secrets</c> (the key-encryption key file; <paramref name="createKeyFile"/> in the
    /// ControlPlane only, which generates it at first start) and <c>Gateway:Dkim</c>. The ControlPlane adds <see cref="DkimManager"/>.
    /// </summary>
    public static IServiceCollection AddDkimKeys(this IServiceCollection services, IConfiguration configuration, bool createKeyFile)
    {
        services.AddOptions<SecretsOptions>().Bind(configuration.GetSection(SecretsOptions.Section))
            .Validate(o => !string.IsNullOrWhiteSpace(o.KeyFile), "Gateway:Secrets:KeyFile must name a file.").ValidateOnStart();
        services.AddOptions<DkimOptions>().Bind(configuration.GetSection(DkimOptions.Section))
            .Validate(o => o.RetiredKeyKeepTime >= TimeSpan.Zero, "Gateway:Dkim:RetiredKeyKeepTime must not be negative.").ValidateOnStart();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<SecretsOptions>>().Value);
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<DkimOptions>>().Value);
        services.AddSingleton(sp => new KeyEncryptionProvider(sp.GetRequiredService<SecretsOptions>(), createKeyFile));
        services.AddSingleton(sp => new DkimKeyStore(sp.GetRequiredService<StackExchange.Redis.IConnectionMultiplexer>(), sp.GetRequiredService<KeyEncryptionProvider>().Get));
        return services;
    }
}
