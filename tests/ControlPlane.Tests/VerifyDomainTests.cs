using Gateway.Api.V1;
using Gateway.Core;
using Gateway.Core.Storage;
using Gateway.Core.Snapshot;
using Gateway.Testing;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace ControlPlane.Tests;

/// <summary>VerifyDomain over gRPC with DNS answered by the real DNS test server (requirements §3.2).</summary>
[Trait("Kind", "Integration")]
public sealed class VerifyDomainTests(OnboardingFixture fx) : IClassFixture<OnboardingFixture>
{
    [Fact]
    public async Task VerifyDomain_TxtRecordPublished_VerifiedByTxtAnnouncedAndSeenBySnapshot()
    {
        var (_, _, client) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        var created = await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });

        // A snapshot like the PolicyDaemon's, following the change feed.
        var (snapshot, service) = await StartSnapshotAsync();
        await using var _ = service;
        await Eventually.WaitAsync(() => snapshot.Find(name) is not null, TimeSpan.FromSeconds(5), "snapshot loads the domain");
        Assert.False(snapshot.Find(name)!.Verified);

        fx.Dns.AddTxt(name, "v=spf1 -all").AddTxt(name, "google-site-verification=abc").AddTxt(name, created.Verification.TxtRecord);
        var response = await client.VerifyDomainAsync(new VerifyDomainRequest { Name = name });

        Assert.True(response.Verified, response.Message);
        Assert.Equal(VerificationMethod.Txt, response.Domain.Verification.Method);
        Assert.NotNull(response.Domain.Verification.VerifyTime);
        Assert.Contains(created.Verification.TxtRecord, response.Message, StringComparison.Ordinal);
        Assert.NotEqual(created.Etag, response.Domain.Etag);
        var stored = await client.GetDomainAsync(new GetDomainRequest { Name = name });
        Assert.True(stored.Verification.Verified);

        // Announced as a "verify" change, so every program's snapshot sees it (outbound relay needs it).
        var changes = await fx.RedisClient.GetDatabase().StreamRangeAsync(RedisKeys.ConfigChanges);
        Assert.Single(changes, e => e["d"] == name && e["op"] == ConfigOps.Verify);
        await Eventually.WaitAsync(() => snapshot.Find(name)!.Verified, TimeSpan.FromSeconds(1), "snapshot sees verified within 1 second");
    }

    [Fact]
    public async Task VerifyDomain_MxPointsAtGatewayHost_VerifiedByMx()
    {
        var (companyId, _, client) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        fx.Dns.AddMx(name, 5, "mail.elsewhere.example").AddMx(name, 10, OnboardingFixture.MxHostOf(companyId).ToUpperInvariant() + ".");

        var response = await client.VerifyDomainAsync(new VerifyDomainRequest { Name = name });

        Assert.True(response.Verified, response.Message);
        Assert.Equal(VerificationMethod.Mx, response.Domain.Verification.Method);
        Assert.Contains(OnboardingFixture.MxHostOf(companyId), response.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task VerifyDomain_NothingPublished_NotVerifiedAndMessageGivesTxtRecordAndMxHost()
    {
        var (companyId, _, client) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        var created = await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });

        // A TXT record with another token, and an MX elsewhere, prove nothing.
        fx.Dns.AddTxt(name, "tmes=00000000000000000000000000000000").AddMx(name, 10, "mx.elsewhere.example");
        var response = await client.VerifyDomainAsync(new VerifyDomainRequest { Name = name });

        Assert.False(response.Verified);
        Assert.False(response.Domain.Verification.Verified);
        Assert.Equal(created.Etag, response.Domain.Etag);
        Assert.Contains($"\"tmes={created.Verification.Token}\"", response.Message, StringComparison.Ordinal);
        Assert.Contains(OnboardingFixture.MxHostOf(companyId), response.Message, StringComparison.Ordinal);
        Assert.Contains($"TXT record at {name}", response.Message, StringComparison.Ordinal);

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });
        var finding = Assert.Single(check.Findings, f => f.Code == "DOMAIN_NOT_VERIFIED");
        Assert.Equal(Severity.Error, finding.Severity);
        Assert.Equal((name, "TXT", created.Verification.TxtRecord), (finding.Record.Name, finding.Record.Type, finding.Record.Value));
        Assert.Equal(DomainStatus.ConfigurationRequired, check.Status);
    }

    [Fact]
    public async Task VerifyDomain_TxtRemovedAfterVerification_StaysVerified()
    {
        var (_, _, client) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        var created = await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        fx.Dns.AddTxt(name, created.Verification.TxtRecord);
        var first = await client.VerifyDomainAsync(new VerifyDomainRequest { Name = name });
        Assert.True(first.Verified);

        fx.Dns.Remove(name);
        var again = await client.VerifyDomainAsync(new VerifyDomainRequest { Name = name });
        Assert.True(again.Verified);
        Assert.Contains("already verified", again.Message, StringComparison.Ordinal);
        Assert.Equal(first.Domain.Etag, again.Domain.Etag);

        var check = await client.CheckDomainAsync(new CheckDomainRequest { Name = name });
        Assert.DoesNotContain(check.Findings, f => f.Code == "DOMAIN_NOT_VERIFIED");
        Assert.True((await client.GetDomainAsync(new GetDomainRequest { Name = name })).Verification.Verified);
    }

    [Fact]
    public async Task VerifyDomain_DnsServerFailing_NotVerifiedAndSaysDnsFailed()
    {
        var (_, _, client) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        fx.Dns.Fail(name);

        var response = await client.VerifyDomainAsync(new VerifyDomainRequest { Name = name });

        Assert.False(response.Verified);
        Assert.Contains("could not read DNS", response.Message, StringComparison.Ordinal);
        Assert.Contains("ServerFailure", response.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task VerifyDomain_OtherTenantsDomain_NotFound()
    {
        var (_, _, owner) = await fx.NewTenantAsync();
        var (_, _, other) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        var created = await owner.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        fx.Dns.AddTxt(name, created.Verification.TxtRecord);

        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.VerifyDomainAsync(new VerifyDomainRequest { Name = name }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.CheckDomainAsync(new CheckDomainRequest { Name = name }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.TestConnectionAsync(new TestConnectionRequest { Name = name }));
        Assert.False((await owner.GetDomainAsync(new GetDomainRequest { Name = name })).Verification.Verified);
    }

    private async Task<(ConfigSnapshot Snapshot, AsyncStop Service)> StartSnapshotAsync()
    {
        var options = new GatewayOptions { Redis = fx.Redis.ConnectionString };
        var feed = new ConfigChangeFeed(fx.RedisClient, options);
        var snapshot = new ConfigSnapshot();
        var service = new ConfigSnapshotService(snapshot, new DomainStore(fx.RedisClient, feed), feed, fx.RedisClient, options, TimeProvider.System,
            NullLogger<ConfigSnapshotService>.Instance);
        await service.StartAsync(CancellationToken.None);
        return (snapshot, new AsyncStop(service));
    }

    /// <summary>Stops the snapshot service at the end of a test.</summary>
    private sealed class AsyncStop(ConfigSnapshotService service) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await service.StopAsync(CancellationToken.None);
            service.Dispose();
        }
    }
}
