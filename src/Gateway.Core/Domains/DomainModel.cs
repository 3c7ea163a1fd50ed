using System.Text.Json.Serialization;

namespace Gateway.Core.Domains;

/// <summary>One receiving server row (requirements §3.4), normalised.</summary>
/// <param name="Recipient"><c>*@domain</c> or <c>local@domain</c>, lower case.</param>
/// <param name="Host">Canonical IP text or a lower-case A-label host name.</param>
public sealed record InboundServer(string Recipient, string Host, int Port, int Preference)
{
    public const int DefaultPort = 25;
    public const int DefaultPreference = 10;
    public const int MinPreference = 1;
    public const int MaxPreference = 100;
    public const int MaxRows = 100;

    /// <summary>True for the catch-all row of the domain.</summary>
    [JsonIgnore]
    public bool IsCatchAll => Recipient.StartsWith("*@", StringComparison.Ordinal);

    /// <summary>TLS towards this server (requirements §10; docs/outbound.md "TLS to customer servers").</summary>
    public TlsMode Tls { get; init; }

    /// <summary>With <see cref="TlsMode.Verify"/>: the name the certificate must carry instead of <see cref="Host"/>.</summary>
    public string? TlsName { get; init; }
}

/// <summary>TLS towards a customer's inbound server (requirements §10).</summary>
public enum TlsMode
{
    /// <summary>STARTTLS when offered, certificate not checked (RFC 7435; Postfix's <c>may</c>). The default.</summary>
    Opportunistic = 0,

    /// <summary>STARTTLS must be offered and succeed, else a temporary failure and the next host (Postfix's <c>encrypt</c>).</summary>
    Required = 1,

    /// <summary>As required, and the certificate must chain to a trusted root and name the host or <c>tls_name</c> (Postfix's <c>secure</c>).</summary>
    Verify = 2,
}

/// <summary>Sending sources allowed to relay outbound mail (requirements §3.8).</summary>
public sealed record OutboundSettings(bool Enabled, bool Office365, bool GoogleWorkspace, IReadOnlyList<string> CustomIps)
{
    public const int MaxCustomIps = 100;

    public static readonly OutboundSettings Disabled = new(false, false, false, []);

    /// <summary>
    /// The customer's Microsoft 365 tenant id (a GUID, lower case), or null. requirements §3.9: mail that comes in through
    /// Microsoft's shared ranges is relayed only when Exchange Online's <c>X-MS-Exchange-CrossTenant-Id</c> names it
    /// (Relay/ProviderBinding.cs).
    /// </summary>
    public string? Office365TenantId { get; init; }

    /// <summary>
    /// The DKIM selector of the customer's Google Workspace key (lower case), or null. requirements §3.9: mail that comes
    /// in through Google's shared ranges is relayed only with a verifying DKIM signature of the domain made with this
    /// selector's key (Relay/GoogleWorkspaceBinding.cs).
    /// </summary>
    public string? GoogleWorkspaceDkimSelector { get; init; }

    /// <summary>True when outbound is on but no source is allowed: all outbound mail is refused.</summary>
    [JsonIgnore]
    public bool HasNoSource => Enabled && !Office365 && !GoogleWorkspace && CustomIps.Count == 0;
}

public enum VerificationMethod
{
    None = 0,
    Txt = 1,
    Mx = 2,
}

/// <summary>Proof of ownership (requirements §3.2). Once verified it stays verified.</summary>
public sealed record VerificationState(string Token, bool Verified, VerificationMethod Method, DateTimeOffset? VerifyTime);

/// <summary>The settings a tenant edits; everything else of a domain is managed by the gateway.</summary>
public sealed record DomainSettings(bool InboundEnabled, IReadOnlyList<InboundServer> InboundServers, OutboundSettings Outbound)
{
    public static readonly DomainSettings Empty = new(false, [], OutboundSettings.Disabled);

    /// <summary>
    /// Inbound protection policy (requirements §9); domains stored before it existed get the defaults (the source-generated
    /// JSON reader sets a missing member to null: without the fallback every scan of such a domain failed).
    /// </summary>
    public ProtectionSettings Protection
    {
        get => _protection;
        init => _protection = value ?? ProtectionSettings.Default;
    }

    private readonly ProtectionSettings _protection = ProtectionSettings.Default;

    /// <summary>
    /// Recipient verification at RCPT (docs/operations.md "Recipient verification"); off for domains stored before it existed
    /// (the source-generated JSON reader sets a missing member to null, hence the fallback in the setter).
    /// </summary>
    public RecipientVerificationSettings RecipientVerification
    {
        get => _recipientVerification;
        init => _recipientVerification = value ?? RecipientVerificationSettings.Off;
    }

    private readonly RecipientVerificationSettings _recipientVerification = RecipientVerificationSettings.Off;
}

/// <summary>A managed domain as stored in Redis and held in the programs' snapshots.</summary>
public sealed record DomainConfig
{
    public required string Name { get; init; }

    public required string CompanyId { get; init; }

    public required DomainSettings Settings { get; init; }

    public required VerificationState Verification { get; init; }

    public required DateTimeOffset CreateTime { get; init; }

    public required DateTimeOffset UpdateTime { get; init; }

    /// <summary>Stored revision; the API's etag. Kept beside the JSON in Redis, not inside it.</summary>
    [JsonIgnore]
    public long Revision { get; init; }

    /// <summary>DKIM signing of the domain's outbound mail (requirements §10); null while never enabled. Managed by the gateway.</summary>
    public DkimState? Dkim { get; init; }

    [JsonIgnore]
    public string Etag => Revision.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
