using Gateway.Core.Errors;
using Gateway.Core.Storage;
using Gateway.ControlPlane.Application;

namespace Gateway.Core.Tests;

[Trait("Kind", "Unit")]
public sealed class SmallPartsTests
{
    [Theory]
    [InlineData("acme", true)]
    [InlineData("ACME", true)]
    [InlineData("a", true)]
    [InlineData("acme-2", true)]
    [InlineData("", false)]
    [InlineData("-acme", false)]
    [InlineData("acme-", false)]
    [InlineData("ac me", false)]
    [InlineData("ac.me", false)]
    [InlineData("äcme", false)]
    public void CompanyId_IsADnsLabel(string input, bool valid) => Assert.Equal(valid, CompanyId.TryNormalize(input, out _, out _));

    [Fact]
    public void ApiKeys_TenantKeyCarriesItsId_HashMatchesOnlyTheKey()
    {
        var (id, key) = ApiKeys.NewTenantKey();
        Assert.Equal(id, ApiKeys.TenantKeyId(key));
        Assert.True(ApiKeys.Matches(key, ApiKeys.Hash(key)));
        Assert.False(ApiKeys.Matches(key + "x", ApiKeys.Hash(key)));
        Assert.Null(ApiKeys.TenantKeyId("gwk_" + id));
        Assert.Null(ApiKeys.TenantKeyId(key.ToUpperInvariant()));
        Assert.NotEqual(key, ApiKeys.NewTenantKey().Key);
    }

    [Fact]
    public void Paging_TokenRoundTrips_GarbageRefused()
    {
        var violations = new List<FieldViolation>();
        Assert.Equal("xn--bcher-kva.example", Paging.Decode(Paging.Encode("xn--bcher-kva.example"), violations));
        Assert.Null(Paging.Decode("", violations));
        Assert.Equal(50, Paging.ResolvePageSize(0, violations));
        Assert.Equal(1000, Paging.ResolvePageSize(5000, violations));
        Assert.Empty(violations);
        Paging.Decode("abc", violations);
        Paging.ResolvePageSize(-3, violations);
        Assert.Equal(["page_token", "page_size"], violations.Select(v => v.Field));
    }

    [Theory]
    [InlineData("12 update example.com", true, 12, "update", "example.com")]
    [InlineData("1 delete a.b", true, 1, "delete", "a.b")]
    [InlineData("x update example.com", false, 0, "", "")]
    [InlineData("12 update", false, 0, "", "")]
    [InlineData(null, false, 0, "", "")]
    public void ConfigChangeFeed_ParsesChannelMessages(string? message, bool ok, long version, string op, string domain)
    {
        Assert.Equal(ok, ConfigChangeFeed.TryParseMessage(message, out var change));
        if (ok)
        {
            Assert.Equal(new ConfigChange(version, op, domain), change);
        }
    }
}
