using Gateway.Core.Domains;
using Gateway.Core.Storage;

namespace Gateway.Core.Tests;

/// <summary>Domain records stored before a setting existed read with its defaults, never null (the source-generated JSON reader sets a missing member to null).</summary>
[Trait("Kind", "Unit")]
public sealed class StoredDomainDefaultsTests
{
    [Fact]
    public void DeserializeDomain_RecordWithoutProtection_DefaultPolicyNotNull()
    {
        // The shape bench/deliverer writes (and domains stored before protection existed): no "protection" in the settings.
        const string Stored = """
            {"name":"bench.test","company_id":"bench","settings":{"inbound_enabled":true,"inbound_servers":[{"recipient":"*@bench.test","host":"127.0.0.1","port":25,"preference":10}],"outbound":{"enabled":false,"office365":false,"google_workspace":false,"custom_ips":[]}},"verification":{"token":"00","verified":false,"method":"None"},"create_time":"2026-01-01T00:00:00+00:00","update_time":"2026-01-01T00:00:00+00:00"}
            """;

        var settings = StoreJson.DeserializeDomain(Stored, 1).Settings;

        Assert.Same(ProtectionSettings.Default, settings.Protection);
        Assert.NotNull(settings.Protection.Spam);
    }
}
