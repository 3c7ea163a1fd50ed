using Gateway.Api.V1;
using OnboardingRound = Gateway.ControlPlane.Onboarding.OnboardingRound;
using Gateway.Core.Storage;
using Gateway.Testing;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace ControlPlane.Tests;

/// <summary>
/// The background job (requirements §3: unverified domains are re-checked in the background) with two ControlPlanes
/// running it against one Redis, short intervals, and DNS from the real DNS test server.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class BackgroundRecheckTests(OnboardingFixture fx) : IClassFixture<OnboardingFixture>, IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
    private DomainService.DomainServiceClient _client = null!;

    public async Task InitializeAsync()
    {
        string[] background =
        [
            "--Gateway:Onboarding:BackgroundChecks", "true",
            "--Gateway:Onboarding:RoundInterval", "00:00:00.200",
            "--Gateway:Onboarding:UnverifiedRecheckInterval", "00:00:00.300",
        ];
        var first = await fx.StartControlPlaneAsync(background);
        await fx.StartControlPlaneAsync(background);
        (_, _, _client) = await fx.NewTenantAsync(first);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private async Task<Domain> GetAsync(string name) => await _client.GetDomainAsync(new GetDomainRequest { Name = name });

    [Fact]
    public async Task Background_TxtPublishedLater_VerifiedWithoutACallOnceAndStatusFollows()
    {
        var name = OnboardingFixture.NewDomainName();
        var created = await _client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        fx.Dns.AddA(name, "192.0.2.80");

        // First the job records the domain's health: not verified.
        await Eventually.WaitAsync(async () => (await GetAsync(name)).Health is not null, Wait, "first background check");
        Assert.Contains((await GetAsync(name)).Health.Findings, f => f.Code == "DOMAIN_NOT_VERIFIED");

        fx.Dns.AddTxt(name, created.Verification.TxtRecord);
        await Eventually.WaitAsync(async () => (await GetAsync(name)).Verification.Verified, Wait, "background verification");
        await Eventually.WaitAsync(async () => (await GetAsync(name)).Health is { Stale: false, Status: DomainStatus.Completed }, Wait,
            "health refreshed after verification");

        var domain = await GetAsync(name);
        Assert.Equal(VerificationMethod.Txt, domain.Verification.Method);
        Assert.Empty(domain.Health.Findings);

        // Two ControlPlanes ran the job; the verification was saved and announced once.
        var changes = await fx.RedisClient.GetDatabase().StreamRangeAsync(RedisKeys.ConfigChanges);
        Assert.Single(changes, e => e["d"] == name && e["op"] == ConfigOps.Verify);
    }

    [Fact]
    public async Task Background_DomainChanged_StaleHealthRefreshedAtNextRound()
    {
        var name = OnboardingFixture.NewDomainName();
        var created = await _client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        fx.Dns.AddTxt(name, created.Verification.TxtRecord).AddA(name, "192.0.2.81");
        await Eventually.WaitAsync(async () => (await GetAsync(name)).Health is { Stale: false, Status: DomainStatus.Completed }, Wait, "first check");

        await _client.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new OutboundSettings { Enabled = true } },
            UpdateMask = new FieldMask { Paths = { "outbound.enabled" } },
        });

        await Eventually.WaitAsync(async () => (await GetAsync(name)).Health is { Stale: false, Status: DomainStatus.ConfigurationRequired }, Wait,
            "health of the changed domain");
        var codes = (await GetAsync(name)).Health.Findings.Select(f => f.Code).ToList();
        Assert.Contains("OUTBOUND_NO_SOURCE", codes);
        Assert.Contains("SPF_MISSING", codes);
    }
}

/// <summary>Rounds of the background job run by hand from two ControlPlanes at once.</summary>
[Trait("Kind", "Integration")]
public sealed class OnboardingRoundTests(OnboardingFixture fx) : IClassFixture<OnboardingFixture>
{
    [Fact]
    public async Task RunOnce_TwoControlPlanesAtOnce_EachDueDomainCheckedExactlyOnce()
    {
        await fx.StartControlPlaneAsync();
        var (_, _, client) = await fx.NewTenantAsync();
        var names = Enumerable.Range(0, 8).Select(_ => OnboardingFixture.NewDomainName()).ToList();
        foreach (var n in names)
        {
            await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = n } });
            fx.Dns.AddA(n, "192.0.2.82");
        }

        var a = fx.ServicesOf(0).GetRequiredService<OnboardingRound>();
        var b = fx.ServicesOf(1).GetRequiredService<OnboardingRound>();
        var counts = await Task.WhenAll(a.RunOnceAsync(CancellationToken.None), b.RunOnceAsync(CancellationToken.None));

        Assert.Equal(names.Count, counts.Sum());
        var listed = (await client.ListDomainsAsync(new ListDomainsRequest())).Domains;
        Assert.All(listed, d => Assert.Equal(DomainStatus.ConfigurationRequired, d.Health.Status));

        // Nothing is due any more until an interval passes or a domain changes.
        var again = await Task.WhenAll(a.RunOnceAsync(CancellationToken.None), b.RunOnceAsync(CancellationToken.None));
        Assert.Equal(0, again.Sum());
    }
}
