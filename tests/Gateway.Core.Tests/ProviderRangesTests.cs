using System.Net;
using System.Text.Json;
using Gateway.Core.Dns;
using Gateway.Core.Relay;
using Gateway.Core.Storage;
using Gateway.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Gateway.Core.Domains;

namespace Gateway.Core.Tests;

/// <summary>Reading providers' SPF records (pure parser, then over real DNS) and sharing the result through Redis.</summary>
[Trait("Kind", "Integration")]
public sealed class ProviderRangesTests
{
    [Fact]
    public void Parse_CollectsPassAddressTermsIncludesAndRedirect()
    {
        var t = SpfRanges.Parse("v=spf1 ip4:40.92.0.0/15 +ip4:192.0.2.1 -ip4:10.0.0.0/8 ~ip6:2001:db8::/32 ip6:2a01:111:f400::/48 include:a.example ?include:b.example a mx redirect=c.example");

        Assert.Equal(["40.92.0.0/15", "192.0.2.1/32", "2a01:111:f400::/48"], t.Networks.Select(n => n.ToString()));
        Assert.Equal(["a.example"], t.Includes);
        Assert.Equal("c.example", t.Redirect);
        Assert.False(t.HasAll);
        Assert.True(SpfRanges.Parse("V=SPF1 -all").HasAll);
    }

    [Theory]
    [InlineData("v=spf1 ip4:300.1.1.1")]
    [InlineData("v=spf1 ip4:2001:db8::1")]
    [InlineData("v=spf1 ip6:192.0.2.1")]
    [InlineData("v=spf10 ip4:192.0.2.1")]
    [InlineData("spf2.0/pra ip4:192.0.2.1")]
    public void Parse_Malformed_FormatException(string record)
    {
        Assert.Throws<FormatException>(() => SpfRanges.Parse(record));
    }

    private static (DnsTestServer Dns, DnsClient.ILookupClient Client) Dns()
    {
        var dns = DnsTestServer.Start();
        return (dns, DnsSetup.CreateClient(new DnsOptions { Servers = [dns.Address], UseCache = false, Timeout = TimeSpan.FromSeconds(2), Retries = 0 }));
    }

    [Fact]
    public async Task FetchAsync_FollowsIncludesAndRedirect_SplitTxtStringsJoined()
    {
        var (dns, client) = Dns();
        await using var _ = dns;
        dns.AddTxt("_spf.provider.test", "v=spf1 include:_nb1.provider.test include:_nb2.provider.test ~all")
            .AddTxtParts("_nb1.provider.test", ["v=spf1 ip4:209.85.128.0/17 ip4:74.1", "25.0.0/16 ~all"])
            .AddTxt("_nb1.provider.test", "unrelated=text")
            .AddTxt("_nb2.provider.test", "v=spf1 ip6:2607:f8b0:4000::/36 redirect=_nb3.provider.test")
            .AddTxt("_nb3.provider.test", "v=spf1 ip4:35.191.0.0/16 -all");

        var networks = await SpfRanges.FetchAsync(client, "_spf.provider.test", CancellationToken.None);

        Assert.Equal(["209.85.128.0/17", "74.125.0.0/16", "2607:f8b0:4000::/36", "35.191.0.0/16"], networks.Select(n => n.ToString()));
    }

    [Fact]
    public async Task FetchAsync_MissingDuplicateOrTooManyLookups_Throws()
    {
        var (dns, client) = Dns();
        await using var _ = dns;
        dns.AddTxt("missing-include.test", "v=spf1 ip4:192.0.2.0/24 include:nowhere.test -all")
            .AddTxt("two.test", "v=spf1 ip4:192.0.2.0/24 -all")
            .AddTxt("two.test", "v=spf1 ip4:198.51.100.0/24 -all")
            .AddTxt("broken.test", "v=spf1 ip4:192.0.2.0/24 -all")
            .Fail("broken.test");
        for (var i = 0; i < 12; i++)
        {
            dns.AddTxt($"chain{i}.test", $"v=spf1 ip4:192.0.2.{i} include:chain{i + 1}.test -all");
        }

        dns.AddTxt("chain12.test", "v=spf1 -all");

        await Assert.ThrowsAsync<SpfLookupException>(() => SpfRanges.FetchAsync(client, "missing-include.test", CancellationToken.None));
        await Assert.ThrowsAsync<SpfLookupException>(() => SpfRanges.FetchAsync(client, "two.test", CancellationToken.None));
        await Assert.ThrowsAsync<SpfLookupException>(() => SpfRanges.FetchAsync(client, "broken.test", CancellationToken.None));
        var e = await Assert.ThrowsAsync<SpfLookupException>(() => SpfRanges.FetchAsync(client, "chain0.test", CancellationToken.None));
        Assert.Contains("10 DNS lookups", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Implausible_EmptyOrTooWide_Refused()
    {
        static IPNetwork N(string s) => IpRangeSet.TryParseNetwork(s, out var n) ? n : throw new FormatException(s);
        Assert.NotNull(ProviderRangesService.Implausible([]));
        Assert.NotNull(ProviderRangesService.Implausible([N("40.92.0.0/15"), N("0.0.0.0/0")]));
        Assert.NotNull(ProviderRangesService.Implausible([N("2000::/3")]));
        Assert.Null(ProviderRangesService.Implausible([N("40.92.0.0/15"), N("10.0.0.0/8"), N("2a01:111::/32")]));
    }

    [Fact]
    public async Task Service_RefreshesStaleRangesFromDns_SharesThemThroughRedis_OtherProgramUsesThem()
    {
        await using var redis = await RedisServer.StartAsync();
        using var mux = await redis.ConnectAsync();
        var (dns, client) = Dns();
        await using var _ = dns;
        dns.AddTxt("spf.o365.test", "v=spf1 ip4:40.92.0.0/15 ip6:2a01:111:f400::/48 include:spfd.o365.test -all")
            .AddTxt("spfd.o365.test", "v=spf1 ip4:51.4.72.0/24 -all")
            .AddTxt("spf.google.test", "v=spf1 ip4:209.85.128.0/17 ~all");
        var refresher = Service(mux, client, TimeSpan.FromDays(1));

        await refresher.SyncAsync(CancellationToken.None);

        Assert.True(refresher.Current.Office365.Contains(IPAddress.Parse("51.4.72.9")));
        Assert.Equal("dns:spf.o365.test", refresher.Current.Office365Info.Source);
        Assert.True(refresher.Current.GoogleWorkspace.Contains(IPAddress.Parse("209.85.129.1")));
        Assert.False(refresher.Current.GoogleWorkspace.Contains(IPAddress.Parse("74.125.1.1")));   // shipped, not in the refreshed list
        var stored = await mux.GetDatabase().HashGetAsync(RedisKeys.ProviderRanges, SendingProviders.Office365);
        Assert.Contains("51.4.72.0/24", stored.ToString(), StringComparison.Ordinal);

        // Another PolicyDaemon that never queries DNS picks the shared copy up; the fresh copy is not re-fetched.
        var other = Service(mux, client, refresh: TimeSpan.Zero);
        Assert.False(other.Current.Office365.Contains(IPAddress.Parse("51.4.72.9")));
        await other.SyncAsync(CancellationToken.None);
        Assert.True(other.Current.Office365.Contains(IPAddress.Parse("51.4.72.9")));
        var queries = dns.QueryCount("spf.o365.test");
        await refresher.SyncAsync(CancellationToken.None);
        Assert.Equal(queries, dns.QueryCount("spf.o365.test"));
    }

    [Fact]
    public async Task Service_DnsFailsOrLooksWrong_KeepsShippedRanges()
    {
        await using var redis = await RedisServer.StartAsync();
        using var mux = await redis.ConnectAsync();
        var (dns, client) = Dns();
        await using var _ = dns;
        dns.AddTxt("spf.o365.test", "v=spf1 ip4:0.0.0.0/1 -all").Fail("spf.google.test");
        var service = Service(mux, client, TimeSpan.FromDays(1));

        await service.SyncAsync(CancellationToken.None);

        Assert.Same(ProviderRanges.Shipped, service.Current);
        Assert.False(await mux.GetDatabase().KeyExistsAsync(RedisKeys.ProviderRanges));
    }

    [Fact]
    public async Task Service_InvalidSharedCopy_Ignored()
    {
        await using var redis = await RedisServer.StartAsync();
        using var mux = await redis.ConnectAsync();
        var (dns, client) = Dns();
        await using var _ = dns;
        var db = mux.GetDatabase();
        await db.HashSetAsync(RedisKeys.ProviderRanges, SendingProviders.Office365, "{not json");
        await db.HashSetAsync(RedisKeys.ProviderRanges, SendingProviders.GoogleWorkspace,
            JsonSerializer.Serialize(new ProviderRangeList("dns:x", DateTimeOffset.UtcNow, ["0.0.0.0/0"])));
        var service = Service(mux, client, TimeSpan.Zero);

        await service.SyncAsync(CancellationToken.None);

        Assert.Same(ProviderRanges.Shipped, service.Current);
    }

    private static ProviderRangesService Service(IConnectionMultiplexer mux, DnsClient.ILookupClient dns, TimeSpan refresh) =>
        new(mux, dns, Options.Create(new ProviderRangesOptions
        {
            RefreshInterval = refresh,
            Office365SpfDomain = "spf.o365.test",
            GoogleWorkspaceSpfDomain = "spf.google.test",
        }), TimeProvider.System, NullLogger<ProviderRangesService>.Instance);

    [Fact]
    public void Load_OperatorFile_UsedInsteadOfShipped_MissingProviderRefused()
    {
        const string Json = """
            {"providers": {
              "office365": {"source": "local copy", "as_of": "2026-01-02T00:00:00+00:00", "ranges": ["203.0.113.0/24"]},
              "google_workspace": {"source": "local copy", "as_of": "2026-01-02T00:00:00+00:00", "ranges": ["2001:db8::/32"]}}}
            """;
        using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(Json));
        var ranges = ProviderRanges.Load(stream);

        Assert.True(ranges.Office365.Contains(IPAddress.Parse("203.0.113.9")));
        Assert.False(ranges.Office365.Contains(IPAddress.Parse("40.92.0.1")));
        Assert.True(ranges.GoogleWorkspace.Contains(IPAddress.Parse("2001:db8::25")));
        Assert.Equal("local copy", ranges.Office365Info.Source);

        using var partial = new MemoryStream("""{"providers": {"office365": {"source": "x", "as_of": "2026-01-02T00:00:00+00:00", "ranges": []}}}"""u8.ToArray());
        Assert.Throws<FormatException>(() => ProviderRanges.Load(partial));
    }
}
