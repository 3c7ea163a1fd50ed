using System.Security.Cryptography;
using Gateway.Core.Errors;
using Gateway.Core.Storage;
using Gateway.Core;
using Gateway.Core.Domains;

namespace Gateway.ControlPlane.Application;

/// <summary>What a customer should undo after a domain is deleted (requirements §3.15).</summary>
public sealed record UndoStep(string Code, string Instruction);

/// <summary>
/// Managed-domain use cases for one tenant: validate, call the store, turn store outcomes into
/// the errors requirements §2/§3 name. Tenant isolation lives here: another tenant's domain is NOT_FOUND.
/// </summary>
/// <remarks>Without <paramref name="limits"/> (tools, benchmarks) a tenant may register any number of domains.</remarks>
public sealed class DomainManager(DomainStore store, DomainValidator validator, GatewayOptions options, TimeProvider clock, TenantLimits? limits = null)
{
    /// <summary>The exact message of requirements §3 for a domain any tenant manages already.</summary>
    public const string AlreadyManagedMessage = "Cannot add managed domain: this domain is already managed by the gateway.";

    private const int MaxUpdateAttempts = 5;

    public async Task<DomainConfig> CreateAsync(string companyId, string? name, DomainSettings settings)
    {
        var violations = new List<FieldViolation>();
        var normalized = validator.NormalizeNewDomainName(name, "domain.name", violations);
        var clean = violations.Count == 0 ? validator.NormalizeSettings(normalized, settings, "domain", violations) : settings;
        if (violations.Count > 0)
        {
            GatewayException.ThrowInvalid(violations);
        }

        var now = clock.GetUtcNow();
        var config = new DomainConfig
        {
            Name = normalized,
            CompanyId = companyId,
            Settings = clean,
            Verification = new VerificationState(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), false, VerificationMethod.None, null),
            CreateTime = now,
            UpdateTime = now,
        };

        var max = limits?.DomainsPerTenant ?? int.MaxValue;
        var (outcome, created) = await store.CreateAsync(config, max).ConfigureAwait(false);
        return outcome switch
        {
            CreateDomainOutcome.Created => created!,
            CreateDomainOutcome.TenantLimit => throw TenantLimits.Exceeded(nameof(TenantLimits.DomainsPerTenant), max,
                $"tenant '{companyId}' already has {max} domains; delete one first or ask the operator to raise the limit"),
            CreateDomainOutcome.NoSuchTenant => throw new GatewayException(ErrorKind.NotFound, $"Tenant '{companyId}' not found."),
            CreateDomainOutcome.BeingDeleted => throw new GatewayException(ErrorKind.FailedPrecondition,
                $"Domain '{normalized}' is still being deleted (its mail, rules and logs are being removed); try again in a minute."),
            _ => throw new GatewayException(ErrorKind.AlreadyExists, AlreadyManagedMessage),
        };
    }

    public async Task<DomainConfig> GetAsync(string companyId, string? name)
    {
        var normalized = NormalizeExisting(name, "name");
        var config = await store.GetAsync(normalized).ConfigureAwait(false);
        return config is not null && config.CompanyId == companyId ? config : throw NotFound(normalized);
    }

    public async Task<(IReadOnlyList<DomainConfig> Items, string NextPageToken)> ListAsync(string companyId, int pageSize, string? pageToken)
    {
        var violations = new List<FieldViolation>();
        var size = Paging.ResolvePageSize(pageSize, violations);
        var after = Paging.Decode(pageToken, violations);
        if (violations.Count > 0)
        {
            GatewayException.ThrowInvalid(violations);
        }

        var (items, last) = await store.ListAsync(companyId, after, size).ConfigureAwait(false);
        return (items, Paging.Encode(last));
    }

    /// <summary>
    /// Applies the masked fields of <paramref name="patch"/>. With an etag the stored revision must
    /// match (else ABORTED); without one, concurrent saves are retried on the fresh state so no
    /// change is lost to a read-modify-write race.
    /// </summary>
    public async Task<DomainConfig> UpdateAsync(string companyId, string? name, DomainSettings patch, IReadOnlyList<string> maskPaths, string? etag)
    {
        var violations = new List<FieldViolation>();
        var normalized = NormalizeExisting(name, "domain.name");
        var mask = DomainUpdateMask.Parse(maskPaths, "update_mask", violations);
        if (violations.Count > 0)
        {
            GatewayException.ThrowInvalid(violations);
        }

        for (var attempt = 0; ; attempt++)
        {
            var current = await GetAsync(companyId, normalized).ConfigureAwait(false);
            if (!string.IsNullOrEmpty(etag) && etag != current.Etag)
            {
                GatewayException.ThrowAborted(StaleEtag(normalized));
            }

            var merged = DomainUpdateMask.Apply(current.Settings, patch, mask);
            var clean = validator.NormalizeSettings(normalized, merged, "domain", violations);
            if (violations.Count > 0)
            {
                GatewayException.ThrowInvalid(violations);
            }

            var next = current with { Settings = clean, UpdateTime = clock.GetUtcNow() };
            var (outcome, saved) = await store.ReplaceAsync(next, current.Revision, ConfigOps.Update).ConfigureAwait(false);
            switch (outcome)
            {
                case ChangeDomainOutcome.Done:
                    return saved!;
                case ChangeDomainOutcome.NotFound:
                    throw NotFound(normalized);
                case ChangeDomainOutcome.EtagMismatch when !string.IsNullOrEmpty(etag) || attempt + 1 >= MaxUpdateAttempts:
                    GatewayException.ThrowAborted(StaleEtag(normalized));
                    break;
            }
        }
    }

    /// <summary>Saves a gateway-side change (e.g. verification) with the same optimistic concurrency.</summary>
    public async Task<DomainConfig> ChangeAsync(string name, Func<DomainConfig, DomainConfig> change, string op)
    {
        ArgumentNullException.ThrowIfNull(change);
        for (var attempt = 0; ; attempt++)
        {
            var current = await store.GetAsync(name).ConfigureAwait(false) ?? throw NotFound(name);
            var next = change(current);
            if (ReferenceEquals(next, current))
            {
                return current;
            }

            var (outcome, saved) = await store.ReplaceAsync(next, current.Revision, op).ConfigureAwait(false);
            if (outcome == ChangeDomainOutcome.Done)
            {
                return saved!;
            }

            if (outcome == ChangeDomainOutcome.NotFound || attempt + 1 >= MaxUpdateAttempts)
            {
                throw outcome == ChangeDomainOutcome.NotFound ? NotFound(name) : new GatewayException(ErrorKind.Aborted, StaleEtag(name));
            }
        }
    }

    /// <summary>Deletes a domain (requirements §3.15) and says what the customer should undo.</summary>
    public async Task<(DomainConfig Deleted, IReadOnlyList<UndoStep> Undo)> DeleteAsync(string companyId, string? name, bool force, string? etag)
    {
        var current = await GetAsync(companyId, name).ConfigureAwait(false);
        switch (await store.DeleteAsync(companyId, current.Name, etag, force).ConfigureAwait(false))
        {
            case ChangeDomainOutcome.NotFound:
                throw NotFound(current.Name);
            case ChangeDomainOutcome.EtagMismatch:
                GatewayException.ThrowAborted(StaleEtag(current.Name));
                break;
            case ChangeDomainOutcome.HasMail:
                GatewayException.ThrowFailedPrecondition(
                    $"Domain '{current.Name}' has queued or quarantined mail; deliver, release or delete it first, or delete the domain with force (the mail is discarded).");
                break;
        }

        return (current, UndoSteps(current));
    }

    /// <summary>The customer's checklist after deletion: DNS and server settings pointing at the gateway.</summary>
    public IReadOnlyList<UndoStep> UndoSteps(DomainConfig domain)
    {
        ArgumentNullException.ThrowIfNull(domain);
        return
        [
            new("MX", $"Point the MX record of {domain.Name} back to your own mail server; it must no longer name {options.InboundMxHost(domain.CompanyId)}. Mail sent to the gateway for {domain.Name} is now refused."),
            new("CONNECTOR", $"Remove the relay host / outbound connector on your mail servers that sends mail of {domain.Name} through the gateway, so they deliver directly."),
            new("SPF", $"Remove '{options.EffectiveSpfInclude}' from the SPF (TXT) record of {domain.Name}."),
            new("TXT", $"Remove the verification TXT record '{VerificationRecord(domain)}' of {domain.Name}."),
        ];
    }

    /// <summary>The TXT record text that verifies a domain: <c>&lt;prefix&gt;=&lt;token&gt;</c>.</summary>
    public string VerificationRecord(DomainConfig domain)
    {
        ArgumentNullException.ThrowIfNull(domain);
        return $"{options.VerificationPrefix}={domain.Verification.Token}";
    }

    private static string NormalizeExisting(string? name, string field)
    {
        if (!DomainName.TryNormalize(name, out var normalized, out var error))
        {
            GatewayException.ThrowInvalid(field, error);
        }

        return normalized;
    }

    private static string StaleEtag(string name) =>
        $"Domain '{name}' was changed by someone else (etag mismatch); read it again and retry.";

    private static GatewayException NotFound(string name) => new(ErrorKind.NotFound, $"Domain '{name}' not found.");
}
