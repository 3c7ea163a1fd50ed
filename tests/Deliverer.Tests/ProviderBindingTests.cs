using System.Net;
using Gateway.Api.V1;
using Gateway.ControlPlane.Application;
using Gateway.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Deliverer.Tests;

/// <summary>
/// requirements §3.9 (security review H1, "EchoSpoofing"), end to end through a real Postfix: a client inside
/// "Microsoft 365's ranges" (here 127.0.0.96/28, from a provider-ranges file, standing in for Exchange Online) sends as
/// a customer that allows Microsoft 365. Only a message stamped by Exchange Online with the customer's own tenant id
/// (X-MS-Exchange-CrossTenant-Id) is relayed; another tenant's stamp, no stamp, or no tenant id configured get
/// 550 5.7.1 in reply to DATA. The customer's own custom IP needs no stamp.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class ProviderBindingTests : IAsyncLifetime
{
    private const string Tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    private static readonly IPAddress Microsoft = IPAddress.Parse("127.0.0.97");
    private WholeGateway _gw = null!;
    private string _ranges = null!;

    public async Task InitializeAsync()
    {
        _ranges = Path.Combine(Path.GetTempPath(), $"gw-ranges-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(_ranges, """
            { "providers": {
                "office365": { "source": "test: Exchange Online stand-in", "as_of": "2026-12-06T00:00:00+00:00", "ranges": ["127.0.0.96/28"] },
                "google_workspace": { "source": "test", "as_of": "2026-12-06T00:00:00+00:00", "ranges": ["192.0.2.0/24"] } } }
            """);
        _gw = await WholeGateway.StartAsync($"--Gateway:ProviderRanges:File={_ranges}");
    }

    public async Task DisposeAsync()
    {
        await _gw.DisposeAsync();
        File.Delete(_ranges);
    }

    private static string Message(string from, string to, string? tenant) =>
        $"Received: from mail.protection.outlook.com\r\n" +
        (tenant is null ? string.Empty : $"X-MS-Exchange-CrossTenant-Id: {tenant}\r\nX-OriginatorOrg: example.com\r\n") +
        $"From: <{from}>\r\nTo: <{to}>\r\nSubject: via Microsoft 365\r\nMessage-ID: <{Guid.NewGuid():N}@client.test>\r\n\r\nHello.\r\n";

    [Fact]
    public async Task Outbound_FromMicrosoftRanges_OnlyWithTheCustomersTenantStamp_Else550AtData()
    {
        await using var mx = SmtpSink.Start("127.0.0.98", _gw.OutboundPort);
        var external = $"ext{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        _gw.Dns.AddMx(external, 10, "mx." + external).AddA("mx." + external, "127.0.0.98");
        var (_, key) = await _gw.ControlPlane.NewTenantAsync("pb");
        var domains = new DomainService.DomainServiceClient(_gw.ControlPlane.WithKey(key));
        var name = $"pb{Guid.NewGuid().ToString("N")[..8]}.example.com";
        await domains.CreateDomainAsync(new CreateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new OutboundSettings { Enabled = true, Office365 = true, CustomIps = { "127.0.0.99" } } },
        });
        var verified = await _gw.ControlPlane.Services.GetRequiredService<DomainManager>().ChangeAsync(name,
            d => d with { Verification = d.Verification with { Verified = true, Method = Gateway.Core.Domains.VerificationMethod.Txt, VerifyTime = DateTimeOffset.UtcNow } },
            Gateway.Core.Storage.ConfigOps.Verify);
        await _gw.WaitAppliedAsync(name, verified.Etag);
        var from = $"ceo@{name}";
        var to = $"bob@{external}";

        // No tenant id configured: CheckDomain says so, and Microsoft 365 mail is refused even with a stamp.
        var check = await domains.CheckDomainAsync(new CheckDomainRequest { Name = name });
        Assert.Contains("OUTBOUND_OFFICE365_NO_TENANT_ID", check.ToString(), StringComparison.Ordinal);
        var (rcpt, data) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, from, [to], Message(from, to, Tenant), Microsoft);
        Assert.True(rcpt[0].IsPositive, rcpt[0].ToString()); // RCPT cannot see headers: the PolicyDaemon accepts the range
        Assert.StartsWith("550 5.7.1", data!.ToString(), StringComparison.Ordinal);
        Assert.Contains("no Microsoft 365 tenant id", data.ToString(), StringComparison.Ordinal);

        var bad = await Assert.ThrowsAsync<RpcException>(async () => await domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new OutboundSettings { Office365TenantId = "not-a-guid" } },
            UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "outbound.office365_tenant_id" } },
        }));
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        var updated = await domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new OutboundSettings { Office365TenantId = Tenant.ToUpperInvariant() } },
            UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "outbound.office365_tenant_id" } },
        });
        Assert.Equal(Tenant, updated.Outbound.Office365TenantId);
        Assert.True(updated.Outbound.Office365);
        await _gw.WaitAppliedAsync(name, updated.Etag);

        // Another tenant's stamp, or none: 550 at DATA. A forged header below Exchange's own stamp does not count.
        (_, data) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, from, [to], Message(from, to, Guid.NewGuid().ToString()), Microsoft);
        Assert.StartsWith("550 5.7.1", data!.ToString(), StringComparison.Ordinal);
        Assert.Contains("another Microsoft 365 tenant", data.ToString(), StringComparison.Ordinal);
        (_, data) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, from, [to], Message(from, to, null), Microsoft);
        Assert.StartsWith("550 5.7.1", data!.ToString(), StringComparison.Ordinal);
        var forged = $"X-MS-Exchange-CrossTenant-Id: {Guid.NewGuid()}\r\n" + Message(from, to, Tenant);
        (_, data) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, from, [to], forged, Microsoft);
        Assert.StartsWith("550 5.7.1", data!.ToString(), StringComparison.Ordinal);
        Assert.Empty(mx.Messages);

        // The customer's tenant: relayed. The customer's own server (custom IP): no stamp needed.
        (_, data) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, from, [to], Message(from, to, Tenant), Microsoft);
        Assert.True(data!.IsPositive, data.ToString());
        (_, data) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, from, [to], Message(from, to, null), IPAddress.Parse("127.0.0.99"));
        Assert.True(data!.IsPositive, data.ToString());
        await mx.WaitForMessagesAsync(2, TimeSpan.FromSeconds(30));
    }
}
