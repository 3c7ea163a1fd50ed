using Gateway.Api.V1;
using Grpc.Core;

namespace ControlPlane.Tests;

/// <summary>requirements §2: operator key, tenant keys stored hashed, UNAUTHENTICATED / PERMISSION_DENIED.</summary>
[Trait("Kind", "Integration")]
public sealed class TenantAndAuthTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    [Fact]
    public async Task AnyRpc_WithoutKey_Unauthenticated()
    {
        var anonymousTenants = new TenantService.TenantServiceClient(fx.WithKey(null));
        var anonymousDomains = new DomainService.DomainServiceClient(fx.WithKey(null));
        await RpcAssert.ThrowsAsync(StatusCode.Unauthenticated, anonymousTenants.ListTenantsAsync(new ListTenantsRequest()));
        await RpcAssert.ThrowsAsync(StatusCode.Unauthenticated, anonymousDomains.ListDomainsAsync(new ListDomainsRequest()));
        await RpcAssert.ThrowsAsync(StatusCode.Unauthenticated, anonymousDomains.GetDomainAsync(new GetDomainRequest { Name = "example.com" }));
    }

    [Theory]
    [InlineData("wrong")]
    [InlineData("gwk_000000000000_0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("gwk_short")]
    [InlineData("")]
    public async Task AnyRpc_InvalidKey_Unauthenticated(string key)
    {
        await RpcAssert.ThrowsAsync(StatusCode.Unauthenticated, new TenantService.TenantServiceClient(fx.WithKey(key)).ListTenantsAsync(new ListTenantsRequest()));
        await RpcAssert.ThrowsAsync(StatusCode.Unauthenticated, new DomainService.DomainServiceClient(fx.WithKey(key)).ListDomainsAsync(new ListDomainsRequest()));
    }

    [Fact]
    public async Task TenantService_WithTenantKey_PermissionDenied()
    {
        var (_, key, _) = await fx.NewTenantAsync();
        var asTenant = new TenantService.TenantServiceClient(fx.WithKey(key));
        await RpcAssert.ThrowsAsync(StatusCode.PermissionDenied, asTenant.ListTenantsAsync(new ListTenantsRequest()));
        await RpcAssert.ThrowsAsync(StatusCode.PermissionDenied, asTenant.CreateTenantAsync(new CreateTenantRequest { CompanyId = "sneaky" }));
    }

    [Fact]
    public async Task DomainService_OperatorKey_NeedsCompanyIdHeader()
    {
        var (company, _, _) = await fx.NewTenantAsync();
        var noHeader = new DomainService.DomainServiceClient(fx.WithKey(ControlPlaneFixture.OperatorKey));
        await RpcAssert.ThrowsAsync(StatusCode.PermissionDenied, noHeader.ListDomainsAsync(new ListDomainsRequest()));

        var actingForTenant = new DomainService.DomainServiceClient(fx.WithKey(ControlPlaneFixture.OperatorKey, company));
        var created = await actingForTenant.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName() } });
        Assert.Equal(company, created.CompanyId);
    }

    [Fact]
    public async Task CreateTenant_Twice_AlreadyExists_AndInvalidIdsRefused()
    {
        var id = "acme-" + Guid.NewGuid().ToString("N")[..8];
        var tenant = await fx.Operator.CreateTenantAsync(new CreateTenantRequest { CompanyId = id.ToUpperInvariant(), DisplayName = "ACME Corp" });
        Assert.Equal(id, tenant.CompanyId);
        Assert.Equal($"{id}.in.gw.test.example", tenant.InboundMxHost);
        await RpcAssert.ThrowsAsync(StatusCode.AlreadyExists, fx.Operator.CreateTenantAsync(new CreateTenantRequest { CompanyId = id }));

        foreach (var bad in new[] { "", "-acme", "acme-", "ac_me", "ac.me", new string('a', 64) })
        {
            await RpcAssert.InvalidFieldAsync("company_id", fx.Operator.CreateTenantAsync(new CreateTenantRequest { CompanyId = bad }));
        }
    }

    [Fact]
    public async Task ListTenants_PagesThroughEveryTenant()
    {
        var prefix = "pg" + Guid.NewGuid().ToString("N")[..6];
        for (var i = 0; i < 5; i++)
        {
            await fx.Operator.CreateTenantAsync(new CreateTenantRequest { CompanyId = $"{prefix}-{i}" });
        }

        var seen = new List<string>();
        var token = string.Empty;
        do
        {
            var page = await fx.Operator.ListTenantsAsync(new ListTenantsRequest { PageSize = 2, PageToken = token });
            Assert.True(page.Tenants.Count <= 2);
            seen.AddRange(page.Tenants.Select(t => t.CompanyId));
            token = page.NextPageToken;
        }
        while (token.Length > 0);

        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"{prefix}-{i}"), seen.Where(s => s.StartsWith(prefix, StringComparison.Ordinal)));
        Assert.Equal(seen.Order(StringComparer.Ordinal), seen);
        await RpcAssert.InvalidFieldAsync("page_token", fx.Operator.ListTenantsAsync(new ListTenantsRequest { PageToken = "garbage" }));
        await RpcAssert.InvalidFieldAsync("page_size", fx.Operator.ListTenantsAsync(new ListTenantsRequest { PageSize = -1 }));
    }

    [Fact]
    public async Task ApiKey_StoredHashed_WorksUntilRevoked()
    {
        var (company, key, domains) = await fx.NewTenantAsync();
        Assert.StartsWith("gwk_", key, StringComparison.Ordinal);
        await domains.ListDomainsAsync(new ListDomainsRequest());

        // Only the hash is in Redis: the key text appears nowhere in the store.
        var server = fx.RedisClient.GetServer(fx.RedisClient.GetEndPoints()[0]);
        await foreach (var k in server.KeysAsync(pattern: "gw:*"))
        {
            var type = await fx.RedisClient.GetDatabase().KeyTypeAsync(k);
            if (type == StackExchange.Redis.RedisType.Hash)
            {
                foreach (var entry in await fx.RedisClient.GetDatabase().HashGetAllAsync(k))
                {
                    Assert.DoesNotContain(key, entry.Value.ToString(), StringComparison.Ordinal);
                }
            }
        }

        var keys = await fx.Operator.ListApiKeysAsync(new ListApiKeysRequest { CompanyId = company });
        var keyId = Assert.Single(keys.ApiKeys).KeyId;
        Assert.Contains(keyId, key, StringComparison.Ordinal);

        await fx.Operator.RevokeApiKeyAsync(new RevokeApiKeyRequest { KeyId = keyId });
        await RpcAssert.ThrowsAsync(StatusCode.Unauthenticated, domains.ListDomainsAsync(new ListDomainsRequest()));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, fx.Operator.RevokeApiKeyAsync(new RevokeApiKeyRequest { KeyId = keyId }));
    }

    [Fact]
    public async Task CreateApiKey_UnknownTenant_NotFound()
    {
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, fx.Operator.CreateApiKeyAsync(new CreateApiKeyRequest { CompanyId = "nobody-" + Guid.NewGuid().ToString("N")[..6] }));
    }

    [Fact]
    public async Task DeleteTenant_WithDomains_RefusedUnlessForced_KeysRevoked()
    {
        var (company, key, domains) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });

        await RpcAssert.ThrowsAsync(StatusCode.FailedPrecondition, fx.Operator.DeleteTenantAsync(new DeleteTenantRequest { CompanyId = company }));
        await fx.Operator.DeleteTenantAsync(new DeleteTenantRequest { CompanyId = company, Force = true });

        await RpcAssert.ThrowsAsync(StatusCode.Unauthenticated, domains.ListDomainsAsync(new ListDomainsRequest()));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, fx.Operator.GetTenantAsync(new GetTenantRequest { CompanyId = company }));

        // The domain is free again for another tenant.
        var (_, _, other) = await fx.NewTenantAsync();
        await other.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
    }
}
