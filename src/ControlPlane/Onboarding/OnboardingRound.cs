using Gateway.Core.Domains;
using Gateway.Core.Errors;
using Gateway.Core.Storage;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Gateway.ControlPlane.Onboarding;

/// <summary>What the background job owes a domain now.</summary>
public enum CheckDue
{
    No,

    /// <summary>Unverified and not asked for a while: ask DNS for the TXT record / MX again.</summary>
    Verify,

    /// <summary>Never checked, changed since its last check, or its health is old: run every check.</summary>
    Full,
}

/// <summary>
/// One round of the background job (requirements §3: "unverified domains are also re-checked in the background";
/// ListDomains shows each domain's status): finds the domains that are due and checks them. Safe with
/// several ControlPlanes on one Redis: each domain is checked under a short per-domain Redis lock, and
/// whether it is still due is decided again under the lock, so a domain is checked once per due time
/// however many ControlPlanes run rounds, and they share the work.
/// </summary>
public sealed partial class OnboardingRound(
    DomainStore store,
    DomainHealthStore health,
    OnboardingService service,
    OnboardingOptions options,
    TimeProvider clock,
    ILogger<OnboardingRound> logger,
    Gateway.ControlPlane.Application.TenantLimits? limits = null)
{
    /// <summary>Pure: what is due for <paramref name="domain"/> given its stored health at <paramref name="now"/>.</summary>
    public static CheckDue WhatIsDue(DomainConfig domain, StoredHealth stored, DateTimeOffset now, OnboardingOptions options)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(stored);
        ArgumentNullException.ThrowIfNull(options);
        if (stored.Report is not { } report || report.Revision != domain.Revision || now - report.CheckTime >= options.HealthRefreshInterval)
        {
            return CheckDue.Full;
        }

        if (!domain.Verification.Verified)
        {
            var lastAsked = stored.VerifyAttempt is { } attempt && attempt > report.CheckTime ? attempt : report.CheckTime;
            if (now - lastAsked >= options.UnverifiedRecheckInterval)
            {
                return CheckDue.Verify;
            }
        }

        // A DKIM record awaited in DNS (new key or rotation) is looked for as often as an unverified domain's proof.
        if (domain.Dkim is { AwaitsDns: true } && now - report.CheckTime >= options.UnverifiedRecheckInterval)
        {
            return CheckDue.Full;
        }

        return CheckDue.No;
    }

    /// <summary>Checks every due domain (a few at a time); returns how many this process checked.</summary>
    public async Task<int> RunOnceAsync(CancellationToken cancellationToken)
    {
        var all = await store.LoadAllAsync(cancellationToken).ConfigureAwait(false);
        var stored = await health.GetManyAsync(all.Select(d => d.Name).ToList()).ConfigureAwait(false);
        var now = clock.GetUtcNow();
        // At most BackgroundChecksPerTenant per tenant and round: one tenant's thousands of unverified domains
        // cannot take every round's DNS lookups and connections (docs/reliability.md "Hostile tenant").
        var perTenant = limits?.BackgroundChecksPerTenant ?? int.MaxValue;
        var due = all.Where((d, i) => WhatIsDue(d, stored[i], now, options) != CheckDue.No)
            .GroupBy(d => d.CompanyId, StringComparer.Ordinal)
            .SelectMany(g => g.Take(perTenant))
            .Select(d => d.Name).ToList();
        var checkedCount = 0;
        await Parallel.ForEachAsync(due, new ParallelOptions { MaxDegreeOfParallelism = options.MaxParallelChecks, CancellationToken = cancellationToken },
            async (name, ct) =>
            {
                if (await CheckOneAsync(name, ct).ConfigureAwait(false))
                {
                    Interlocked.Increment(ref checkedCount);
                }
            }).ConfigureAwait(false);
        return checkedCount;
    }

    private async Task<bool> CheckOneAsync(string name, CancellationToken cancellationToken)
    {
        string? token;
        try
        {
            token = await health.TryLockAsync(name, options.CheckLockTime).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException)
        {
            LogCheckFailed(logger, name, e.Message);
            return false;
        }

        if (token is null)
        {
            // Another ControlPlane is on it.
            return false;
        }

        try
        {
            // Decide again under the lock: another ControlPlane may have checked it since this round looked.
            var domain = await store.GetAsync(name).ConfigureAwait(false);
            if (domain is null)
            {
                return false;
            }

            var stored = (await health.GetManyAsync([name]).ConfigureAwait(false))[0];
            var now = clock.GetUtcNow();
            switch (WhatIsDue(domain, stored, now, options))
            {
                case CheckDue.No:
                    return false;
                case CheckDue.Verify:
                    var (after, check) = await service.VerifyNowAsync(domain, cancellationToken).ConfigureAwait(false);
                    if (!check.Verified)
                    {
                        await health.SaveVerifyAttemptAsync(name, now).ConfigureAwait(false);
                        return true;
                    }

                    // Verified now: refresh the health at once so ListDomains follows.
                    await service.CheckAndStoreAsync(after, cancellationToken).ConfigureAwait(false);
                    return true;
                default:
                    await service.CheckAndStoreAsync(domain, cancellationToken).ConfigureAwait(false);
                    return true;
            }
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException or GatewayException)
        {
            // The next round tries again; one domain's trouble does not stop the others.
            LogCheckFailed(logger, name, e.Message);
            return false;
        }
        finally
        {
            try
            {
                await health.ReleaseAsync(name, token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or RedisTimeoutException)
            {
                // The lock expires by itself after CheckLockTime.
                LogCheckFailed(logger, name, e.Message);
            }
        }
    }

    [LoggerMessage(EventId = 552, Level = LogLevel.Warning, Message = "Background check of {Domain} failed: {Error}")]
    private static partial void LogCheckFailed(ILogger logger, string domain, string error);
}
