using Gateway.Api.V1;
using Gateway.Testing;

namespace ControlPlane.Tests;

/// <summary>
/// A ControlPlane on the shipped SPF settings: no <c>Gateway:SendingAddresses</c>, the default
/// <c>Gateway:SpfInclude</c> (<c>include:_spf.&lt;GatewayDomain&gt;</c>); a real redis-server and the real DNS test
/// server as its resolver. The gateway's own record lists an address only, as an operator publishes it.
/// </summary>
public sealed class ShippedDefaultsFixture : IAsyncLifetime
{
    public const string Include = "include:_spf." + ControlPlaneHost.GatewayDomain;

    public RedisServer Redis { get; private set; } = null!;

    public DnsTestServer Dns { get; private set; } = null!;

    public ControlPlaneHost Host { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        Dns = DnsTestServer.Start();
        Dns.AddTxt("_spf." + ControlPlaneHost.GatewayDomain, "v=spf1 ip4:127.0.0.10 -all");
        Host = await ControlPlaneHost.StartAsync(Redis.ConnectionString,
            "--Gateway:Dns:Servers:0", Dns.Address, "--Gateway:Dns:UseCache", "false", "--Gateway:Dns:Timeout", "00:00:02", "--Gateway:Dns:Retries", "0");
    }

    public async Task DisposeAsync()
    {
        if (Host is not null)
        {
            await Host.DisposeAsync();
        }

        if (Dns is not null)
        {
            await Dns.DisposeAsync();
        }

        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }
    }
}

/// <summary>
/// CheckDomain's SPF finding without sending addresses (requirements §3 "Health"; issue: the seed's check did
/// nothing on the shipped defaults): the record must reach the gateway's include through include:/redirect= within
/// RFC 7208's lookup limit, otherwise CONFIGURATION_REQUIRED with the record to publish.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class SpfOnShippedDefaultsTests(ShippedDefaultsFixture fx) : IClassFixture<ShippedDefaultsFixture>
{
    private const string Include = ShippedDefaultsFixture.Include;

    /// <summary>A verified domain with outbound on, the MX at the gateway, and its SPF record; the DNS names to replace it.</summary>
    private async Task<(string Name, DomainService.DomainServiceClient Client, Action<string> PublishSpf)> OutboundDomainAsync(string spf)
    {
        var (companyId, key) = await fx.Host.NewTenantAsync();
        var client = new DomainService.DomainServiceClient(fx.Host.WithKey(key));
        var name = $"d{Guid.NewGuid().ToString("N")[..10]}.example.com";
        var created = await client.CreateDomainAsync(new CreateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new OutboundSettings { Enabled = true, CustomIps = { "198.51.100.7" } } },
        });
        void Publish(string record) =>
            fx.Dns.Remove(name).AddTxt(name, created.Verification.TxtRecord).AddMx(name, 10, $"{companyId}.in.{ControlPlaneHost.GatewayDomain}").AddTxt(name, record);
        Publish(spf);
        return (name, client, Publish);
    }

    private static Finding Only(CheckDomainResponse check, string code)
    {
        Assert.True(check.Findings.Count(f => f.Code == code) == 1, $"expected one {code}; got: {Describe(check)}");
        return check.Findings.Single(f => f.Code == code);
    }

    private static string Describe(CheckDomainResponse check) => string.Join(" | ", check.Findings.Select(f => $"{f.Code}/{f.Severity}: {f.Message}"));

    private static string NewName(string label) => $"_{label}.{Guid.NewGuid().ToString("N")[..10]}.example.net";

    [Fact]
    public async Task CheckDomain_ShippedDefaults_MissingInclude_ConfigurationRequired_ThenCompletedThroughChainOfIncludes()
    {
        var (name, client, publish) = await OutboundDomainAsync("v=spf1 mx ip4:198.51.100.7 ~all");

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        Assert.Equal(DomainStatus.ConfigurationRequired, check.Status);
        var finding = Only(check, "SPF_GATEWAY_NOT_AUTHORIZED");
        Assert.Equal(Severity.Error, finding.Severity);
        Assert.Contains($"does not include the gateway's '{Include}'", finding.Message, StringComparison.Ordinal);
        Assert.Contains($"ends at '~all' without it", finding.Message, StringComparison.Ordinal);
        Assert.Equal(("TXT", $"v=spf1 {Include} mx ip4:198.51.100.7 ~all"), (finding.Record.Type, finding.Record.Value));

        // The customer's provider record includes another, which includes the gateway's: found two levels deep.
        var provider = NewName("spf");
        var nested = NewName("inner");
        fx.Dns.AddTxt(provider, $"v=spf1 ip4:203.0.113.0/24 include:{nested} ~all").AddTxt(nested, $"v=spf1 a:mail.example.net {Include} -all");
        publish($"v=spf1 mx include:{provider} ~all");

        var again = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        Assert.True(again.Status == DomainStatus.Completed, Describe(again));
        var pass = Only(again, "SPF_PASS");
        Assert.Equal(Severity.Info, pass.Severity);
        Assert.Contains($"{name} → include:{provider} → include:{nested} → {Include}", pass.Message, StringComparison.Ordinal);
        // mx, include provider, include nested, a:, the gateway's include: 5 lookups.
        Assert.Contains("5 of 10 DNS lookups used", pass.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(again.Findings, f => f.Code == "SPF_NOT_EVALUATED");
    }

    [Fact]
    public async Task CheckDomain_ShippedDefaults_RedirectToRecordWithInclude_Completed()
    {
        var target = NewName("spf");
        fx.Dns.AddTxt(target, $"v=spf1 ip4:192.0.2.1 {Include} -all");
        var (name, client, _) = await OutboundDomainAsync($"v=spf1 ip4:198.51.100.7 redirect={target}");

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        Assert.True(check.Status == DomainStatus.Completed, Describe(check));
        Assert.Contains($"{name} → redirect={target} → {Include}", Only(check, "SPF_PASS").Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("v=spf1 -all {0}", "ends at '-all' without it")] // after 'all': never evaluated
    [InlineData("v=spf1 ~{0} -all", "with the qualifier '~', which gives the gateway's mail softfail")]
    [InlineData("v=spf1 mx -all redirect=_spf.gw.test.example", "ends at '-all' without it")] // redirect ignored with 'all'
    public async Task CheckDomain_ShippedDefaults_IncludeNotReachedWithPass_NotAuthorized(string record, string why)
    {
        var (name, client, _) = await OutboundDomainAsync(string.Format(System.Globalization.CultureInfo.InvariantCulture, record, Include));

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        Assert.Equal(DomainStatus.ConfigurationRequired, check.Status);
        Assert.Contains(why, Only(check, "SPF_GATEWAY_NOT_AUTHORIZED").Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckDomain_ShippedDefaults_TenLookupsBeforeTheInclude_PermError()
    {
        // Nine a: mechanisms, an include with one more: the gateway's include would be the 12th lookup.
        var deep = NewName("deep");
        fx.Dns.AddTxt(deep, "v=spf1 a:x.example.net ~all");
        var terms = string.Join(' ', Enumerable.Range(1, 9).Select(i => $"a:h{i}.example.net"));
        var (name, client, _) = await OutboundDomainAsync($"v=spf1 {terms} include:{deep} {Include} ~all");

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        Assert.Equal(DomainStatus.ConfigurationRequired, check.Status);
        var finding = Only(check, "SPF_PERMERROR");
        Assert.Contains("more than 10 DNS lookups", finding.Message, StringComparison.Ordinal);
        Assert.Contains("before it reaches the gateway", finding.Message, StringComparison.Ordinal);
        Assert.Contains($"{name} → include:{deep}", finding.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckDomain_ShippedDefaults_IncludeOfDomainWithoutSpf_PermError_DnsFailure_TempError()
    {
        var missing = NewName("none");
        var (name, client, publish) = await OutboundDomainAsync($"v=spf1 include:{missing} {Include} ~all");

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });
        Assert.Contains($"{missing} does not exist in DNS", Only(check, "SPF_PERMERROR").Message, StringComparison.Ordinal);

        var broken = NewName("broken");
        fx.Dns.Fail(broken);
        publish($"v=spf1 include:{broken} {Include} ~all");
        var temp = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });
        var finding = Only(temp, "SPF_TEMPERROR");
        Assert.Equal(Severity.Warning, finding.Severity);
        Assert.Equal(DomainStatus.ConfigurationRequired, temp.Status);
    }
}
