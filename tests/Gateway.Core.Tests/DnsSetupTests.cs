using DnsClient;
using Gateway.Core.Dns;
using Gateway.Testing;

namespace Gateway.Core.Tests;

/// <summary>The resolver setup against the in-process DNS test server, over the wire.</summary>
[Trait("Kind", "Integration")]
public sealed class DnsSetupTests
{
    [Theory]
    [InlineData("192.0.2.53", "192.0.2.53:53")]
    [InlineData("127.0.0.1:5353", "127.0.0.1:5353")]
    [InlineData("[::1]:5353", "[::1]:5353")]
    [InlineData("::1", "[::1]:53")]
    public void TryParseServer_Accepts(string text, string expected)
    {
        Assert.True(DnsSetup.TryParseServer(text, out var ep));
        Assert.Equal(expected, ep.ToString());
    }

    [Theory]
    [InlineData("dns.example")]
    [InlineData("127.0.0.1:")]
    [InlineData("")]
    public void TryParseServer_Refuses(string text) => Assert.False(DnsSetup.TryParseServer(text, out _));

    [Fact]
    public async Task Client_AsksConfiguredServer_TxtMxNxdomainAndTcp()
    {
        await using var dns = DnsTestServer.Start();
        dns.AddTxt("example.test", "v=spf1 -all").AddTxt("example.test", "tmes=0123")
           .AddMx("example.test", 10, "mx1.example.test").AddA("mx1.example.test", "192.0.2.10")
           .AddTxtParts("long.example.test", [new string('a', 200), new string('b', 200)]);
        var client = DnsSetup.CreateClient(new DnsOptions { Servers = [dns.Address], UseCache = false });

        var txt = await client.QueryAsync("example.test", QueryType.TXT);
        Assert.Equal(["tmes=0123", "v=spf1 -all"], txt.Answers.TxtRecords().Select(r => string.Concat(r.Text)).Order());
        var mx = await client.QueryAsync("example.test", QueryType.MX);
        Assert.Equal("mx1.example.test.", Assert.Single(mx.Answers.MxRecords()).Exchange.Value);
        var missing = await client.QueryAsync("nothing.example.test", QueryType.A);
        Assert.Equal(DnsHeaderResponseCode.NotExistentDomain, missing.Header.ResponseCode);
        var nodata = await client.QueryAsync("mx1.example.test", QueryType.TXT);
        Assert.False(nodata.HasError);
        Assert.Empty(nodata.Answers);

        var tcp = new LookupClient(new LookupClientOptions(dns.EndPoint) { UseTcpOnly = true, UseCache = false });
        var longTxt = await tcp.QueryAsync("long.example.test", QueryType.TXT);
        Assert.Equal(400, string.Concat(Assert.Single(longTxt.Answers.TxtRecords()).Text).Length);
    }
}
