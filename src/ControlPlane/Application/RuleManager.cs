using System.Security.Cryptography;
using Gateway.Core.Domains;
using Gateway.Core.Errors;
using Gateway.Core.Rules;

namespace Gateway.ControlPlane.Application;

/// <summary>
/// Policy rule use cases for one tenant (requirements §7): the domain must belong to the tenant (else NOT_FOUND, as
/// <see cref="DomainManager"/>), every change validates, then replaces the ordered list by compare-and-set
/// (a concurrent save is retried on the fresh list; a client etag that no longer matches is ABORTED). A list that
/// would grow past <see cref="TenantLimits.RulesPerDomain"/> or <see cref="TenantLimits.RuleBytesPerDomain"/>
/// is refused with RESOURCE_EXHAUSTED (defaults when no limits are given).
/// </summary>
public sealed class RuleManager(DomainManager domains, RuleStore store, TimeProvider clock, TenantLimits? limits = null)
{
    private readonly TenantLimits _limits = limits ?? new TenantLimits();

    private const int MaxAttempts = 5;

    public async Task<(string Domain, RuleList Rules)> ListAsync(string companyId, string? domain)
    {
        var owned = await domains.GetAsync(companyId, domain).ConfigureAwait(false);
        return (owned.Name, await store.GetAsync(owned.Name).ConfigureAwait(false));
    }

    public async Task<(PolicyRule Rule, int Position)> GetAsync(string companyId, string? domain, string? id)
    {
        var (name, list) = await ListAsync(companyId, domain).ConfigureAwait(false);
        var index = IndexOf(list, name, id);
        return (list.Rules[index], index + 1);
    }

    /// <summary>Adds a rule at <paramref name="position"/> (1-based; 0 or past the end: appended).</summary>
    public async Task<(PolicyRule Rule, int Position)> CreateAsync(string companyId, string? domain, PolicyRule draft, int position)
    {
        ArgumentNullException.ThrowIfNull(draft);
        var violations = new List<FieldViolation>();
        var rule = RuleValidator.Normalize(draft, "rule", violations);
        if (position < 0)
        {
            violations.Add(new("position", "position must not be negative (0: append)"));
        }

        if (violations.Count > 0)
        {
            GatewayException.ThrowInvalid(violations);
        }

        var now = clock.GetUtcNow();
        rule = rule with { Id = "r" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6)), Revision = 1, CreateTime = now, UpdateTime = now };
        var saved = await ChangeAsync(companyId, domain, null, (_, rules) =>
        {
            var at = position == 0 || position > rules.Count ? rules.Count : position - 1;
            rules.Insert(at, rule);
            return rule.Id;
        }).ConfigureAwait(false);
        return saved;
    }

    /// <summary>Changes the masked fields of a rule; a non-empty <paramref name="etag"/> must be the rule's current one.</summary>
    public async Task<(PolicyRule Rule, int Position)> UpdateAsync(string companyId, string? domain, string? id, PolicyRule patch, IReadOnlyList<string> maskPaths, string? etag)
    {
        ArgumentNullException.ThrowIfNull(patch);
        ArgumentNullException.ThrowIfNull(maskPaths);
        var mask = ParseMask(maskPaths);
        return await ChangeAsync(companyId, domain, etag, (name, rules) =>
        {
            var index = IndexOf(rules, name, id);
            var current = rules[index];
            CheckEtag(current, etag);
            var merged = Merge(current, patch, mask);
            var violations = new List<FieldViolation>();
            var clean = RuleValidator.Normalize(merged, "rule", violations);
            if (violations.Count > 0)
            {
                GatewayException.ThrowInvalid(violations);
            }

            rules[index] = clean with { Revision = current.Revision + 1, UpdateTime = clock.GetUtcNow() };
            return current.Id;
        }).ConfigureAwait(false);
    }

    /// <summary>Moves a rule to <paramref name="position"/> (1-based; past the end: last).</summary>
    public async Task<(PolicyRule Rule, int Position)> MoveAsync(string companyId, string? domain, string? id, int position, string? etag)
    {
        if (position < 1)
        {
            GatewayException.ThrowInvalid("position", "position is 1-based: 1 is evaluated first");
        }

        return await ChangeAsync(companyId, domain, etag, (name, rules) =>
        {
            var index = IndexOf(rules, name, id);
            var rule = rules[index];
            CheckEtag(rule, etag);
            rules.RemoveAt(index);
            var moved = rule with { Revision = rule.Revision + 1, UpdateTime = clock.GetUtcNow() };
            rules.Insert(Math.Min(position - 1, rules.Count), moved);
            return rule.Id;
        }).ConfigureAwait(false);
    }

    public async Task<PolicyRule> DeleteAsync(string companyId, string? domain, string? id, string? etag)
    {
        PolicyRule? deleted = null;
        await ChangeAsync(companyId, domain, etag, (name, rules) =>
        {
            var index = IndexOf(rules, name, id);
            deleted = rules[index];
            CheckEtag(deleted, etag);
            rules.RemoveAt(index);
            return null;
        }).ConfigureAwait(false);
        return deleted!;
    }

    /// <summary>Read, change, compare-and-set; retried on a concurrent save (the change re-checks the etag on the fresh list).</summary>
    private async Task<(PolicyRule Rule, int Position)> ChangeAsync(string companyId, string? domain, string? etag, Func<string, List<PolicyRule>, string?> change)
    {
        for (var attempt = 0; ; attempt++)
        {
            var (name, list) = await ListAsync(companyId, domain).ConfigureAwait(false);
            var rules = list.Rules.ToList();
            var id = change(name, rules);
            CheckLimits(name, list.Rules, rules);
            var (outcome, saved) = await store.SaveAsync(companyId, name, list.Revision, rules).ConfigureAwait(false);
            switch (outcome)
            {
                case SaveRulesOutcome.Done:
                    if (id is null)
                    {
                        return (null!, 0);
                    }

                    var index = saved!.Rules.Select((r, i) => (r, i)).First(x => x.r.Id == id).i;
                    return (saved.Rules[index], index + 1);
                case SaveRulesOutcome.NotFound:
                    throw new GatewayException(ErrorKind.NotFound, $"Domain '{name}' not found.");
                case SaveRulesOutcome.Stale when attempt + 1 >= MaxAttempts:
                    GatewayException.ThrowAborted($"The rules of '{name}' are being changed by someone else; read them again and retry.");
                    break;
            }
        }
    }

    /// <summary>A change may not make the list longer or bigger than the limits (it may always shrink it).</summary>
    private void CheckLimits(string domain, IReadOnlyList<PolicyRule> before, List<PolicyRule> after)
    {
        if (after.Count > _limits.RulesPerDomain && after.Count > before.Count)
        {
            throw TenantLimits.Exceeded(nameof(TenantLimits.RulesPerDomain), _limits.RulesPerDomain,
                $"domain '{domain}' has {before.Count} rules; delete some first");
        }

        var size = TenantLimits.RuleBytes(after);
        if (size > _limits.RuleBytesPerDomain && size > TenantLimits.RuleBytes(before))
        {
            throw TenantLimits.Exceeded(nameof(TenantLimits.RuleBytesPerDomain), _limits.RuleBytesPerDomain,
                $"the rules of '{domain}' would hold {size} characters of patterns and texts; shorten or delete some first");
        }
    }

    private static void CheckEtag(PolicyRule rule, string? etag)
    {
        if (!string.IsNullOrEmpty(etag) && etag != rule.Etag)
        {
            GatewayException.ThrowAborted($"Rule '{rule.Id}' was changed by someone else (etag mismatch); read it again and retry.");
        }
    }

    private static int IndexOf(RuleList list, string domain, string? id) => IndexOf(list.Rules, domain, id);

    private static int IndexOf(IReadOnlyList<PolicyRule> rules, string domain, string? id)
    {
        if (string.IsNullOrWhiteSpace(id))
        {
            GatewayException.ThrowInvalid("rule_id", "rule_id is required");
        }

        for (var i = 0; i < rules.Count; i++)
        {
            if (rules[i].Id == id)
            {
                return i;
            }
        }

        throw new GatewayException(ErrorKind.NotFound, $"Rule '{id}' not found in the rules of '{domain}'.");
    }

    private static HashSet<string> ParseMask(IReadOnlyList<string> paths)
    {
        var mask = new HashSet<string>(StringComparer.Ordinal);
        var violations = new List<FieldViolation>();
        foreach (var raw in paths)
        {
            var p = raw.StartsWith("rule.", StringComparison.Ordinal) ? raw[5..] : raw;
            if (p == "*")
            {
                mask.UnionWith(RuleValidator.MaskPaths);
            }
            else if (RuleValidator.MaskPaths.Contains(p))
            {
                mask.Add(p);
            }
            else
            {
                violations.Add(new("update_mask", $"'{raw}' is not an editable rule field; use {string.Join(", ", RuleValidator.MaskPaths)} or *"));
            }
        }

        if (violations.Count > 0)
        {
            GatewayException.ThrowInvalid(violations);
        }

        if (mask.Count == 0)
        {
            mask.UnionWith(RuleValidator.MaskPaths);
        }

        return mask;
    }

    private static PolicyRule Merge(PolicyRule current, PolicyRule patch, HashSet<string> mask) => current with
    {
        Description = mask.Contains("description") ? patch.Description : current.Description,
        Enabled = mask.Contains("disabled") ? patch.Enabled : current.Enabled,
        Direction = mask.Contains("direction") ? patch.Direction : current.Direction,
        Senders = mask.Contains("senders") ? patch.Senders : current.Senders,
        Recipients = mask.Contains("recipients") ? patch.Recipients : current.Recipients,
        ClientIps = mask.Contains("client_ips") ? patch.ClientIps : current.ClientIps,
        SizeAbove = mask.Contains("size_above") ? patch.SizeAbove : current.SizeAbove,
        SubjectContains = mask.Contains("subject_contains") ? patch.SubjectContains : current.SubjectContains,
        AttachmentNames = mask.Contains("attachment_names") ? patch.AttachmentNames : current.AttachmentNames,
        Action = mask.Contains("action") ? patch.Action : current.Action,
        RejectText = mask.Contains("reject_text") ? patch.RejectText : mask.Contains("action") && patch.Action != RuleAction.Reject ? string.Empty : current.RejectText,
    };
}
