using System.Net.Http.Json;
using System.Text.Json;
using Gateway.Api.V1;
using Gateway.Testing;
using FieldMask = Google.Protobuf.WellKnownTypes.FieldMask;

namespace ControlPlane.Tests;

/// <summary><c>Domain.protection</c> through the real API (gRPC, HTTP/JSON) and gatewayctl: defaults, field masks, validation.</summary>
[Trait("Kind", "Integration")]
public sealed class ProtectionPolicyTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    [Fact]
    public async Task CreateDomain_NoProtectionGiven_ShowsEveryDefault()
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var created = await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName("pd") } });
        var p = (await domains.GetDomainAsync(new GetDomainRequest { Name = created.Name })).Protection;
        Assert.Equal(6, p.Spam.TagScore);
        Assert.Equal(10, p.Spam.QuarantineScore);
        Assert.Equal(15, p.Spam.RejectScore);
        Assert.False(p.Spam.SubjectTag);
        Assert.True(p.Spam.HasOutboundRejectScore);
        Assert.Equal(0, p.Spam.OutboundRejectScore);
        Assert.Equal(ProtectionAction.Reject, p.Malware);
        Assert.True(p.HasDmarcEnforce && p.DmarcEnforce);
        Assert.Equal(ProtectionAction.Quarantine, p.Spoofing);
        Assert.Equal(ScannerFailureAction.Tempfail, p.OnScannerFailure);
    }

    [Fact]
    public async Task UpdateDomain_ProtectionPaths_ChangeOnlyWhatTheMaskNames_UnsetNamedFieldReturnsToDefault()
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var name = (await domains.CreateDomainAsync(new CreateDomainRequest
        {
            Domain = new Domain
            {
                Name = ControlPlaneFixture.NewDomainName("pm"),
                Protection = new ProtectionSettings { Spam = new SpamProtection { RejectScore = 20, SubjectTag = true }, DmarcEnforce = false },
            },
        })).Name;

        // Only the reject score changes; the subject tag and DMARC setting given at creation stay.
        var updated = await domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Protection = new ProtectionSettings { Spam = new SpamProtection { RejectScore = 12 }, Malware = ProtectionAction.Quarantine } },
            UpdateMask = new FieldMask { Paths = { "protection.spam.reject_score" } },
        });
        Assert.Equal(12, updated.Protection.Spam.RejectScore);
        Assert.True(updated.Protection.Spam.SubjectTag);
        Assert.False(updated.Protection.DmarcEnforce);
        Assert.Equal(ProtectionAction.Reject, updated.Protection.Malware); // not in the mask

        // A named field left unset goes back to its default; "protection.spam" names every spam field.
        updated = await domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Protection = new ProtectionSettings { OnScannerFailure = ScannerFailureAction.Pass } },
            UpdateMask = new FieldMask { Paths = { "protection.dmarc_enforce", "protection.spam", "protection.on_scanner_failure" } },
        });
        Assert.True(updated.Protection.DmarcEnforce);
        Assert.Equal(15, updated.Protection.Spam.RejectScore);
        Assert.False(updated.Protection.Spam.SubjectTag);
        Assert.Equal(ScannerFailureAction.Pass, updated.Protection.OnScannerFailure);
        Assert.Equal(ProtectionAction.Reject, updated.Protection.Malware);
    }

    public static TheoryData<ProtectionSettings, string, string> Invalid => new()
    {
        { new ProtectionSettings { Spam = new SpamProtection { TagScore = -1 } }, "domain.protection.spam.tag_score", "from 0 (off) to 1000" },
        { new ProtectionSettings { Spam = new SpamProtection { RejectScore = double.NaN } }, "domain.protection.spam.reject_score", "from 0 (off)" },
        { new ProtectionSettings { Spam = new SpamProtection { OutboundRejectScore = 5000 } }, "domain.protection.spam.outbound_reject_score", "5000 given" },
        { new ProtectionSettings { Spam = new SpamProtection { TagScore = 8, QuarantineScore = 7 } }, "domain.protection.spam.quarantine_score", "not be below tag_score (8)" },
        { new ProtectionSettings { Spam = new SpamProtection { QuarantineScore = 0, RejectScore = 4 } }, "domain.protection.spam.reject_score", "not be below tag_score (6)" },
        { new ProtectionSettings { Malware = ProtectionAction.Deliver }, "domain.protection.malware", "REJECT or QUARANTINE" },
        { new ProtectionSettings { Malware = ProtectionAction.Tag }, "domain.protection.malware", "REJECT or QUARANTINE" },
        { new ProtectionSettings { Spoofing = (ProtectionAction)17 }, "domain.protection.spoofing", "DELIVER, TAG, QUARANTINE or REJECT" },
        { new ProtectionSettings { OnScannerFailure = (ScannerFailureAction)9 }, "domain.protection.on_scanner_failure", "TEMPFAIL or PASS" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public async Task CreateDomain_InvalidProtection_InvalidArgumentNamingTheField(ProtectionSettings protection, string field, string expected)
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var v = await RpcAssert.InvalidFieldAsync(field, domains.CreateDomainAsync(new CreateDomainRequest
        {
            Domain = new Domain { Name = ControlPlaneFixture.NewDomainName("pv"), Protection = protection },
        }));
        Assert.Contains(expected, v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UpdateDomain_UnknownProtectionPath_InvalidArgumentListingThePaths()
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var name = (await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName("pu") } })).Name;
        var v = await RpcAssert.InvalidFieldAsync("update_mask", domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name },
            UpdateMask = new FieldMask { Paths = { "protection.spam.bayes" } },
        }));
        Assert.Contains("protection.spam.reject_score", v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task JsonApi_PatchWithCamelCaseMask_ChangesTheThreshold()
    {
        var (_, key, domains) = await fx.NewTenantAsync();
        var name = (await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName("pj") } })).Name;
        using var http = new HttpClient { BaseAddress = new Uri(fx.HttpAddress) };
        using var request = new HttpRequestMessage(HttpMethod.Patch, $"/v1/domains/{name}?updateMask=protection.spam.quarantineScore,protection.onScannerFailure")
        {
            Content = JsonContent.Create(new { protection = new { spam = new { quarantineScore = 8.5 }, onScannerFailure = "SCANNER_FAILURE_ACTION_PASS" } }),
        };
        request.Headers.TryAddWithoutValidation("authorization", "Bearer " + key);
        using var response = await http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        using var json = JsonDocument.Parse(body);
        var p = json.RootElement.GetProperty("protection");
        Assert.Equal(8.5, p.GetProperty("spam").GetProperty("quarantineScore").GetDouble());
        Assert.Equal(15, p.GetProperty("spam").GetProperty("rejectScore").GetDouble());
        Assert.Equal("SCANNER_FAILURE_ACTION_PASS", p.GetProperty("onScannerFailure").GetString());
    }

    [Fact]
    public async Task Cli_ProtectionFlags_UpdateAndShowThePolicy_BadValueIsAUsageError()
    {
        var (_, key, domains) = await fx.NewTenantAsync();
        var env = new Dictionary<string, string> { ["GATEWAY_ENDPOINT"] = fx.Address, ["GATEWAY_KEY"] = key };
        var name = ControlPlaneFixture.NewDomainName("pc");
        var created = await GatewayCtl.RunAsync(env, ["domains", "create", name]);
        Assert.True(created.ExitCode == 0, created.ToString());
        Assert.Contains("protection: spam", created.Out, StringComparison.Ordinal);
        Assert.Contains("tag ≥ 6, quarantine ≥ 10, reject ≥ 15", created.Out, StringComparison.Ordinal);
        Assert.Contains("tempfail (451 4.7.1", created.Out, StringComparison.Ordinal);

        var updated = await GatewayCtl.RunAsync(env, ["domains", "update", name, "--spam-reject-score", "0", "--spam-subject-tag", "true", "--malware", "quarantine",
            "--dmarc-enforce", "false", "--spoofing", "reject", "--on-scanner-failure", "pass", "--outbound-reject-score", "12.5"]);
        Assert.True(updated.ExitCode == 0, updated.ToString());
        Assert.Contains("reject off; outbound reject ≥ 12.5", updated.Out, StringComparison.Ordinal);
        Assert.Contains("(+[SPAM] subject)", updated.Out, StringComparison.Ordinal);
        var p = (await domains.GetDomainAsync(new GetDomainRequest { Name = name })).Protection;
        Assert.Equal(0, p.Spam.RejectScore);
        Assert.Equal(10, p.Spam.QuarantineScore);
        Assert.True(p.Spam.SubjectTag);
        Assert.Equal(12.5, p.Spam.OutboundRejectScore);
        Assert.Equal(ProtectionAction.Quarantine, p.Malware);
        Assert.False(p.DmarcEnforce);
        Assert.Equal(ProtectionAction.Reject, p.Spoofing);
        Assert.Equal(ScannerFailureAction.Pass, p.OnScannerFailure);

        var bad = await GatewayCtl.RunAsync(env, ["domains", "update", name, "--malware", "ignore"]);
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--malware 'ignore': expected deliver, tag, quarantine or reject", bad.Err, StringComparison.Ordinal);
        var refused = await GatewayCtl.RunAsync(env, ["domains", "update", name, "--malware", "deliver"]);
        Assert.Equal(5, refused.ExitCode);
        Assert.Contains("domain.protection.malware: malware can be REJECT or QUARANTINE", refused.Err, StringComparison.Ordinal);
    }
}
