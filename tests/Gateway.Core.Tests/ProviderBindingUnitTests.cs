using System.Net;
using System.Text;
using Gateway.Core.Domains;
using Gateway.Core.Relay;
using Gateway.Core.Snapshot;

namespace Gateway.Core.Tests;

/// <summary>ProviderBinding (requirements §3.9): header reading and the decision, without the network.</summary>
[Trait("Kind", "Unit")]
public sealed class ProviderBindingUnitTests
{
    private const string Tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    private static readonly ProviderRanges Ranges = new(
        new ProviderRangeList("test", DateTimeOffset.UnixEpoch, ["40.107.0.0/16"]),
        new ProviderRangeList("test", DateTimeOffset.UnixEpoch, ["209.85.128.0/17"]));

    private static DomainEntry Domain(string? tenant, bool google = false) => new(new DomainConfig
    {
        Name = "example.com",
        CompanyId = "acme",
        Settings = new DomainSettings(false, [], new OutboundSettings(true, true, google, ["192.0.2.10"]) { Office365TenantId = tenant }),
        Verification = new VerificationState(new string('a', 32), true, VerificationMethod.Txt, DateTimeOffset.UtcNow),
        CreateTime = DateTimeOffset.UtcNow,
        UpdateTime = DateTimeOffset.UtcNow,
    });

    private static byte[] Mail(string headers) => Encoding.ASCII.GetBytes(headers + "Subject: x\r\n\r\nX-MS-Exchange-CrossTenant-Id: " + Tenant + "\r\n");

    [Theory]
    [InlineData("X-MS-Exchange-CrossTenant-Id: " + Tenant + "\r\n", Tenant)]
    [InlineData("x-ms-exchange-crosstenant-id:\r\n\t" + Tenant + "\r\n", Tenant)]
    [InlineData("X-MS-Exchange-CrossTenant-Id-Other: 1\r\n", null)]
    [InlineData("", null)]
    public void FirstHeader_CaseInsensitive_Unfolded_StopsAtTheBody(string headers, string? expected) =>
        Assert.Equal(expected, ProviderBinding.FirstHeader(Mail(headers), ProviderBinding.TenantHeader));

    [Fact]
    public void Refusal_OnlyForMicrosoftRangesWithoutTheTenantsStamp()
    {
        var ms = IPAddress.Parse("40.107.1.1");
        var stamped = Mail($"X-MS-Exchange-CrossTenant-Id: {Tenant.ToUpperInvariant()}\r\n");
        Assert.Null(ProviderBinding.Refusal(Domain(Tenant), ms, Ranges, stamped));
        Assert.Contains("another Microsoft 365 tenant", ProviderBinding.Refusal(Domain(Tenant), ms, Ranges, Mail($"X-MS-Exchange-CrossTenant-Id: {Guid.NewGuid()}\r\n")));
        Assert.Contains("without X-MS-Exchange-CrossTenant-Id", ProviderBinding.Refusal(Domain(Tenant), ms, Ranges, Mail(string.Empty)));
        Assert.Contains("no Microsoft 365 tenant id", ProviderBinding.Refusal(Domain(null), ms, Ranges, stamped));
        // Not through Microsoft's ranges, or the customer's own server: not this check's business.
        Assert.Null(ProviderBinding.Refusal(Domain(null), IPAddress.Parse("192.0.2.10"), Ranges, Mail(string.Empty)));
        Assert.Null(ProviderBinding.Refusal(Domain(null), IPAddress.Parse("198.51.100.1"), Ranges, Mail(string.Empty)));
    }
}
