using Gateway.Api.V1;
using Gateway.Core.Storage;
using Grpc.Core;

namespace ControlPlane.Tests;

/// <summary>
/// Claim by proof (docs/requirements.md §3, security review M2) over gRPC with DNS answered by the real DNS test
/// server: an unverified registration does not block the owner who proves the domain with its own claim record.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class ClaimByProofTests(OnboardingFixture fx) : IClassFixture<OnboardingFixture>
{
    [Fact]
    public async Task CreateDomain_UnverifiedSquatter_OwnerPublishesClaimTxt_DomainMovesVerified_SquatterLosesIt()
    {
        var (_, _, squatter) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        var squatted = new Domain { Name = name, InboundEnabled = true };
        squatted.InboundServers.Add(new InboundServer { Recipient = "*@" + name, Host = "192.0.2.66" });
        await squatter.CreateDomainAsync(new CreateDomainRequest { Domain = squatted });

        // The real owner is told the domain is taken, and what to publish to take it over.
        var (owner, _, client) = await fx.NewTenantAsync();
        var refused = await RpcAssert.ThrowsAsync(StatusCode.AlreadyExists, client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } }));
        Assert.Equal("Cannot add managed domain: this domain is already managed by the gateway.", refused.Status.Detail);
        var record = Claim(refused);
        Assert.Matches("^tmes=[0-9a-f]{32}$", record);
        Assert.Equal(OnboardingFixture.MxHostOf(owner), refused.GetRpcStatus()!.GetDetail<Google.Rpc.ErrorInfo>()!.Metadata["claim_mx_host"]);

        // Publishing someone else's claim record does nothing: the token is the owner's own.
        var (_, _, third) = await fx.NewTenantAsync();
        var thirdRefusal = await RpcAssert.ThrowsAsync(StatusCode.AlreadyExists, third.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } }));
        Assert.NotEqual(record, Claim(thirdRefusal));

        fx.Dns.AddTxt(name, record);
        await RpcAssert.ThrowsAsync(StatusCode.AlreadyExists, third.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } }));
        var taken = await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });

        Assert.Equal(owner, taken.CompanyId);
        Assert.True(taken.Verification.Verified);
        Assert.Equal(VerificationMethod.Txt, taken.Verification.Method);
        Assert.Equal(record, taken.Verification.TxtRecord);
        Assert.Empty(taken.InboundServers); // nothing of the squatter's settings moves along
        Assert.Empty((await squatter.ListDomainsAsync(new ListDomainsRequest())).Domains);
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, squatter.GetDomainAsync(new GetDomainRequest { Name = name }));
        Assert.Equal(owner, (string?)await fx.RedisClient.GetDatabase().HashGetAsync(RedisKeys.DomainRegistry, name));
    }

    [Fact]
    public async Task CreateDomain_VerifiedOwner_NeverDisplacedEvenByAnMxProof()
    {
        var (_, _, first) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        var created = await first.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        fx.Dns.AddTxt(name, created.Verification.TxtRecord);
        Assert.True((await first.VerifyDomainAsync(new VerifyDomainRequest { Name = name })).Verified);

        var (other, _, second) = await fx.NewTenantAsync();
        fx.Dns.AddMx(name, 10, OnboardingFixture.MxHostOf(other));
        var refused = await RpcAssert.ThrowsAsync(StatusCode.AlreadyExists, second.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } }));
        Assert.Equal("Cannot add managed domain: this domain is already managed by the gateway.", refused.Status.Detail);
        Assert.Null(refused.GetRpcStatus()?.GetDetail<Google.Rpc.ErrorInfo>());
        Assert.True((await first.GetDomainAsync(new GetDomainRequest { Name = name })).Verification.Verified);
    }

    [Fact]
    public async Task CreateDomain_UnverifiedSquatter_OwnerMxAtItsHost_TakesOver()
    {
        var (_, _, squatter) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        await squatter.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        var (owner, _, client) = await fx.NewTenantAsync();
        fx.Dns.AddMx(name, 10, OnboardingFixture.MxHostOf(owner));
        var taken = await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        Assert.Equal(owner, taken.CompanyId);
        Assert.Equal(VerificationMethod.Mx, taken.Verification.Method);
    }

    private static string Claim(RpcException e)
    {
        var info = e.GetRpcStatus()?.GetDetail<Google.Rpc.ErrorInfo>();
        Assert.NotNull(info);
        Assert.Equal("UNVERIFIED_REGISTRATION", info!.Reason);
        return info.Metadata["claim_txt_record"];
    }
}
