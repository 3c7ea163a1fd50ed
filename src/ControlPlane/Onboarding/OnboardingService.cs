using Gateway.Core.Domains;
using Gateway.Core.Errors;
using Gateway.Core.Storage;
using Microsoft.Extensions.Logging;
using Gateway.ControlPlane.Application;

namespace Gateway.ControlPlane.Onboarding;

/// <summary>The answer to VerifyDomain.</summary>
public sealed record VerifyOutcome(DomainConfig Domain, bool Verified, string Message);

/// <summary>
/// Onboarding use cases for one tenant (VerifyDomain, CheckDomain, TestConnection) and for the
/// background job. Tenant isolation comes from <see cref="DomainManager.GetAsync"/>: another tenant's
/// domain is NOT_FOUND. Verification is saved through <see cref="DomainManager.ChangeAsync"/> with
/// <see cref="ConfigOps.Verify"/>, so it is announced and every program's snapshot sees it; it is never
/// taken back (requirements §3: once verified, removing the TXT record changes nothing).
/// </summary>
public sealed partial class OnboardingService(
    DomainManager domains,
    DomainValidator validator,
    DomainVerifier verifier,
    DomainHealthChecker checker,
    ConnectionTester tester,
    DomainHealthStore health,
    TimeProvider clock,
    ILogger<OnboardingService> logger,
    Gateway.ControlPlane.Dkim.DkimManager dkim)
{
    public async Task<VerifyOutcome> VerifyAsync(string companyId, string? name, CancellationToken cancellationToken)
    {
        var domain = await domains.GetAsync(companyId, name).ConfigureAwait(false);
        if (domain.Verification.Verified)
        {
            return new VerifyOutcome(domain, true, $"Domain {domain.Name} is already verified{By(domain)}.");
        }

        var (saved, check) = await VerifyNowAsync(domain, cancellationToken).ConfigureAwait(false);
        return check.Verified
            ? new VerifyOutcome(saved, true, $"Domain {saved.Name} is verified{By(saved)}.")
            : new VerifyOutcome(saved, false, verifier.NotVerifiedMessage(saved, check));
    }

    /// <summary>CheckDomain: verifies an unverified domain first, then runs every check and stores the result.</summary>
    public async Task<(DomainConfig Domain, HealthReport Report)> CheckAsync(string companyId, string? name, CancellationToken cancellationToken)
    {
        var domain = await domains.GetAsync(companyId, name).ConfigureAwait(false);
        return await CheckAndStoreAsync(domain, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// TestConnection: the saved inbound servers, or <paramref name="rows"/> when given (to test a change
    /// before saving it), validated with the same rules as a save; field paths are <c>inbound_servers[i].*</c>.
    /// </summary>
    public async Task<ConnectionTestResult> TestConnectionAsync(string companyId, string? name, IReadOnlyList<InboundServer> rows, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var domain = await domains.GetAsync(companyId, name).ConfigureAwait(false);
        var servers = domain.Settings.InboundServers;
        if (rows.Count > 0)
        {
            const string Prefix = "request";
            var violations = new List<FieldViolation>();
            var clean = validator.NormalizeSettings(domain.Name, new DomainSettings(false, rows, OutboundSettings.Disabled), Prefix, violations);
            if (violations.Count > 0)
            {
                GatewayException.ThrowInvalid(violations.Select(v => v with { Field = v.Field[(Prefix.Length + 1)..] }).ToList());
            }

            servers = clean.InboundServers;
        }

        return await tester.TestAsync(servers, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The stored health of domains, in order (for ListDomains and GetDomain).</summary>
    public Task<StoredHealth[]> StoredHealthAsync(IReadOnlyList<DomainConfig> list)
    {
        ArgumentNullException.ThrowIfNull(list);
        return health.GetManyAsync(list.Select(d => d.Name).ToList());
    }

    /// <summary>Verifies an unverified domain if DNS now proves it, runs every check and stores the report.</summary>
    public async Task<(DomainConfig Domain, HealthReport Report)> CheckAndStoreAsync(DomainConfig domain, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(domain);
        VerificationCheck? check = null;
        if (!domain.Verification.Verified)
        {
            (domain, check) = await VerifyNowAsync(domain, cancellationToken).ConfigureAwait(false);
        }

        // DKIM first: a record now seen in DNS activates the key (or finishes a rotation) before the report is made.
        (domain, var dkimFindings) = await dkim.AdvanceAsync(domain, cancellationToken).ConfigureAwait(false);
        var report = await checker.CheckAsync(domain, check, cancellationToken).ConfigureAwait(false);
        if (dkimFindings.Count > 0)
        {
            var findings = report.Findings.Concat(dkimFindings).ToList();
            report = report with { Findings = findings, Status = HealthReport.StatusOf(findings) };
        }

        await health.SaveAsync(report).ConfigureAwait(false);
        LogChecked(logger, domain.Name, report.Status, report.Findings.Count);
        return (domain, report);
    }

    /// <summary>Asks DNS now; when the TXT record or MX is there, saves the domain as verified (method and time) and announces it.</summary>
    public async Task<(DomainConfig Domain, VerificationCheck Check)> VerifyNowAsync(DomainConfig domain, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(domain);
        var check = await verifier.CheckAsync(domain, cancellationToken).ConfigureAwait(false);
        if (!check.Verified)
        {
            return (domain, check);
        }

        var now = clock.GetUtcNow();

        // Same registration only (owner and token): a domain deleted and registered again meanwhile has a new token.
        var saved = await domains.ChangeAsync(domain.Name, current =>
            current.Verification.Verified || current.CompanyId != domain.CompanyId || current.Verification.Token != domain.Verification.Token
                ? current
                : current with { Verification = current.Verification with { Verified = true, Method = check.Method, VerifyTime = now } },
            ConfigOps.Verify).ConfigureAwait(false);
        if (saved.CompanyId != domain.CompanyId || saved.Verification.Token != domain.Verification.Token)
        {
            GatewayException.ThrowNotFound($"Domain '{domain.Name}' not found.");
        }

        LogVerified(logger, saved.Name, saved.Verification.Method);
        return (saved, check);
    }

    private string By(DomainConfig d) => d.Verification.Method switch
    {
        VerificationMethod.Txt => $" by its TXT record \"{verifier.TxtRecord(d)}\"",
        VerificationMethod.Mx => $" by its MX record pointing at {verifier.MxHost(d)}",
        _ => string.Empty,
    } + (d.Verification.VerifyTime is { } t ? $" (since {t.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC)" : string.Empty);

    [LoggerMessage(EventId = 550, Level = LogLevel.Information, Message = "Domain {Domain} verified by {Method}")]
    private static partial void LogVerified(ILogger logger, string domain, VerificationMethod method);

    [LoggerMessage(EventId = 551, Level = LogLevel.Debug, Message = "Domain {Domain} checked: {Status}, {Findings} findings")]
    private static partial void LogChecked(ILogger logger, string domain, DomainStatus status, int findings);
}
