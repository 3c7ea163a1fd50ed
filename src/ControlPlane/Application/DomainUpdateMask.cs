using Gateway.Core.Errors;
using Gateway.Core.Domains;

namespace Gateway.ControlPlane.Application;

/// <summary>
/// The paths UpdateDomain accepts (AIP-134 field masks). Output-only fields (name, verification,
/// etag, times) are not paths: naming them is an error rather than silently ignored.
/// </summary>
public static class DomainUpdateMask
{
    public const string InboundEnabled = "inbound_enabled";
    public const string InboundServers = "inbound_servers";
    public const string Outbound = "outbound";
    public const string OutboundEnabled = "outbound.enabled";
    public const string OutboundOffice365 = "outbound.office365";
    public const string OutboundGoogleWorkspace = "outbound.google_workspace";
    public const string OutboundCustomIps = "outbound.custom_ips";
    public const string OutboundOffice365TenantId = "outbound.office365_tenant_id";
    public const string OutboundGoogleWorkspaceDkimSelector = "outbound.google_workspace_dkim_selector";
    public const string All = "*";
    public const string RecipientVerification = "recipient_verification";
    public const string RecipientVerificationEnabled = "recipient_verification.enabled";
    public const string RecipientVerificationPositiveTtl = "recipient_verification.positive_ttl_seconds";
    public const string RecipientVerificationNegativeTtl = "recipient_verification.negative_ttl_seconds";

    public static readonly IReadOnlySet<string> Paths = new HashSet<string>(StringComparer.Ordinal)
    {
        InboundEnabled, InboundServers, Outbound, OutboundEnabled, OutboundOffice365, OutboundGoogleWorkspace, OutboundCustomIps, OutboundOffice365TenantId, OutboundGoogleWorkspaceDkimSelector, All,
        RecipientVerification, RecipientVerificationEnabled, RecipientVerificationPositiveTtl, RecipientVerificationNegativeTtl,
    }.Union(ProtectionMask.Paths).ToHashSet(StringComparer.Ordinal);

    /// <summary>Checks the paths; an empty mask means every editable field.</summary>
    public static IReadOnlySet<string> Parse(IReadOnlyList<string> paths, string field, List<FieldViolation> violations)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(violations);
        if (paths.Count == 0)
        {
            return new HashSet<string> { All };
        }

        var set = new HashSet<string>(StringComparer.Ordinal);
        foreach (var given in paths)
        {
            // The JSON form of a FieldMask spells paths in lowerCamelCase (proto3 JSON mapping).
            var p = ToSnakeCase(given);
            if (!Paths.Contains(p))
            {
                violations.Add(new FieldViolation(field,
                    $"'{given}' cannot be updated; paths are {string.Join(", ", Paths.Order(StringComparer.Ordinal))}"));
                continue;
            }

            set.Add(p);
        }

        return set;
    }

    private static string ToSnakeCase(string path)
    {
        var b = new System.Text.StringBuilder(path.Length + 4);
        foreach (var c in path)
        {
            if (char.IsAsciiLetterUpper(c))
            {
                b.Append('_').Append(char.ToLowerInvariant(c));
            }
            else
            {
                b.Append(c);
            }
        }

        return b.ToString();
    }

    /// <summary>Applies the masked fields of <paramref name="patch"/> onto <paramref name="current"/>.</summary>
    public static DomainSettings Apply(DomainSettings current, DomainSettings patch, IReadOnlySet<string> mask)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(patch);
        ArgumentNullException.ThrowIfNull(mask);
        bool Has(string p) => mask.Contains(All) || mask.Contains(p);
        bool HasOutbound(string p) => Has(Outbound) || Has(p);

        var outbound = current.Outbound;
        var po = patch.Outbound ?? OutboundSettings.Disabled;
        outbound = new OutboundSettings(
            HasOutbound(OutboundEnabled) ? po.Enabled : outbound.Enabled,
            HasOutbound(OutboundOffice365) ? po.Office365 : outbound.Office365,
            HasOutbound(OutboundGoogleWorkspace) ? po.GoogleWorkspace : outbound.GoogleWorkspace,
            HasOutbound(OutboundCustomIps) ? po.CustomIps : outbound.CustomIps)
        {
            Office365TenantId = HasOutbound(OutboundOffice365TenantId) ? po.Office365TenantId : outbound.Office365TenantId,
            GoogleWorkspaceDkimSelector = HasOutbound(OutboundGoogleWorkspaceDkimSelector) ? po.GoogleWorkspaceDkimSelector : outbound.GoogleWorkspaceDkimSelector,
        };

        return new DomainSettings(
            Has(InboundEnabled) ? patch.InboundEnabled : current.InboundEnabled,
            Has(InboundServers) ? patch.InboundServers : current.InboundServers,
            outbound)
        {
            Protection = ProtectionMask.Apply(current.Protection, patch.Protection, Has),
            RecipientVerification = ApplyVerification(current.RecipientVerification, patch.RecipientVerification, Has),
        };
    }

    private static RecipientVerificationSettings ApplyVerification(RecipientVerificationSettings current, RecipientVerificationSettings? patch, Func<string, bool> has)
    {
        var p = patch ?? RecipientVerificationSettings.Off;
        bool Has(string path) => has(RecipientVerification) || has(path);
        return new RecipientVerificationSettings(
            Has(RecipientVerificationEnabled) ? p.Enabled : current.Enabled,
            Has(RecipientVerificationPositiveTtl) ? p.PositiveTtl : current.PositiveTtl,
            Has(RecipientVerificationNegativeTtl) ? p.NegativeTtl : current.NegativeTtl);
    }
}
