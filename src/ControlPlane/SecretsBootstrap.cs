using Gateway.Core.Dkim;
using Gateway.Core.Secrets;

namespace Gateway.ControlPlane;

/// <summary>
/// Generates the key-encryption key file (<c>Gateway:Secrets:KeyFile</c>, mode 0600) at first start, as the operator
/// key is (requirements §2, §10), and says where it is: every Deliverer needs a copy to sign with the DKIM keys it seals.
/// A file that cannot be written or read is logged; DKIM requests then fail with a clear error, the rest of the API works.
/// </summary>
public sealed partial class SecretsBootstrap(KeyEncryptionProvider provider, ILogger<SecretsBootstrap> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            var kek = provider.Get();
            if (kek.Generated)
            {
                LogGenerated(logger, kek.Path, kek.Fingerprint);
            }
            else
            {
                LogLoaded(logger, kek.Path, kek.Fingerprint);
            }
        }
        catch (Exception e) when (e is SecretUnavailableException or IOException or UnauthorizedAccessException)
        {
            LogUnavailable(logger, e.Message);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "Key-encryption key generated in {Path} (owner-only; fingerprint {Fingerprint}); copy it to every Deliverer host (Gateway:Secrets:KeyFile)")]
    private static partial void LogGenerated(ILogger logger, string path, string fingerprint);

    [LoggerMessage(EventId = 21, Level = LogLevel.Information, Message = "Key-encryption key read from {Path} (fingerprint {Fingerprint})")]
    private static partial void LogLoaded(ILogger logger, string path, string fingerprint);

    [LoggerMessage(EventId = 22, Level = LogLevel.Error, Message = "Key-encryption key unavailable, DKIM keys cannot be generated: {Reason}")]
    private static partial void LogUnavailable(ILogger logger, string reason);
}
