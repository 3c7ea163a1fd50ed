using System.Text.Json;
using Gateway.Testing;

namespace ControlPlane.Tests;

/// <summary>gatewayctl run as a real process against the ControlPlane on a real Kestrel listener.</summary>
[Trait("Kind", "Integration")]
public sealed class CliTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    private Task<CliResult> RunAsync(IReadOnlyDictionary<string, string>? env, params string[] args)
    {
        var all = new Dictionary<string, string> { ["GATEWAY_ENDPOINT"] = fx.Address };
        foreach (var (k, v) in env ?? new Dictionary<string, string>())
        {
            all[k] = v;
        }

        return GatewayCtl.RunAsync(all, args);
    }

    private Task<CliResult> AsOperatorAsync(params string[] args) =>
        RunAsync(new Dictionary<string, string> { ["GATEWAY_KEY"] = ControlPlaneFixture.OperatorKey }, args);

    [Fact]
    public async Task TenantsAndKeys_CreateListJson_ThenDomainsWithTheNewKey()
    {
        var company = "cli-" + Guid.NewGuid().ToString("N")[..8];
        var created = await AsOperatorAsync("tenants", "create", company, "--display-name", "CLI Corp");
        Assert.True(created.ExitCode == 0, created.Err);
        Assert.Contains($"{company}.in.gw.test.example", created.Out, StringComparison.Ordinal);

        var key = await AsOperatorAsync("keys", "create", company, "--json");
        Assert.True(key.ExitCode == 0, key.Err);
        using var json = JsonDocument.Parse(key.Out);
        var secret = json.RootElement.GetProperty("key").GetString()!;

        var list = await AsOperatorAsync("tenants", "list");
        Assert.Contains(company, list.Out, StringComparison.Ordinal);
        Assert.Contains("CLI Corp", list.Out, StringComparison.Ordinal);

        var name = ControlPlaneFixture.NewDomainName("cli");
        var asTenant = new Dictionary<string, string> { ["GATEWAY_KEY"] = secret };
        var domain = await RunAsync(asTenant, "domains", "create", name, "--inbound", "true",
            "--server", $"*@{name}=192.0.2.1/20", "--server", $"john@{name}=[2001:db8::1]:2525/10", "--outbound", "true", "--custom-ip", "198.51.100.7");
        Assert.True(domain.ExitCode == 0, domain.Err);
        Assert.Contains("tmes=", domain.Out, StringComparison.Ordinal);
        Assert.Contains("2001:db8::1  2525", domain.Out, StringComparison.Ordinal);

        var shown = await RunAsync(asTenant, "domains", "get", name, "--json");
        using var d = JsonDocument.Parse(shown.Out);
        Assert.Equal(20, d.RootElement.GetProperty("inbound_servers")[0].GetProperty("preference").GetInt32());
        Assert.Equal("198.51.100.7", d.RootElement.GetProperty("outbound").GetProperty("custom_ips")[0].GetString());

        var updated = await RunAsync(asTenant, "domains", "update", name, "--office365", "true");
        Assert.True(updated.ExitCode == 0, updated.Err);
        Assert.Contains("Microsoft 365 (no tenant id: refused), 198.51.100.7", updated.Out, StringComparison.Ordinal);
        var bound = await RunAsync(asTenant, "domains", "update", name, "--office365-tenant-id", "72F988BF-86F1-41AF-91AB-2D7CD011DB47");
        Assert.True(bound.ExitCode == 0, bound.Err);
        Assert.Contains("Microsoft 365 (tenant 72f988bf-86f1-41af-91ab-2d7cd011db47), 198.51.100.7", bound.Out, StringComparison.Ordinal);

        var listed = await RunAsync(asTenant, "domains", "list");
        Assert.Contains(name, listed.Out, StringComparison.Ordinal);

        var deleted = await RunAsync(asTenant, "domains", "delete", name);
        Assert.True(deleted.ExitCode == 0, deleted.Err);
        Assert.Contains("[MX]", deleted.Out, StringComparison.Ordinal);
        Assert.Contains("[SPF]", deleted.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Errors_ReadableWithoutStackTraces_AndExitCodes()
    {
        var (_, key, _) = await fx.NewTenantAsync("cli");
        var asTenant = new Dictionary<string, string> { ["GATEWAY_KEY"] = key };

        var invalid = await RunAsync(asTenant, "domains", "create", ControlPlaneFixture.NewDomainName(), "--outbound", "true",
            "--custom-ip", "10.0.0.0/8", "--custom-ip", "1.2.3");
        Assert.Equal(5, invalid.ExitCode);
        Assert.Contains("INVALID_ARGUMENT", invalid.Err, StringComparison.Ordinal);
        Assert.Contains("domain.outbound.custom_ips[0]: '10.0.0.0/8' is a CIDR block", invalid.Err, StringComparison.Ordinal);
        Assert.Contains("domain.outbound.custom_ips[1]", invalid.Err, StringComparison.Ordinal);

        var missing = await RunAsync(asTenant, "domains", "get", "nothing-here.example.com");
        Assert.Equal(4, missing.ExitCode);
        Assert.Contains("NOT_FOUND", missing.Err, StringComparison.Ordinal);

        var noKey = await RunAsync(null, "domains", "list");
        Assert.Equal(3, noKey.ExitCode);
        Assert.Contains("UNAUTHENTICATED", noKey.Err, StringComparison.Ordinal);

        var denied = await RunAsync(asTenant, "tenants", "list");
        Assert.Equal(3, denied.ExitCode);
        Assert.Contains("PERMISSION_DENIED", denied.Err, StringComparison.Ordinal);

        var nothing = await RunAsync(asTenant, "domains", "update", "example.com");
        Assert.Equal(2, nothing.ExitCode);
        Assert.Contains("nothing to change", nothing.Err, StringComparison.Ordinal);

        var badServer = await RunAsync(asTenant, "domains", "create", "x.example.com", "--server", "no-equals-sign");
        Assert.Equal(2, badServer.ExitCode);
        Assert.Contains("RECIPIENT=HOST", badServer.Err, StringComparison.Ordinal);

        var unreachable = await RunAsync(asTenant, "--endpoint", $"http://127.0.0.1:{Gateway.Testing.FreePort.Get()}", "domains", "list");
        Assert.Equal(6, unreachable.ExitCode);
        Assert.Contains("UNAVAILABLE", unreachable.Err, StringComparison.Ordinal);

        var unknownCommand = await RunAsync(asTenant, "domains", "bogus");
        Assert.Equal(2, unknownCommand.ExitCode);
        Assert.Contains("'bogus'", unknownCommand.Err, StringComparison.Ordinal);

        var missingArgument = await RunAsync(asTenant, "rules", "add");
        Assert.Equal(2, missingArgument.ExitCode);

        var noCompany = await RunAsync(new Dictionary<string, string> { ["GATEWAY_KEY"] = ControlPlaneFixture.OperatorKey }, "domains", "list");
        Assert.Equal(3, noCompany.ExitCode);
        Assert.Contains("--company or GATEWAY_COMPANY", noCompany.Err, StringComparison.Ordinal);

        foreach (var r in new[] { invalid, missing, noKey, denied, nothing, badServer, unreachable, unknownCommand, missingArgument, noCompany })
        {
            Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ConfigFile_ProvidesEndpointKeyAndCompany_FlagsWin()
    {
        var (company, _, _) = await fx.NewTenantAsync("cfg");
        var dir = Path.Combine(Path.GetTempPath(), "gwctl-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        try
        {
            var keyFile = Path.Combine(dir, "operator.key");
            await File.WriteAllTextAsync(keyFile, ControlPlaneFixture.OperatorKey + "\n");
            var config = Path.Combine(dir, "config.json");
            await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new Dictionary<string, string>
            {
                ["endpoint"] = fx.Address, ["key_file"] = keyFile, ["company"] = company,
            }));

            var env = new Dictionary<string, string> { ["GATEWAYCTL_CONFIG"] = config, ["GATEWAY_ENDPOINT"] = "" };
            var name = ControlPlaneFixture.NewDomainName("cfg");
            var created = await RunAsync(env, "domains", "create", name);
            Assert.True(created.ExitCode == 0, created.Err);
            Assert.Contains(company, created.Out, StringComparison.Ordinal);

            var wrongFlag = await RunAsync(env, "--key", "wrong-key", "domains", "list");
            Assert.Equal(3, wrongFlag.ExitCode);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
