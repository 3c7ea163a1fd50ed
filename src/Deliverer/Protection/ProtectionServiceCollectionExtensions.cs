using Gateway.Core.Telemetry;
using Microsoft.Extensions.Options;

namespace Gateway.Deliverer.Protection;

public static class ProtectionServiceCollectionExtensions
{
    /// <summary>The intake's scanning (requirements §9): options (<c>Gateway:Protection</c>), the engines' clients, the scanner, its metrics.</summary>
    public static IServiceCollection AddProtection(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ProtectionOptions>()
            .Bind(configuration.GetSection(ProtectionOptions.Section))
            .Validate(ProtectionOptions.IsValid,
                "Gateway:Protection: RspamdUrls must be http(s) URLs, ClamdServers host:port or unix:/path, timeouts positive, RspamdSettings a JSON object or empty, AuthServId one token.")
            .ValidateOnStart();
        services.AddSingleton(sp => sp.GetRequiredService<IOptions<ProtectionOptions>>().Value);
        services.AddSingleton<RspamdClient>();
        services.AddSingleton<ClamdClient>();
        services.AddSingleton<MessageScanner>();
        services.AddGatewayInstruments<ProtectionMetrics>();
        services.AddHostedService<ProtectionStartupLog>();
        return services;
    }
}

/// <summary>Says at start what the intake scans with, and warns loudly when it scans nothing.</summary>
internal sealed partial class ProtectionStartupLog(ProtectionOptions options, RspamdClient rspamd, ClamdClient clamd, ILogger<ProtectionStartupLog> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Mode == ProtectionMode.Off)
        {
            LogOff(logger);
        }
        else
        {
            var engines = string.Join(", ", rspamd.Servers);
            var malware = clamd.Servers.Count > 0 ? string.Join(", ", clamd.Servers) : "rspamd's antivirus module";
            LogEngines(logger, engines, malware);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 1610, Level = LogLevel.Warning, Message = "Protection is OFF (Gateway:Protection:Mode=Off): accepted mail is not scanned for spam or malware")]
    private static partial void LogOff(ILogger logger);

    [LoggerMessage(EventId = 1611, Level = LogLevel.Information, Message = "Protection: rspamd at {Rspamd}; malware by {Clamd}")]
    private static partial void LogEngines(ILogger logger, string rspamd, string clamd);
}
