namespace Gateway.ControlPlane.Onboarding;

/// <summary>How much a finding matters; the numbers are those of gateway.v1.Severity.</summary>
public enum FindingSeverity
{
    /// <summary>Advice; the domain can still be COMPLETED.</summary>
    Info = 1,

    /// <summary>Something could not be checked or is likely to hurt delivery; CONFIGURATION_REQUIRED.</summary>
    Warning = 2,

    /// <summary>Mail is or will be refused or lost; CONFIGURATION_REQUIRED.</summary>
    Error = 3,
}

/// <summary>A domain's overall state (requirements §3.11); the numbers are those of gateway.v1.DomainStatus.</summary>
public enum DomainStatus
{
    /// <summary>Not checked yet.</summary>
    Unspecified = 0,
    Completed = 1,
    ConfigurationRequired = 2,
}

/// <summary>A DNS record a finding asks the customer to publish, ready to paste.</summary>
/// <param name="Name">Owner name, e.g. <c>example.com</c>.</param>
/// <param name="Type">TXT or MX.</param>
/// <param name="Value">TXT text, or <c>10 acme.in.gateway.example</c> for MX.</param>
public sealed record SuggestedRecord(string Name, string Type, string Value);

/// <summary>One finding of a health check: a stable code, its severity and what to do.</summary>
public sealed record Finding(string Code, FindingSeverity Severity, string Message, SuggestedRecord? Record = null);

/// <summary>The stable finding codes (documented in docs/onboarding.md).</summary>
public static class FindingCodes
{
    public const string DomainNotVerified = "DOMAIN_NOT_VERIFIED";
    public const string NoMxOrAddress = "DNS_NO_MX_OR_ADDRESS";
    public const string DnsLookupFailed = "DNS_LOOKUP_FAILED";
    public const string MxNotGateway = "INBOUND_MX_NOT_GATEWAY";
    public const string InboundConnectionFailed = "INBOUND_CONNECTION_FAILED";
    public const string OutboundNoSource = "OUTBOUND_NO_SOURCE";
    public const string Office365NoTenantId = "OUTBOUND_OFFICE365_NO_TENANT_ID";
    public const string GoogleWorkspaceNoDkimSelector = "OUTBOUND_GOOGLE_WORKSPACE_NO_DKIM_SELECTOR";
    public const string GoogleWorkspaceDkimKeyMissing = "OUTBOUND_GOOGLE_WORKSPACE_DKIM_KEY_MISSING";
    public const string SpfMissing = "SPF_MISSING";
    public const string SpfMultipleRecords = "SPF_MULTIPLE_RECORDS";
    public const string SpfGatewayNotAuthorized = "SPF_GATEWAY_NOT_AUTHORIZED";
    public const string SpfPermError = "SPF_PERMERROR";
    public const string SpfTempError = "SPF_TEMPERROR";
    public const string SpfPass = "SPF_PASS";
}

/// <summary>The result of one health check of a domain, as stored and shown.</summary>
/// <param name="Revision">The domain's revision (etag) the check looked at.</param>
public sealed record HealthReport(string Domain, DomainStatus Status, IReadOnlyList<Finding> Findings, DateTimeOffset CheckTime, long Revision)
{
    /// <summary>CONFIGURATION_REQUIRED when any finding is a warning or an error.</summary>
    public static DomainStatus StatusOf(IEnumerable<Finding> findings) =>
        findings.Any(f => f.Severity >= FindingSeverity.Warning) ? DomainStatus.ConfigurationRequired : DomainStatus.Completed;
}
