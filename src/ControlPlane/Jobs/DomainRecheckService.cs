using Gateway.ControlPlane.Onboarding;
using StackExchange.Redis;

namespace Gateway.ControlPlane.Jobs;

/// <summary>
/// The background job of requirements §3: every <see cref="OnboardingOptions.RoundInterval"/> it re-verifies
/// unverified domains and refreshes stored health (see <see cref="OnboardingRound"/>). Every ControlPlane
/// runs it; per-domain Redis locks share the work. Off with <c>Gateway:Onboarding:BackgroundChecks=false</c>.
/// </summary>
public sealed partial class DomainRecheckService(OnboardingRound round, OnboardingOptions options, TimeProvider clock, ILogger<DomainRecheckService> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.BackgroundChecks)
        {
            LogDisabled(logger);
            return;
        }

        using var timer = new PeriodicTimer(options.RoundInterval, clock);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                try
                {
                    var checkedCount = await round.RunOnceAsync(stoppingToken).ConfigureAwait(false);
                    if (checkedCount > 0)
                    {
                        LogRound(logger, checkedCount);
                    }
                }
                catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
                {
                    // Redis away: the next round tries again.
                    LogRoundFailed(logger, e.Message);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(EventId = 563, Level = LogLevel.Information, Message = "Background domain checks are off (Gateway:Onboarding:BackgroundChecks)")]
    private static partial void LogDisabled(ILogger logger);

    [LoggerMessage(EventId = 561, Level = LogLevel.Debug, Message = "Background round checked {Count} domains")]
    private static partial void LogRound(ILogger logger, int count);

    [LoggerMessage(EventId = 562, Level = LogLevel.Warning, Message = "Background domain check round failed: {Error}")]
    private static partial void LogRoundFailed(ILogger logger, string error);
}
