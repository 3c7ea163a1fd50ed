using System.Net;
using Gateway.Api.V1;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Tests;

/// <summary>
/// CheckDomain's findings (requirements §3.11) over gRPC, with DNS from the real DNS test server and inbound
/// servers on real loopback sockets; and the status ListDomains shows.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class CheckDomainTests(OnboardingFixture fx) : IClassFixture<OnboardingFixture>
{
    private const string Include = OnboardingFixture.SpfInclude;

    /// <summary>
    /// A new tenant's domain built by <paramref name="build"/>, with its verification TXT record, an MX (default: the
    /// gateway's host) and the given extra TXT records published.
    /// </summary>
    private async Task<(string Name, DomainService.DomainServiceClient Client, string CompanyId)> PublishedDomainAsync(
        Func<string, Domain> build, string? mx = null, params string[] txt)
    {
        var (companyId, _, client) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        var created = await client.CreateDomainAsync(new CreateDomainRequest { Domain = build(name) });
        fx.Dns.AddTxt(name, created.Verification.TxtRecord).AddMx(name, 10, mx ?? OnboardingFixture.MxHostOf(companyId));
        foreach (var record in txt)
        {
            fx.Dns.AddTxt(name, record);
        }

        return (name, client, companyId);
    }

    /// <summary>A verified domain with outbound on (custom IP), the MX at the gateway and the given SPF record(s).</summary>
    private async Task<(string Name, DomainService.DomainServiceClient Client)> OutboundDomainAsync(params string[] spf)
    {
        var (name, client, _) = await PublishedDomainAsync(
            n => new Domain { Name = n, Outbound = new OutboundSettings { Enabled = true, CustomIps = { "198.51.100.7" } } }, null, spf);
        return (name, client);
    }

    /// <summary>Inbound enabled with one catch-all row per loopback port.</summary>
    private static Domain InboundOn(string name, params int[] ports)
    {
        var domain = new Domain { Name = name, InboundEnabled = true };
        domain.InboundServers.AddRange(ports.Select((p, i) => new InboundServer { Recipient = "*@" + name, Host = "127.0.0.1", Port = p, Preference = 10 + i }));
        return domain;
    }

    private static Finding Only(CheckDomainResponse check, string code)
    {
        Assert.True(check.Findings.Count(f => f.Code == code) == 1, $"expected one {code}; got: {Describe(check)}");
        return check.Findings.Single(f => f.Code == code);
    }

    private static string Describe(CheckDomainResponse check) => string.Join(" | ", check.Findings.Select(f => $"{f.Code}/{f.Severity}: {f.Message}"));

    [Fact]
    public async Task CheckDomain_EverythingInPlace_CompletedWithSpfPass()
    {
        using var server = OnboardingFixture.StartListener();
        var (name, client, _) = await PublishedDomainAsync(n =>
        {
            var domain = InboundOn(n, ((IPEndPoint)server.LocalEndpoint).Port);
            // requirements §3.9: Microsoft 365 bound to the customer's tenant (without it: OUTBOUND_OFFICE365_NO_TENANT_ID, Deliverer.Tests ProviderBindingTests).
            domain.Outbound = new OutboundSettings { Enabled = true, Office365 = true, Office365TenantId = "72f988bf-86f1-41af-91ab-2d7cd011db47" };
            return domain;
        }, null, $"v=spf1 mx {Include} -all");

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        Assert.True(check.Status == DomainStatus.Completed, Describe(check));
        Assert.All(check.Findings, f => Assert.Equal(Severity.Info, f.Severity));
        var pass = Only(check, "SPF_PASS");
        Assert.Contains("_spf.gw.test.example", pass.Message, StringComparison.Ordinal);
        Assert.NotNull(check.CheckTime);

        // Verified on the way (CheckDomain verifies an unverified domain first).
        Assert.True((await client.GetDomainAsync(new GetDomainRequest { Name = name })).Verification.Verified);
    }

    [Fact]
    public async Task CheckDomain_NoMxAndNoAddress_ErrorWithMxRecordToPublish()
    {
        var (companyId, _, client) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        var created = await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        fx.Dns.AddTxt(name, created.Verification.TxtRecord);

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        var finding = Only(check, "DNS_NO_MX_OR_ADDRESS");
        Assert.Equal(Severity.Error, finding.Severity);
        Assert.Contains("neither an MX record nor an A/AAAA record", finding.Message, StringComparison.Ordinal);
        Assert.Equal(("MX", $"10 {OnboardingFixture.MxHostOf(companyId)}"), (finding.Record.Type, finding.Record.Value));
        Assert.Equal(DomainStatus.ConfigurationRequired, check.Status);

        // An A record alone is enough (RFC 5321 §5.1 falls back to it).
        fx.Dns.AddA(name, "192.0.2.80");
        var again = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });
        Assert.DoesNotContain(again.Findings, f => f.Code == "DNS_NO_MX_OR_ADDRESS");
        Assert.True(again.Status == DomainStatus.Completed, Describe(again));
    }

    [Fact]
    public async Task CheckDomain_SpfMissing_ErrorWithRecordToPublish()
    {
        var (name, client) = await OutboundDomainAsync();

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        var finding = Only(check, "SPF_MISSING");
        Assert.Equal(Severity.Error, finding.Severity);
        Assert.Equal($"v=spf1 {Include} ~all", finding.Record.Value);
        Assert.Contains($"\"v=spf1 {Include} ~all\"", finding.Message, StringComparison.Ordinal);
        Assert.Equal(DomainStatus.ConfigurationRequired, check.Status);
    }

    [Fact]
    public async Task CheckDomain_SeveralSpfRecords_ErrorSaysMergeIntoOne()
    {
        var (name, client) = await OutboundDomainAsync($"v=spf1 {Include} -all", "v=spf1 mx -all");

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        var finding = Only(check, "SPF_MULTIPLE_RECORDS");
        Assert.Equal(Severity.Error, finding.Severity);
        Assert.Contains("2 SPF records", finding.Message, StringComparison.Ordinal);
        Assert.Contains("single TXT record", finding.Message, StringComparison.Ordinal);
        Assert.Contains(Include, finding.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckDomain_SpfWithoutGatewayInclude_ErrorNamesIncludeAndFullRecord()
    {
        var (name, client) = await OutboundDomainAsync("v=spf1 mx ip4:198.51.100.7 ~all");

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        var finding = Only(check, "SPF_GATEWAY_NOT_AUTHORIZED");
        Assert.Equal(Severity.Error, finding.Severity);
        Assert.Contains($"Add '{Include}'", finding.Message, StringComparison.Ordinal);
        Assert.Contains($"{OnboardingFixture.SendingV4}: softfail by ~all", finding.Message, StringComparison.Ordinal);
        Assert.Contains($"{OnboardingFixture.SendingV6}: softfail", finding.Message, StringComparison.Ordinal);
        Assert.Equal($"v=spf1 {Include} mx ip4:198.51.100.7 ~all", finding.Record.Value);
        Assert.Equal(DomainStatus.ConfigurationRequired, check.Status);
    }

    [Fact]
    public async Task CheckDomain_GatewayIncludedTwoLevelsDeep_Pass()
    {
        var provider = "_spf." + OnboardingFixture.NewDomainName();
        var nested = "_inner." + OnboardingFixture.NewDomainName();
        fx.Dns.AddTxt(provider, $"v=spf1 ip4:203.0.113.0/24 include:{nested} ~all")
            .AddTxt(nested, $"v=spf1 a:mail.{nested} {Include} -all");
        var (name, client) = await OutboundDomainAsync($"v=spf1 include:{provider} -all");

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        Assert.True(check.Status == DomainStatus.Completed, Describe(check));
        var pass = Only(check, "SPF_PASS");
        Assert.Contains($"{name} → include:{provider} → include:{nested} → include:_spf.gw.test.example", pass.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckDomain_Redirect_FollowedToTheRecordThatDecides()
    {
        var good = "_spf." + OnboardingFixture.NewDomainName();
        fx.Dns.AddTxt(good, $"v=spf1 {Include} -all");
        var (passing, client) = await OutboundDomainAsync($"v=spf1 ip4:198.51.100.7 redirect={good}");
        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = passing });
        Assert.True(check.Status == DomainStatus.Completed, Describe(check));
        Assert.Contains($"redirect={good}", Only(check, "SPF_PASS").Message, StringComparison.Ordinal);

        var bad = "_spf." + OnboardingFixture.NewDomainName();
        fx.Dns.AddTxt(bad, "v=spf1 mx -all");
        var (failing, client2) = await OutboundDomainAsync($"v=spf1 redirect={bad}");
        var check2 = await client2.CheckDomainAsync(new CheckDomainRequest { Name = failing });
        var finding = Only(check2, "SPF_GATEWAY_NOT_AUTHORIZED");
        Assert.Contains($"fail by -all in {bad}", finding.Message, StringComparison.Ordinal);
        Assert.Equal($"v=spf1 {Include} redirect={bad}", finding.Record.Value);
    }

    [Fact]
    public async Task CheckDomain_IncludeLoopBeyondTenLookups_PermErrorExplainsLimitAndLoop()
    {
        var a = "_a." + OnboardingFixture.NewDomainName();
        var b = "_b." + OnboardingFixture.NewDomainName();
        fx.Dns.AddTxt(a, $"v=spf1 include:{b} -all").AddTxt(b, $"v=spf1 include:{a} -all");
        var (name, client) = await OutboundDomainAsync($"v=spf1 include:{a} {Include} -all");

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        var finding = Only(check, "SPF_PERMERROR");
        Assert.Equal(Severity.Error, finding.Severity);
        Assert.Contains("more than 10 DNS lookups", finding.Message, StringComparison.Ordinal);
        Assert.Contains("loop", finding.Message, StringComparison.Ordinal);
        Assert.Contains($"include:{a} → include:{b} → include:{a}", finding.Message, StringComparison.Ordinal);
        Assert.Equal(DomainStatus.ConfigurationRequired, check.Status);
    }

    [Fact]
    public async Task CheckDomain_OutboundWithoutSource_Error()
    {
        var (name, client, _) = await PublishedDomainAsync(n => new Domain { Name = n, Outbound = new OutboundSettings { Enabled = true } },
            null, $"v=spf1 {Include} -all");

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        var finding = Only(check, "OUTBOUND_NO_SOURCE");
        Assert.Equal(Severity.Error, finding.Severity);
        Assert.Contains("all outbound mail is refused", finding.Message, StringComparison.Ordinal);
        Assert.Single(check.Findings, f => f.Severity != Severity.Info);
    }

    [Fact]
    public async Task CheckDomain_InboundServerDown_ErrorNamesTheServer()
    {
        using var up = OnboardingFixture.StartListener();
        var downPort = OnboardingFixture.ClosedPort();
        var (name, client, _) = await PublishedDomainAsync(n => InboundOn(n, ((IPEndPoint)up.LocalEndpoint).Port, downPort));

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        var finding = Only(check, "INBOUND_CONNECTION_FAILED");
        Assert.StartsWith("Cannot connect to the inbound server.", finding.Message, StringComparison.Ordinal);
        Assert.Contains($"127.0.0.1:{downPort} (connection refused)", finding.Message, StringComparison.Ordinal);
        Assert.Equal(DomainStatus.ConfigurationRequired, check.Status);
    }

    [Fact]
    public async Task CheckDomain_InboundMxElsewhere_InfoWithGatewayMxAndStillCompleted()
    {
        using var up = OnboardingFixture.StartListener();
        var (name, client, companyId) = await PublishedDomainAsync(n => InboundOn(n, ((IPEndPoint)up.LocalEndpoint).Port), "mx.own-server.example");

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });

        var finding = Only(check, "INBOUND_MX_NOT_GATEWAY");
        Assert.Equal(Severity.Info, finding.Severity);
        Assert.Contains("mx.own-server.example", finding.Message, StringComparison.Ordinal);
        Assert.Equal($"10 {OnboardingFixture.MxHostOf(companyId)}", finding.Record.Value);
        Assert.Equal(DomainStatus.Completed, check.Status);
    }

    [Fact]
    public async Task ListDomains_AfterChecks_ShowsEachStatusAndStaleAfterAChange()
    {
        var (companyId, _, client) = await fx.NewTenantAsync();
        var good = "a" + OnboardingFixture.NewDomainName();
        var bad = "b" + OnboardingFixture.NewDomainName();
        var unchecked_ = "c" + OnboardingFixture.NewDomainName();
        foreach (var n in new[] { good, bad, unchecked_ })
        {
            var created = await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = n } });
            fx.Dns.AddMx(n, 10, OnboardingFixture.MxHostOf(companyId));
            if (n == good)
            {
                fx.Dns.AddTxt(n, created.Verification.TxtRecord);
            }
        }

        await client.CheckDomainAsync(new CheckDomainRequest { Name = good });
        fx.Dns.Remove(bad);
        await client.CheckDomainAsync(new CheckDomainRequest { Name = bad });

        var list = (await client.ListDomainsAsync(new ListDomainsRequest())).Domains.ToDictionary(d => d.Name);
        Assert.Equal(DomainStatus.Completed, list[good].Health.Status);
        Assert.False(list[good].Health.Stale);
        Assert.Equal(DomainStatus.ConfigurationRequired, list[bad].Health.Status);
        Assert.Equal(["DOMAIN_NOT_VERIFIED", "DNS_NO_MX_OR_ADDRESS"], list[bad].Health.Findings.Select(f => f.Code));
        Assert.Null(list[unchecked_].Health);

        // A saved change makes the stored result stale until the next check.
        await client.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = good, Outbound = new OutboundSettings { Enabled = true } },
            UpdateMask = new FieldMask { Paths = { "outbound.enabled" } },
        });
        var after = await client.GetDomainAsync(new GetDomainRequest { Name = good });
        Assert.True(after.Health.Stale);
        Assert.Equal(DomainStatus.Completed, after.Health.Status);
    }
}
