using Gateway.Core.Domains;
using Gateway.Core.Relay;
using Gateway.Core.Snapshot;

namespace Gateway.Core.Tests;

/// <summary>Domains and snapshots for the relay tables (no Redis: the snapshot is filled directly).</summary>
internal static class RelayTestData
{
    public static ConfigSnapshot SnapshotOf(params DomainConfig[] domains)
    {
        var snapshot = new ConfigSnapshot();
        snapshot.Replace(domains, 1, DateTimeOffset.UtcNow);
        return snapshot;
    }

    public static DomainConfig Domain(string name, bool inbound = false, bool verified = false, OutboundSettings? outbound = null, IReadOnlyList<InboundServer>? servers = null) => new()
    {
        Name = name,
        CompanyId = "acme",
        Settings = new DomainSettings(inbound, servers ?? (inbound ? [new InboundServer("*@" + name, "192.0.2.1", 25, 10)] : []), outbound ?? OutboundSettings.Disabled),
        Verification = new VerificationState(new string('a', 32), verified, verified ? VerificationMethod.Txt : VerificationMethod.None, verified ? DateTimeOffset.UtcNow : null),
        CreateTime = DateTimeOffset.UtcNow,
        UpdateTime = DateTimeOffset.UtcNow,
    };

    public static OutboundSettings Custom(params string[] ips) => new(true, false, false, ips);

    public static RelayRequest Rcpt(string sender, string recipient, string client = "198.51.100.7", RelayScope scope = RelayScope.Any) => new()
    {
        Stage = SmtpStage.Rcpt,
        Scope = scope,
        Sender = sender,
        Recipient = recipient,
        ClientAddress = client,
    };

    /// <summary>Small provider lists so tests do not depend on the shipped data.</summary>
    public static ProviderRanges Providers { get; } = new(
        new ProviderRangeList("test", DateTimeOffset.UnixEpoch, ["40.92.0.0/15", "2a01:111:f400::/48"]),
        new ProviderRangeList("test", DateTimeOffset.UnixEpoch, ["209.85.128.0/17", "2607:f8b0:4000::/36"]));
}
