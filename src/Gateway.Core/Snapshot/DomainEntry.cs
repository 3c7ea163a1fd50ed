using System.Collections.Frozen;
using System.Net;
using Gateway.Core.Domains;

namespace Gateway.Core.Snapshot;

/// <summary>
/// A domain as the hot paths need it: the stored config plus lookup structures computed once per
/// change, so a policy decision or a route choice does no parsing.
/// </summary>
public sealed class DomainEntry
{
    public DomainEntry(DomainConfig config, Rules.RuleList? rules = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config;
        Rules = Gateway.Core.Rules.CompiledRuleSet.Compile(rules);
        CustomIps = config.Settings.Outbound.CustomIps
            .Select(ip => IPAddress.TryParse(ip, out var a) ? a : null)
            .OfType<IPAddress>()
            .ToFrozenSet();
        ExactRecipients = config.Settings.InboundServers
            .Where(s => !s.IsCatchAll)
            .Select(s => s.Recipient)
            .ToFrozenSet(StringComparer.OrdinalIgnoreCase);
        HasCatchAll = config.Settings.InboundServers.Any(s => s.IsCatchAll);
    }

    public DomainConfig Config { get; }

    /// <summary>The domain's enabled policy rules, compiled; null when it has none (the hot paths test only that).</summary>
    public Rules.CompiledRuleSet? Rules { get; }

    public string Name => Config.Name;

    /// <summary>Custom sending IPs (IPv4 and IPv6, IPv4-mapped already unwrapped by validation).</summary>
    public FrozenSet<IPAddress> CustomIps { get; }

    /// <summary>Recipients that have their own inbound rows (<c>local@domain</c>).</summary>
    public FrozenSet<string> ExactRecipients { get; }

    /// <summary>A <c>*@domain</c> row exists: every recipient of the domain has a route.</summary>
    public bool HasCatchAll { get; }

    public bool InboundEnabled => Config.Settings.InboundEnabled;

    public OutboundSettings Outbound => Config.Settings.Outbound;

    public bool Verified => Config.Verification.Verified;
}
