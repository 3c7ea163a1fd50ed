using Gateway.ControlPlane.Application;
using Gateway.ControlPlane.Onboarding;
using Gateway.Core.Dkim;
using Gateway.Core.Dns;
using Gateway.Core.Domains;
using Gateway.Core.Errors;
using Microsoft.Extensions.Logging;

namespace Gateway.ControlPlane.Dkim;

/// <summary>
/// DKIM use cases of the ControlPlane (requirements §10; docs/outbound.md "DKIM life cycle"): enable (generate a key
/// pair, RSA-2048 or Ed25519), disable, rotate, and advance the life cycle from what DNS shows (called by CheckDomain
/// and the background checks). Private keys are sealed into <see cref="DkimKeyStore"/> before the domain names them;
/// the state lives in the domain's config so every Deliverer follows it.
/// </summary>
public sealed partial class DkimManager(DomainManager domains, DkimKeyStore keys, IMailDns dns, DkimOptions options, TimeProvider clock, ILogger<DkimManager> logger)
{
    /// <summary>The change-feed op of DKIM changes.</summary>
    public const string Op = "dkim";

    public async Task<DomainConfig> EnableAsync(string companyId, string? name, DkimKeyAlgorithm algorithm, string? selector)
    {
        var domain = await domains.GetAsync(companyId, name).ConfigureAwait(false);
        if (domain.Dkim is not null)
        {
            GatewayException.ThrowFailedPrecondition(
                $"DKIM is already enabled for {domain.Name} (selector {domain.Dkim.Current.Selector}); use RotateDkimKey for a new key, or DisableDkim first.");
        }

        var key = await NewKeyAsync(domain, algorithm, selector, []).ConfigureAwait(false);
        var saved = await domains.ChangeAsync(domain.Name, current =>
            current.CompanyId != domain.CompanyId || current.Dkim is not null ? current : current with { Dkim = DkimLifecycle.Enabled(key) }, Op).ConfigureAwait(false);
        if (saved.Dkim?.Current != key)
        {
            await keys.DeleteAsync(domain.Name, key.Selector).ConfigureAwait(false);
            GatewayException.ThrowAborted($"Domain '{domain.Name}' changed meanwhile (DKIM was enabled by another request); read it again.");
        }

        LogEnabled(logger, saved.Name, key.Selector, key.Algorithm);
        return saved;
    }

    public async Task<DomainConfig> DisableAsync(string companyId, string? name)
    {
        var domain = await domains.GetAsync(companyId, name).ConfigureAwait(false);
        if (domain.Dkim is null)
        {
            return domain;
        }

        var saved = await domains.ChangeAsync(domain.Name, current => current.Dkim is null ? current : current with { Dkim = null }, Op).ConfigureAwait(false);
        // Signing stops with the snapshot; the keys can go now (a Deliverer still holding one in memory signs at most a few more messages).
        await keys.DeleteAllAsync(domain.Name).ConfigureAwait(false);
        LogDisabled(logger, saved.Name);
        return saved;
    }

    /// <summary>Starts a rotation: a new key pair and selector; the switch happens once DNS shows its record (<see cref="AdvanceAsync"/>).</summary>
    public async Task<DomainConfig> RotateAsync(string companyId, string? name, DkimKeyAlgorithm? algorithm, string? selector)
    {
        var domain = await domains.GetAsync(companyId, name).ConfigureAwait(false);
        var state = domain.Dkim;
        switch (state?.Phase)
        {
            case null:
                GatewayException.ThrowFailedPrecondition($"DKIM is not enabled for {domain.Name}; enable it first (EnableDkim).");
                break;
            case DkimPhase.PendingDns:
                GatewayException.ThrowFailedPrecondition(
                    $"The DKIM key of {domain.Name} is not active yet: publish {state.Current.RecordName(domain.Name)} first (or DisableDkim and enable it again for another key).");
                break;
            case DkimPhase.Rotating:
                GatewayException.ThrowFailedPrecondition(
                    $"A DKIM key rotation of {domain.Name} is in progress: publish {state.Next!.RecordName(domain.Name)}; the gateway switches once it sees it.");
                break;
        }

        var taken = new[] { state!.Current.Selector, state.Retired?.Selector }.OfType<string>().ToList();
        var key = await NewKeyAsync(domain, algorithm ?? state.Current.Algorithm, selector, taken).ConfigureAwait(false);
        var saved = await domains.ChangeAsync(domain.Name, current =>
            current.Dkim is { Phase: DkimPhase.Active } s && s.Current == state.Current ? current with { Dkim = DkimLifecycle.Rotated(s, key) } : current, Op).ConfigureAwait(false);
        if (saved.Dkim?.Next != key)
        {
            await keys.DeleteAsync(domain.Name, key.Selector).ConfigureAwait(false);
            GatewayException.ThrowAborted($"Domain '{domain.Name}' changed meanwhile; read it again.");
        }

        LogRotating(logger, saved.Name, state.Current.Selector, key.Selector);
        return saved;
    }

    /// <summary>
    /// Looks up the records of the domain's keys, saves the next life-cycle state when DNS allows it (pending → active,
    /// rotating → switched, retired → gone) and returns the findings for CheckDomain (none when DKIM is off).
    /// </summary>
    public async Task<(DomainConfig Domain, IReadOnlyList<Finding> Findings)> AdvanceAsync(DomainConfig domain, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(domain);
        if (domain.Dkim is not { } state)
        {
            return (domain, []);
        }

        var view = await LookAsync(domain.Name, state, cancellationToken).ConfigureAwait(false);
        var (next, forget) = DkimLifecycle.Advance(state, view, clock.GetUtcNow(), options.RetiredKeyKeepTime);
        if (next != state)
        {
            domain = await domains.ChangeAsync(domain.Name, current => current.Dkim == state ? current with { Dkim = next } : current, Op).ConfigureAwait(false);
            if (domain.Dkim == next)
            {
                if (forget is not null)
                {
                    await keys.DeleteAsync(domain.Name, forget).ConfigureAwait(false);
                }

                LogAdvanced(logger, domain.Name, state.Phase, next.Phase, next.Current.Selector);
                state = next;
                view = await LookAsync(domain.Name, state, cancellationToken).ConfigureAwait(false);
            }
            else if (domain.Dkim is { } changed)
            {
                state = changed; // someone else moved it; report on what is stored
                view = await LookAsync(domain.Name, state, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                return (domain, []);
            }
        }

        return (domain, DkimLifecycle.Findings(domain.Name, state, view));
    }

    private async Task<DkimDnsView> LookAsync(string domain, DkimState state, CancellationToken cancellationToken)
    {
        async Task<DkimRecordMatch?> Match(DkimKey? key)
        {
            if (key is null)
            {
                return null;
            }

            var answer = await dns.TxtAsync(key.RecordName(domain), cancellationToken).ConfigureAwait(false);
            return answer.Outcome == DnsOutcome.Failed ? null : DkimRecord.Compare(answer.Records, key);
        }

        var current = Match(state.Current);
        var next = Match(state.Next);
        var retired = Match(state.Retired);
        return new DkimDnsView(await current.ConfigureAwait(false), await next.ConfigureAwait(false), await retired.ConfigureAwait(false));
    }

    private async Task<DkimKey> NewKeyAsync(DomainConfig domain, DkimKeyAlgorithm algorithm, string? selector, IReadOnlyList<string> taken)
    {
        if (!Enum.IsDefined(algorithm))
        {
            GatewayException.ThrowInvalid("algorithm", "algorithm must be RSA (RSA-2048, the default) or ED25519");
        }

        var now = clock.GetUtcNow();
        if (string.IsNullOrWhiteSpace(selector))
        {
            selector = DkimLifecycle.NewSelector(now, taken);
        }
        else
        {
            selector = selector.Trim().ToLowerInvariant();
            if (!DkimLifecycle.IsValidSelector(selector, out var why))
            {
                GatewayException.ThrowInvalid("selector", why);
            }

            if (taken.Contains(selector, StringComparer.OrdinalIgnoreCase))
            {
                GatewayException.ThrowInvalid("selector", $"selector {selector} is in use by {domain.Name}; a new key needs a new selector");
            }
        }

        var pair = DkimKeyPair.Generate(algorithm);
        try
        {
            await keys.SaveAsync(domain.Name, selector, pair, now).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Gateway.Core.Secrets.SecretUnavailableException or IOException or UnauthorizedAccessException)
        {
            LogKekUnavailable(logger, e.Message);
            GatewayException.ThrowFailedPrecondition("The gateway cannot store DKIM keys: its key-encryption key (Gateway:Secrets:KeyFile) is unavailable; the operator must fix it.");
        }
        return new DkimKey(selector, algorithm, pair.PublicKey, now);
    }

    [LoggerMessage(EventId = 574, Level = LogLevel.Error, Message = "DKIM key not stored: the key-encryption key is unavailable: {Reason}")]
    private static partial void LogKekUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 570, Level = LogLevel.Information, Message = "DKIM enabled for {Domain}: selector {Selector}, {Algorithm}; waiting for its DNS record")]
    private static partial void LogEnabled(ILogger logger, string domain, string selector, DkimKeyAlgorithm algorithm);

    [LoggerMessage(EventId = 571, Level = LogLevel.Information, Message = "DKIM disabled for {Domain}; its keys were deleted")]
    private static partial void LogDisabled(ILogger logger, string domain);

    [LoggerMessage(EventId = 572, Level = LogLevel.Information, Message = "DKIM key rotation of {Domain} started: {Old} signs until {New} is seen in DNS")]
    private static partial void LogRotating(ILogger logger, string domain, string old, string @new);

    [LoggerMessage(EventId = 573, Level = LogLevel.Information, Message = "DKIM of {Domain}: {From} -> {To}, signing selector {Selector}")]
    private static partial void LogAdvanced(ILogger logger, string domain, DkimPhase from, DkimPhase to, string selector);
}
