using Gateway.Api.V1;
using Grpc.Core;

namespace ControlPlane.Tests;

/// <summary>requirements §3 registration and field limits through the real API: each rule with the error it gets.</summary>
[Trait("Kind", "Integration")]
public sealed class DomainValidationTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    public static TheoryData<string, string> InvalidNames => new()
    {
        { "", "required" },
        { "   ", "required" },
        { "*.example.com", "wildcard" },
        { "*", "wildcard" },
        { "192.0.2.1", "IP address" },
        { "[192.0.2.1]", "IP address" },
        { "2001:db8::1", "IP address" },
        { "exa_mple.com", "not a valid domain name" },
        { "-bad.example.com", "hyphen" },
        { "bad-.example.com", "hyphen" },
        { "a..example.com", "empty label" },
        { new string('a', 64) + ".example.com", "1-63" },
        { string.Join('.', Enumerable.Repeat(new string('a', 60), 5)) + ".com", "longer than 253" },
        { "localhost", "single label" },
        { "john@example.com", "email address" },
        { "exa mple.com", "white space" },
        { "gmail.com", "public mailbox provider" },
        { "GMAIL.COM.", "public mailbox provider" },
        { "mail.yahoo.co.jp", "public mailbox provider" },
        { "outlook.com", "public mailbox provider" },
        { "icloud.com", "public mailbox provider" },
        { "in.gw.test.example", "gateway's own domain" },
    };

    [Theory]
    [MemberData(nameof(InvalidNames))]
    public async Task CreateDomain_InvalidName_InvalidArgumentOnName(string name, string expected)
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var v = await RpcAssert.InvalidFieldAsync("domain.name", domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } }));
        Assert.Contains(expected, v.Description, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("EXAMPLE-{0}.COM.", "example-{0}.com")]
    [InlineData("  Sales.Example-{0}.com  ", "sales.example-{0}.com")]
    [InlineData("Bücher-{0}.example", "xn--bcher-{0}-{1}.example")]
    public async Task CreateDomain_NameNeedsNormalising_StoredNormalised(string input, string expected)
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var unique = Guid.NewGuid().ToString("N")[..8];
        var name = string.Format(System.Globalization.CultureInfo.InvariantCulture, input, unique);
        var created = await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        if (expected.Contains("{1}", StringComparison.Ordinal))
        {
            // IDN: compare with the A-label ICU computes for the same Unicode name.
            var ascii = new System.Globalization.IdnMapping().GetAscii(name.Trim().ToLowerInvariant().TrimEnd('.'));
            Assert.Equal(ascii, created.Name);
            Assert.StartsWith("xn--", created.Name, StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal(string.Format(System.Globalization.CultureInfo.InvariantCulture, expected, unique), created.Name);
        }

        var fetched = await domains.GetDomainAsync(new GetDomainRequest { Name = name });
        Assert.Equal(created.Name, fetched.Name);
    }

    public static TheoryData<string, string, InboundServer> InvalidInboundRows => new()
    {
        { "domain.inbound_servers[0].recipient", "not in", new InboundServer { Recipient = "*@other.example", Host = "192.0.2.1" } },
        { "domain.inbound_servers[0].recipient", "must be", new InboundServer { Recipient = "john", Host = "192.0.2.1" } },
        { "domain.inbound_servers[0].recipient", "must be", new InboundServer { Recipient = "", Host = "192.0.2.1" } },
        { "domain.inbound_servers[0].recipient", "only allowed alone", new InboundServer { Recipient = "jo*hn@{d}", Host = "192.0.2.1" } },
        { "domain.inbound_servers[0].recipient", "misplaced dot", new InboundServer { Recipient = ".john@{d}", Host = "192.0.2.1" } },
        { "domain.inbound_servers[0].recipient", "contains", new InboundServer { Recipient = "jo hn@{d}", Host = "192.0.2.1" } },
        { "domain.inbound_servers[0].host", "required", new InboundServer { Recipient = "*@{d}", Host = "" } },
        { "domain.inbound_servers[0].host", "port field", new InboundServer { Recipient = "*@{d}", Host = "mail.example.net:25" } },
        { "domain.inbound_servers[0].host", "port field", new InboundServer { Recipient = "*@{d}", Host = "192.0.2.1:25" } },
        { "domain.inbound_servers[0].host", "CIDR", new InboundServer { Recipient = "*@{d}", Host = "192.0.2.0/24" } },
        { "domain.inbound_servers[0].host", "IPv4", new InboundServer { Recipient = "*@{d}", Host = "192.0.2.256" } },
        { "domain.inbound_servers[0].host", "cannot receive", new InboundServer { Recipient = "*@{d}", Host = "0.0.0.0" } },
        { "domain.inbound_servers[0].host", "not a valid", new InboundServer { Recipient = "*@{d}", Host = "bad_host.example.net" } },
        { "domain.inbound_servers[0].port", "1-65535", new InboundServer { Recipient = "*@{d}", Host = "192.0.2.1", Port = 65536 } },
        { "domain.inbound_servers[0].port", "1-65535", new InboundServer { Recipient = "*@{d}", Host = "192.0.2.1", Port = -1 } },
        { "domain.inbound_servers[0].preference", "1-100", new InboundServer { Recipient = "*@{d}", Host = "192.0.2.1", Preference = 101 } },
        { "domain.inbound_servers[0].preference", "1-100", new InboundServer { Recipient = "*@{d}", Host = "192.0.2.1", Preference = -5 } },
        // Loops (requirements §3.7): the gateway's own MX host, a name in its domain, its intake listener (default 127.0.0.1:10025).
        { "domain.inbound_servers[0].host", "loop back", new InboundServer { Recipient = "*@{d}", Host = "acme.in.gw.test.example" } },
        { "domain.inbound_servers[0].host", "loop back", new InboundServer { Recipient = "*@{d}", Host = "GW.TEST.EXAMPLE." } },
        { "domain.inbound_servers[0].host", "loop back", new InboundServer { Recipient = "*@{d}", Host = "127.0.0.1", Port = 10025 } },
    };

    [Theory]
    [MemberData(nameof(InvalidInboundRows))]
    public async Task CreateDomain_InvalidInboundRow_ViolationNamesTheField(string field, string expected, InboundServer row)
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        var domain = new Domain { Name = name, InboundEnabled = true };
        domain.InboundServers.Add(new InboundServer(row) { Recipient = row.Recipient.Replace("{d}", name, StringComparison.Ordinal) });
        var v = await RpcAssert.InvalidFieldAsync(field, domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain }));
        Assert.Contains(expected, v.Description, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task CreateDomain_OneHundredAndOneInboundRows_Refused_OneHundredAccepted()
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        var domain = new Domain { Name = name, InboundEnabled = true };
        for (var i = 0; i < 101; i++)
        {
            domain.InboundServers.Add(new InboundServer { Recipient = $"user{i}@{name}", Host = "192.0.2.1" });
        }

        var v = await RpcAssert.InvalidFieldAsync("domain.inbound_servers", domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain }));
        Assert.Contains("at most 100", v.Description, StringComparison.Ordinal);

        domain.InboundServers.RemoveAt(100);
        var created = await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        Assert.Equal(100, created.InboundServers.Count);
    }

    [Fact]
    public async Task CreateDomain_InboundEnabledWithoutServers_Refused()
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var v = await RpcAssert.InvalidFieldAsync("domain.inbound_servers",
            domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = ControlPlaneFixture.NewDomainName(), InboundEnabled = true } }));
        Assert.Contains("no inbound server", v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateDomain_Defaults_PortAndPreferenceFilledRecipientAndHostNormalised()
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        var domain = new Domain { Name = name.ToUpperInvariant(), InboundEnabled = true };
        domain.InboundServers.Add(new InboundServer { Recipient = "*@" + name.ToUpperInvariant(), Host = "Mail.Example.NET." });
        domain.InboundServers.Add(new InboundServer { Recipient = "John@" + name, Host = "2001:DB8:0:0:0:0:0:1", Port = 2525, Preference = 20 });
        domain.InboundServers.Add(new InboundServer { Recipient = "taro@" + name, Host = "[192.0.2.7]", Preference = 100 });
        var created = await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });

        Assert.Equal(new InboundServer { Recipient = "*@" + name, Host = "mail.example.net", Port = 25, Preference = 10, Tls = TlsMode.Opportunistic }, created.InboundServers[0]);
        Assert.Equal(new InboundServer { Recipient = "john@" + name, Host = "2001:db8::1", Port = 2525, Preference = 20, Tls = TlsMode.Opportunistic }, created.InboundServers[1]);
        Assert.Equal(new InboundServer { Recipient = "taro@" + name, Host = "192.0.2.7", Port = 25, Preference = 100, Tls = TlsMode.Opportunistic }, created.InboundServers[2]);
    }

    [Fact]
    public async Task CreateDomain_DuplicateInboundRow_Refused()
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        var domain = new Domain { Name = name, InboundEnabled = true };
        domain.InboundServers.Add(new InboundServer { Recipient = "*@" + name, Host = "192.0.2.1" });
        domain.InboundServers.Add(new InboundServer { Recipient = "*@" + name.ToUpperInvariant(), Host = "192.0.2.1", Port = 25 });
        var v = await RpcAssert.InvalidFieldAsync("domain.inbound_servers[1]", domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain }));
        Assert.Contains("duplicate", v.Description, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> InvalidCustomIps => new()
    {
        { "192.0.2.0/24", "CIDR" },
        { "2001:db8::/32", "CIDR" },
        { "192.0.2.1-192.0.2.9", "range" },
        { "192.0.2.*", "range" },
        { "10.1", "IPv4" },
        { "0x7f.0.0.1", "IPv4" },
        { "192.0.2.01", "IPv4" },
        { "mail.example.net", "IPv4" },
        { "fe80::1%eth0", "zone" },
        { "2001:db8::g", "IPv6" },
        { "0.0.0.0", "cannot be" },
    };

    [Theory]
    [MemberData(nameof(InvalidCustomIps))]
    public async Task CreateDomain_CustomIpNotASingleAddress_ViolationNamesTheEntry(string ip, string expected)
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var domain = new Domain { Name = ControlPlaneFixture.NewDomainName(), Outbound = new OutboundSettings { Enabled = true } };
        domain.Outbound.CustomIps.Add("192.0.2.10");
        domain.Outbound.CustomIps.Add(ip);
        var v = await RpcAssert.InvalidFieldAsync("domain.outbound.custom_ips[1]", domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain }));
        Assert.Contains(expected, v.Description, StringComparison.Ordinal);
        Assert.Contains(ip.Trim(), v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateDomain_CustomIps_Ipv6NormalisedAndMappedIpv4Unwrapped_LimitOf100()
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var domain = new Domain { Name = ControlPlaneFixture.NewDomainName(), Outbound = new OutboundSettings { Enabled = true, Office365 = true, GoogleWorkspace = true } };
        domain.Outbound.CustomIps.Add("2001:DB8:0000:0000:0000:0000:0000:0001");
        domain.Outbound.CustomIps.Add("::ffff:198.51.100.7");
        domain.Outbound.CustomIps.Add(" 203.0.113.5 ");
        var created = await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        Assert.Equal(["2001:db8::1", "198.51.100.7", "203.0.113.5"], created.Outbound.CustomIps);
        Assert.True(created.Outbound.Office365 && created.Outbound.GoogleWorkspace && created.Outbound.Enabled);

        var tooMany = new Domain { Name = ControlPlaneFixture.NewDomainName(), Outbound = new OutboundSettings { Enabled = true } };
        tooMany.Outbound.CustomIps.AddRange(Enumerable.Range(1, 101).Select(i => $"198.51.{i / 250}.{(i % 250) + 1}"));
        var v = await RpcAssert.InvalidFieldAsync("domain.outbound.custom_ips", domains.CreateDomainAsync(new CreateDomainRequest { Domain = tooMany }));
        Assert.Contains("at most 100", v.Description, StringComparison.Ordinal);

        tooMany.Outbound.CustomIps.RemoveAt(0);
        Assert.Equal(100, (await domains.CreateDomainAsync(new CreateDomainRequest { Domain = tooMany })).Outbound.CustomIps.Count);
    }

    [Fact]
    public async Task CreateDomain_DuplicateCustomIp_Refused()
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var domain = new Domain { Name = ControlPlaneFixture.NewDomainName(), Outbound = new OutboundSettings { Enabled = true } };
        domain.Outbound.CustomIps.Add("2001:db8::1");
        domain.Outbound.CustomIps.Add("2001:DB8::0:1");
        var v = await RpcAssert.InvalidFieldAsync("domain.outbound.custom_ips[1]", domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain }));
        Assert.Contains("twice", v.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateDomain_SeveralErrors_AllReportedAtOnce()
    {
        var (_, _, domains) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        var domain = new Domain { Name = name, InboundEnabled = true, Outbound = new OutboundSettings { Enabled = true } };
        domain.InboundServers.Add(new InboundServer { Recipient = "*@" + name, Host = "192.0.2.1", Port = 99999, Preference = 0 });
        domain.InboundServers.Add(new InboundServer { Recipient = "x@elsewhere.example", Host = "192.0.2.2" });
        domain.Outbound.CustomIps.Add("10.0.0.0/8");
        var e = await RpcAssert.ThrowsAsync(StatusCode.InvalidArgument, async () => await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain }));
        var fields = e.GetRpcStatus()!.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations.Select(v => v.Field).ToHashSet();
        Assert.Superset(new HashSet<string> { "domain.inbound_servers[0].port", "domain.inbound_servers[1].recipient", "domain.outbound.custom_ips[0]" }, fields);
    }

    [Fact]
    public async Task CreateDomain_LoopbackHostWhenAllowed_Accepted()
    {
        // The fixture allows loopback (Gateway:AllowLoopbackDestinations) for local sinks; the refusal is a validator unit test.
        var (_, _, domains) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        var domain = new Domain { Name = name, InboundEnabled = true };
        domain.InboundServers.Add(new InboundServer { Recipient = "*@" + name, Host = "127.0.0.2", Port = 2525 });
        Assert.Equal("127.0.0.2", (await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain })).InboundServers[0].Host);
    }
}
