using Gateway.Core.Domains;
using Gateway.Core.Storage;

namespace Gateway.Core.Tests.Domains;

/// <summary>
/// Domain records written by earlier versions (before the protection policy, recipient verification and DKIM existed) are
/// read with every newer setting at its default, never null: a null protection policy made every scan of such a domain
/// throw, and the intake dropped the connection for all of its mail.
/// </summary>
[Trait("Kind", "Unit")]
public sealed class StoredDomainCompatibilityTests
{
    // Exactly what the programs before issue 13 wrote (and what bench/deliverer still writes).
    private const string Before = """
        {"name":"old.test","company_id":"c1","settings":{"inbound_enabled":true,"inbound_servers":[{"recipient":"*@old.test","host":"127.0.0.1","port":2525,"preference":10}],"outbound":{"enabled":false,"office365":false,"google_workspace":false,"custom_ips":[]}},"verification":{"token":"00","verified":true,"method":"Txt"},"create_time":"2026-01-01T00:00:00+00:00","update_time":"2026-01-01T00:00:00+00:00"}
        """;

    [Fact]
    public void DeserializeDomain_RecordFromBeforeProtection_EveryNewSettingAtItsDefault()
    {
        var d = StoreJson.DeserializeDomain(Before, 7);
        Assert.Equal("old.test", d.Name);
        Assert.Equal(7, d.Revision);
        Assert.NotNull(d.Settings.Protection);
        Assert.Equal(ProtectionSettings.Default, d.Settings.Protection);
        Assert.Equal(ProtectionAction.Reject, d.Settings.Protection.Malware);
        Assert.Equal(ScannerFailureAction.TempFail, d.Settings.Protection.OnScannerFailure);
        Assert.NotNull(d.Settings.Protection.Spam);
        Assert.NotNull(d.Settings.RecipientVerification);
        Assert.False(d.Settings.RecipientVerification.Enabled);
        Assert.Null(d.Dkim);
    }

    [Fact]
    public void DeserializeDomain_ProtectionWrittenAsNull_Defaults()
    {
        var json = Before.Replace("\"custom_ips\":[]}}", "\"custom_ips\":[]},\"protection\":null,\"recipient_verification\":null}", StringComparison.Ordinal);
        Assert.Contains("\"protection\":null", json, StringComparison.Ordinal);
        var d = StoreJson.DeserializeDomain(json, 1);
        Assert.Equal(ProtectionSettings.Default, d.Settings.Protection);
        Assert.False(d.Settings.RecipientVerification.Enabled);
    }

    [Fact]
    public void DeserializeDomain_StoredPolicy_KeptThroughTheRoundTrip()
    {
        var stored = StoreJson.DeserializeDomain(Before, 1) is var d
            ? d with { Settings = d.Settings with { Protection = d.Settings.Protection with { Malware = ProtectionAction.Quarantine, DmarcEnforce = false } } }
            : null!;
        var read = StoreJson.DeserializeDomain(StoreJson.Serialize(stored), 2);
        Assert.Equal(ProtectionAction.Quarantine, read.Settings.Protection.Malware);
        Assert.False(read.Settings.Protection.DmarcEnforce);
    }
}
