using System.Net;
using Gateway.Api.V1;

namespace ControlPlane.Tests;

/// <summary>TestConnection (requirements §3.12) against real loopback sockets, host names through the DNS test server.</summary>
[Trait("Kind", "Integration")]
public sealed class TestConnectionTests(OnboardingFixture fx) : IClassFixture<OnboardingFixture>
{
    private static int PortOf(System.Net.Sockets.TcpListener l) => ((IPEndPoint)l.LocalEndpoint).Port;

    [Fact]
    public async Task TestConnection_OneOfTwoSavedHostsDown_FailsNamingItWithPerHostDetail()
    {
        var (_, _, client) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        using var up = OnboardingFixture.StartListener();
        var downPort = OnboardingFixture.ClosedPort();
        var domain = new Domain { Name = name, InboundEnabled = true };
        domain.InboundServers.Add(new InboundServer { Recipient = "*@" + name, Host = "127.0.0.1", Port = PortOf(up), Preference = 10 });
        domain.InboundServers.Add(new InboundServer { Recipient = "*@" + name, Host = "127.0.0.1", Port = downPort, Preference = 20 });
        await client.CreateDomainAsync(new CreateDomainRequest { Domain = domain });

        var response = await client.TestConnectionAsync(new TestConnectionRequest { Name = name });

        Assert.False(response.Success);
        Assert.Equal($"Cannot connect to the inbound server. Failed: 127.0.0.1:{downPort} (connection refused).", response.Message);
        Assert.Equal(2, response.Results.Count);
        var ok = Assert.Single(response.Results, r => r.Port == PortOf(up));
        Assert.True(ok.Connected);
        Assert.Equal(("127.0.0.1", "127.0.0.1", string.Empty), (ok.Host, ok.Address, ok.Error));
        Assert.InRange(ok.ElapsedMs, 0, 60_000);
        var down = Assert.Single(response.Results, r => r.Port == downPort);
        Assert.False(down.Connected);
        Assert.Equal("connection refused", down.Error);
        Assert.InRange(down.ElapsedMs, 0, 60_000);
    }

    [Fact]
    public async Task TestConnection_UnsavedRowsWithHostName_TestsThoseAndConnectsSuccessfully()
    {
        var (_, _, client) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        using var first = OnboardingFixture.StartListener();
        using var second = OnboardingFixture.StartListener();
        var savedDown = OnboardingFixture.ClosedPort();
        var domain = new Domain { Name = name, InboundEnabled = true };
        domain.InboundServers.Add(new InboundServer { Recipient = "*@" + name, Host = "127.0.0.1", Port = savedDown });
        await client.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        var host = "mail." + name;
        fx.Dns.AddA(host, "127.0.0.1");

        // The saved row is down; the rows in the request (not saved) are what is tested.
        var request = new TestConnectionRequest { Name = name };
        request.InboundServers.Add(new InboundServer { Recipient = "*@" + name, Host = host.ToUpperInvariant(), Port = PortOf(first) });
        request.InboundServers.Add(new InboundServer { Recipient = "john@" + name, Host = "127.0.0.1", Port = PortOf(second) });
        var response = await client.TestConnectionAsync(request);

        Assert.True(response.Success, response.Message);
        Assert.Equal("Connected successfully.", response.Message);
        var named = Assert.Single(response.Results, r => r.Host == host);
        Assert.Equal(("127.0.0.1", true), (named.Address, named.Connected));
        Assert.All(response.Results, r => Assert.True(r.Connected));
        Assert.Equal(savedDown, Assert.Single((await client.GetDomainAsync(new GetDomainRequest { Name = name })).InboundServers).Port);
    }

    [Fact]
    public async Task TestConnection_HostNameWithoutAddress_FailsWithReason()
    {
        var (_, _, client) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        var request = new TestConnectionRequest { Name = name };
        request.InboundServers.Add(new InboundServer { Recipient = "*@" + name, Host = "nowhere." + name });

        var response = await client.TestConnectionAsync(request);

        Assert.False(response.Success);
        var result = Assert.Single(response.Results);
        Assert.Equal((25, false, string.Empty), (result.Port, result.Connected, result.Address));
        Assert.Equal($"nowhere.{name} has no A or AAAA record", result.Error);
        Assert.Contains($"nowhere.{name}:25", response.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TestConnection_InvalidRow_InvalidArgumentNamingTheField()
    {
        var (_, _, client) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        var request = new TestConnectionRequest { Name = name };
        request.InboundServers.Add(new InboundServer { Recipient = "*@" + name, Host = "127.0.0.1", Port = 25 });
        request.InboundServers.Add(new InboundServer { Recipient = "*@" + name, Host = "127.0.0.1", Port = 70000 });
        request.InboundServers.Add(new InboundServer { Recipient = "*@other.example", Host = "mail.example.net:25" });

        await RpcAssert.InvalidFieldAsync("inbound_servers[1].port", client.TestConnectionAsync(request));
        await RpcAssert.InvalidFieldAsync("inbound_servers[2].host", client.TestConnectionAsync(request));
        await RpcAssert.InvalidFieldAsync("inbound_servers[2].recipient", client.TestConnectionAsync(request));
    }

    [Fact]
    public async Task TestConnection_NothingSaved_FailsSayingSo()
    {
        var (_, _, client) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });

        var response = await client.TestConnectionAsync(new TestConnectionRequest { Name = name });

        Assert.False(response.Success);
        Assert.Equal("Cannot connect to the inbound server. No inbound server is configured.", response.Message);
        Assert.Empty(response.Results);
    }

    [Fact]
    public async Task Cli_TestConnection_ExitsRefusedWhenTheTestFails()
    {
        var (_, key, client) = await fx.NewTenantAsync();
        var name = OnboardingFixture.NewDomainName();
        await client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        using var up = OnboardingFixture.StartListener();
        var env = new Dictionary<string, string> { ["GATEWAY_ENDPOINT"] = "http://" + fx.Channel.Target, ["GATEWAY_KEY"] = key };

        var ok = await Gateway.Testing.GatewayCtl.RunAsync(env, ["domains", "test-connection", name, "--server", $"*@{name}=127.0.0.1:{PortOf(up)}"]);
        Assert.True(ok.ExitCode == 0, ok.ToString());
        Assert.Contains("Connected successfully.", ok.Out, StringComparison.Ordinal);

        // An operator's script tests before saving (docs/operations.md): a failed test must not exit 0.
        var down = await Gateway.Testing.GatewayCtl.RunAsync(env, ["domains", "test-connection", name, "--server", $"*@{name}=127.0.0.1:{OnboardingFixture.ClosedPort()}"]);
        Assert.True(down.ExitCode == 5, down.ToString());
        Assert.Contains("connection refused", down.Out, StringComparison.Ordinal);
        Assert.Contains("the connection test failed", down.Err, StringComparison.Ordinal);
    }
}
