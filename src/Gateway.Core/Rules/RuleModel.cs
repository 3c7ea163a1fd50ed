using System.Text.Json.Serialization;

namespace Gateway.Core.Rules;

/// <summary>What a matching rule does (requirements §7).</summary>
public enum RuleAction
{
    /// <summary>Refuse the message: <c>550 5.7.1 &lt;text&gt;</c> at RCPT (envelope rules) or to the DATA (content rules).</summary>
    Reject,

    /// <summary>Hold the message in the domain's quarantine instead of delivering it.</summary>
    Quarantine,

    /// <summary>Deliver normally and stop evaluating (an allow-list entry ahead of broader rules).</summary>
    Deliver,
}

/// <summary>Which mail of the domain a rule looks at.</summary>
public enum RuleDirection
{
    Both,
    Inbound,
    Outbound,
}

/// <summary>
/// One policy rule of a managed domain as stored (JSON in <see cref="Storage.RedisKeys.DomainRules"/>). Every
/// condition that is set must match (AND); a list condition matches when any of its entries does (OR). A rule
/// needs at least one condition.
/// </summary>
public sealed record PolicyRule
{
    /// <summary>Stable id (<c>r</c> + 12 hex), unique within the domain.</summary>
    public required string Id { get; init; }

    public string Description { get; init; } = string.Empty;

    public bool Enabled { get; init; } = true;

    public RuleDirection Direction { get; init; }

    /// <summary>Envelope sender patterns: <c>bad@x.org</c>, <c>*@example.com</c> (with '@': the whole address),
    /// <c>*.spam.example</c> (without '@': the domain part), <c>&lt;&gt;</c> (the null sender). Globs: <c>*</c>, <c>?</c>.</summary>
    public IReadOnlyList<string> Senders { get; init; } = [];

    /// <summary>Envelope recipient patterns, as <see cref="Senders"/>.</summary>
    public IReadOnlyList<string> Recipients { get; init; } = [];

    /// <summary>Client IP addresses or CIDR networks (IPv4, IPv6) of the SMTP client that sent the message to the gateway.</summary>
    public IReadOnlyList<string> ClientIps { get; init; } = [];

    /// <summary>Matches messages larger than this many bytes; 0: no size condition.</summary>
    public long SizeAbove { get; init; }

    /// <summary>Case-insensitive substring of the decoded Subject header; empty: no subject condition.</summary>
    public string SubjectContains { get; init; } = string.Empty;

    /// <summary>Attachment file name globs (<c>*.exe</c>), case-insensitive.</summary>
    public IReadOnlyList<string> AttachmentNames { get; init; } = [];

    public RuleAction Action { get; init; }

    /// <summary>For <see cref="RuleAction.Reject"/>: what the SMTP client is told (one line of printable ASCII); empty: <see cref="RuleDefaults.RejectText"/>.</summary>
    public string RejectText { get; init; } = string.Empty;

    /// <summary>Bumped by every change of this rule; its etag.</summary>
    public long Revision { get; init; } = 1;

    public DateTimeOffset CreateTime { get; init; }

    public DateTimeOffset UpdateTime { get; init; }

    [JsonIgnore]
    public string Etag => Revision.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The conditions that need the message content (decided by the Deliverer at intake).</summary>
    [JsonIgnore]
    public bool HasContentConditions => SubjectContains.Length > 0 || AttachmentNames.Count > 0;

    [JsonIgnore]
    public string EffectiveRejectText => RejectText.Length > 0 ? RejectText : RuleDefaults.RejectText;
}

/// <summary>A domain's ordered rules as stored, with the list's revision (compare-and-set on save).</summary>
public sealed record RuleList
{
    public static readonly RuleList Empty = new();

    public long Revision { get; init; }

    public IReadOnlyList<PolicyRule> Rules { get; init; } = [];
}

public static class RuleDefaults
{
    /// <summary>Said to the SMTP client by a REJECT rule without its own text.</summary>
    public const string RejectText = "Message rejected by the recipient domain's policy";

    /// <summary>The SMTP reply code and enhanced status of a REJECT rule, at RCPT (PolicyDaemon) and at intake (Deliverer) alike.</summary>
    public const string RejectPrefix = "550 5.7.1 ";

    /// <summary>At most this many entries in one list condition.</summary>
    public const int MaxEntriesPerCondition = 100;
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(RuleList))]
internal sealed partial class RuleJson : JsonSerializerContext
{
    public static string Serialize(RuleList list) => System.Text.Json.JsonSerializer.Serialize(list, Default.RuleList);

    public static RuleList Deserialize(string json) =>
        System.Text.Json.JsonSerializer.Deserialize(json, Default.RuleList) ?? throw new System.Text.Json.JsonException("empty rule list");
}
