using System.Security.Cryptography;
using System.Text;
using Gateway.Core.Domains;
using Gateway.Core.Errors;
using Gateway.ControlPlane.Application;
using Gateway.Core.Storage;
using StackExchange.Redis;

namespace Gateway.ControlPlane.Onboarding;

/// <summary>
/// Claim by proof (docs/requirements.md §3, security review M2): an unverified registration does not block the real
/// owner. A tenant whose CreateDomain finds the name registered by another tenant that never verified it gets a
/// claim record of its own: <c>&lt;prefix&gt;=&lt;claim token&gt;</c> in TXT at the domain (or an MX pointing at its
/// own <c>&lt;company&gt;.in.&lt;gateway&gt;</c>). Once DNS shows it, the next CreateDomain moves the domain: the
/// squatter's registration is deleted as a forced DeleteDomain would (its settings, rules, queue, quarantine and log
/// go), the claimant's is created already verified, and the move is logged (event 560). A verified owner is never
/// displaced. The claim token is an HMAC of (company, domain) under a secret kept in Redis, so claims need no storage.
/// </summary>
public sealed partial class DomainTakeover(
    DomainStore store,
    DomainManager domains,
    DomainVerifier verifier,
    IConnectionMultiplexer redis,
    TimeProvider clock,
    ILogger<DomainTakeover> logger)
{
    /// <summary>ErrorInfo reason of an ALREADY_EXISTS whose registration is unverified and can be claimed.</summary>
    public const string UnverifiedReason = "UNVERIFIED_REGISTRATION";

    // KEYS: the secret. ARGV: a fresh random secret. The first ControlPlane to ask sets it; all use it.
    private const string SecretScript = """
        redis.call('SET', KEYS[1], ARGV[1], 'NX')
        return redis.call('GET', KEYS[1])
        """;

    /// <summary>
    /// CreateDomain, with the takeover of an unverified registration when the caller proves ownership. Otherwise the
    /// error CreateDomain gave, with the claim record to publish when the current registration is unverified.
    /// </summary>
    public async Task<DomainConfig> CreateAsync(string companyId, string? name, DomainSettings settings, CancellationToken cancellationToken)
    {
        try
        {
            return await domains.CreateAsync(companyId, name, settings).ConfigureAwait(false);
        }
        catch (GatewayException e) when (e.Kind == ErrorKind.AlreadyExists && DomainName.TryNormalize(name, out var normalized, out _))
        {
            var current = await store.GetAsync(normalized).ConfigureAwait(false);
            if (current is null || current.CompanyId == companyId || current.Verification.Verified)
            {
                throw;
            }

            var token = await ClaimTokenAsync(companyId, normalized).ConfigureAwait(false);
            var claim = current with { CompanyId = companyId, Verification = current.Verification with { Token = token } };
            var proof = await verifier.CheckAsync(claim, cancellationToken).ConfigureAwait(false);
            if (!proof.Verified)
            {
                // The message stays the one docs/requirements.md §3 names; the claim record travels as google.rpc.ErrorInfo.
                throw new GatewayException(ErrorKind.AlreadyExists, DomainManager.AlreadyManagedMessage)
                {
                    Reason = UnverifiedReason,
                    Info = new Dictionary<string, string>
                    {
                        ["domain"] = normalized,
                        ["claim_txt_record"] = verifier.TxtRecord(claim),
                        ["claim_mx_host"] = verifier.MxHost(claim),
                    },
                };
            }

            // Forced delete of the unverified registration, only if it is still the one that was checked (etag).
            switch (await store.DeleteAsync(current.CompanyId, normalized, current.Etag, force: true, cancellationToken).ConfigureAwait(false))
            {
                case ChangeDomainOutcome.Done:
                    break;
                default:
                    GatewayException.ThrowAborted($"The registration of '{normalized}' changed while it was being claimed; try again.");
                    break;
            }

            var created = await domains.CreateAsync(companyId, normalized, settings).ConfigureAwait(false);
            var now = clock.GetUtcNow();
            var verified = await domains.ChangeAsync(normalized,
                c => c.CompanyId == companyId ? c with { Verification = new VerificationState(token, true, proof.Method, now) } : c,
                ConfigOps.Verify).ConfigureAwait(false);
            LogMoved(logger, normalized, current.CompanyId, companyId, proof.Method);
            return verified.CompanyId == companyId ? verified : created;
        }
    }

    /// <summary>The claim token of <paramref name="companyId"/> for <paramref name="domain"/>: 32 lower-case hex, stable.</summary>
    public async Task<string> ClaimTokenAsync(string companyId, string domain)
    {
        var secret = (string?)await redis.GetDatabase().ScriptEvaluateAsync(SecretScript, [RedisKeys.ClaimSecret],
            [Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32))]).ConfigureAwait(false) ?? throw new InvalidOperationException("no claim secret");
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes($"claim|{companyId}|{domain}"));
        return Convert.ToHexStringLower(mac.AsSpan(0, 16));
    }

    [LoggerMessage(EventId = 560, Level = LogLevel.Warning, Message = "Domain {Domain} moved from tenant {From} (unverified) to tenant {To}, who proved ownership by {Method}")]
    private static partial void LogMoved(ILogger logger, string domain, string from, string to, VerificationMethod method);
}
