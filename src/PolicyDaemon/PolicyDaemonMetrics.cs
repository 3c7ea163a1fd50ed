using System.Diagnostics.Metrics;
using Gateway.Core.Relay;

namespace Gateway.PolicyDaemon;

/// <summary>
/// The PolicyDaemon's counters (docs/telemetry.md). NO-DOMAIN refusals that concern no managed domain are
/// only counted here: they have no customer log to go to. Tag values are cached strings, so recording
/// allocates nothing on the hot path.
/// </summary>
public sealed class PolicyDaemonMetrics
{
    public const string MeterName = "Gateway.PolicyDaemon";

    private static readonly string[] Outcomes = Enum.GetNames<RelayOutcome>().Select(Snake).ToArray();
    private static readonly string[] Reasons = Enum.GetNames<RelayReason>().Select(Snake).ToArray();
    private static readonly string[] Statuses = Enum.GetNames<LookupStatus>().Select(Snake).ToArray();

    private readonly Counter<long> _decisions;
    private readonly Counter<long> _malformed;
    private readonly Counter<long> _lookups;

    public PolicyDaemonMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        _decisions = meter.CreateCounter<long>("gateway.policy.decisions", "{request}",
            "Policy delegation requests answered, by outcome (accept, reject, try_later, not_applicable) and reason.");
        _malformed = meter.CreateCounter<long>("gateway.policy.malformed", "{request}",
            "Malformed requests whose connection was closed without a reply, by protocol (policy, socketmap).");
        _lookups = meter.CreateCounter<long>("gateway.policy.socketmap.lookups", "{request}",
            "Socketmap lookups answered, by map (domains, transport) and status (found, not_found, try_later, perm).");
    }

    public void Decision(RelayDecision decision)
    {
        ArgumentNullException.ThrowIfNull(decision);
        _decisions.Add(1,
            new KeyValuePair<string, object?>("outcome", Outcomes[(int)decision.Outcome]),
            new KeyValuePair<string, object?>("reason", Reasons[(int)decision.Reason]),
            new KeyValuePair<string, object?>("managed", decision.RecipientDomain is not null || decision.SenderDomain is not null ? "true" : "false"));
    }

    public void Malformed(string protocol) => _malformed.Add(1, new KeyValuePair<string, object?>("protocol", protocol));

    public void Lookup(string map, LookupStatus status) => Lookup(map, Statuses[(int)status]);

    public void Lookup(string map, string status) =>
        _lookups.Add(1, new KeyValuePair<string, object?>("map", map), new KeyValuePair<string, object?>("status", status));

    private static string Snake(string name) =>
        string.Concat(name.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "_" : string.Empty) + char.ToLowerInvariant(c) : c.ToString()));
}
