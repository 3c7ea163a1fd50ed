using System.Net;
using Gateway.Api.V1;
using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>
/// A test CA the Deliverer trusts (Gateway:Tls:TrustedCaFile), an HTTPS server for MTA-STS policies on a loopback address
/// (PolicyPortForTests, allowed only with AllowLoopbackDestinations), retries after a second.
/// </summary>
public sealed class TlsFixture : GatewayFixture
{
    public TestCertificates Certificates { get; } = new();

    public HttpsPolicyServer Policies { get; private set; } = null!;

    protected override IEnumerable<string> ControlPlaneSettings => [$"--Gateway:Tls:TrustedCaFile={Certificates.CaFile}"];

    protected override IEnumerable<string> DelivererSettings =>
    [
        $"--Gateway:Tls:TrustedCaFile={Certificates.CaFile}",
        $"--Gateway:Deliverer:MtaSts:PolicyPortForTests={Policies.Port}",
        "--Gateway:AllowLoopbackDestinations=true",
        "--Gateway:Queue:FirstRetryDelay=00:00:01",
        "--Gateway:Queue:MaxRetryDelay=00:00:01",
    ];

    public override async Task InitializeAsync()
    {
        var address = IPAddress.Parse("127.0.0.40");
        Policies = await HttpsPolicyServer.StartAsync(Certificates, address, FreePort.Get(address));
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await Policies.DisposeAsync();
        Certificates.Dispose();
    }

    /// <summary>A recipient domain with an MTA-STS policy served over HTTPS and its MX host <paramref name="mx"/> (a sink address).</summary>
    public void MtaStsDomain(string domain, string mode, string mxPattern, string mx, string mxAddress, string id = "20261206T000000")
    {
        Dns.AddMx(domain, 10, mx).AddA(mx, mxAddress)
            .AddTxt("_mta-sts." + domain, $"v=STSv1; id={id};")
            .AddA("mta-sts." + domain, Policies.Address);
        Policies.Serve(domain, $"version: STSv1\r\nmode: {mode}\r\nmx: {mxPattern}\r\nmax_age: 86400\r\n");
    }
}

/// <summary>TLS modes of inbound rows and MTA-STS for outbound delivery (issue 17, requirements §10), over real STARTTLS and HTTPS.</summary>
[Trait("Kind", "Integration")]
public sealed class OutboundTlsTests(TlsFixture fx) : IClassFixture<TlsFixture>
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    private async Task<string> InboundDomainAsync(params Gateway.Api.V1.InboundServer[] rows)
    {
        var name = GatewayFixture.NewDomainName("tls");
        var domain = new Domain { Name = name, InboundEnabled = true };
        foreach (var r in rows)
        {
            r.Recipient = "*@" + name;
            domain.InboundServers.Add(r);
        }

        var created = await fx.Domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        await fx.WaitForSnapshotAsync(name, created.Etag);
        return name;
    }

    [Fact]
    public async Task RequiredRow_ServerWithoutStartTls_GetsNoMail_NextHostDoes()
    {
        await using var plain = SmtpSink.Start("127.0.0.41");
        await using var secure = SmtpSink.Start("127.0.0.42");
        secure.Behavior = new SinkBehavior { TlsCertificate = TestCertificates.SelfSigned("anything.test") }; // required: no verification
        var d = await InboundDomainAsync(
            new Gateway.Api.V1.InboundServer { Host = plain.Host, Port = plain.Port, Preference = 10, Tls = TlsMode.Required },
            new Gateway.Api.V1.InboundServer { Host = secure.Host, Port = secure.Port, Preference = 20, Tls = TlsMode.Required });

        await fx.SendAsync("someone@sender.test", ["user@" + d]);

        var m = Assert.Single(await secure.WaitForMessagesAsync(1, Wait));
        Assert.NotNull(m.Tls);
        Assert.Empty(plain.Messages);
        var refused = await fx.WaitForLogAsync(d, e => e["event"] == "attempt" && e["host"].Contains("127.0.0.41", StringComparison.Ordinal), "attempt on the plain host");
        Assert.Contains("does not offer STARTTLS", refused["reply"], StringComparison.Ordinal);
        Assert.Equal("none", refused["tls"]);
        var delivered = await fx.WaitForLogAsync(d, e => e["event"] == "attempt" && e["host"].Contains("127.0.0.42", StringComparison.Ordinal), "attempt on the TLS host");
        Assert.Matches("^TLSv1\\.[23] not verified$", delivered["tls"]);
    }

    [Fact]
    public async Task VerifyRow_WrongNameOrUntrustedCertificate_GetsNoMail_VerifiedHostDoes()
    {
        await using var wrongName = SmtpSink.Start("127.0.0.43");
        wrongName.Behavior = new SinkBehavior { TlsCertificate = fx.Certificates.Issue("wrong.example") };
        await using var untrusted = SmtpSink.Start("127.0.0.44");
        untrusted.Behavior = new SinkBehavior { TlsCertificate = TestCertificates.SelfSigned("mail.customer.test") };
        await using var good = SmtpSink.Start("127.0.0.45");
        good.Behavior = new SinkBehavior { TlsCertificate = fx.Certificates.Issue("mail.customer.test") };
        var d = await InboundDomainAsync(
            new Gateway.Api.V1.InboundServer { Host = wrongName.Host, Port = wrongName.Port, Preference = 10, Tls = TlsMode.Verify, TlsName = "mail.customer.test" },
            new Gateway.Api.V1.InboundServer { Host = untrusted.Host, Port = untrusted.Port, Preference = 20, Tls = TlsMode.Verify, TlsName = "mail.customer.test" },
            new Gateway.Api.V1.InboundServer { Host = good.Host, Port = good.Port, Preference = 30, Tls = TlsMode.Verify, TlsName = "mail.customer.test" });

        await fx.SendAsync("someone@sender.test", ["user@" + d]);

        Assert.Single(await good.WaitForMessagesAsync(1, Wait));
        Assert.Empty(wrongName.Messages);
        Assert.Empty(untrusted.Messages);
        var log = await fx.LogAsync(d);
        var first = Assert.Single(log, e => e["event"] == "attempt" && e["host"].Contains("127.0.0.43", StringComparison.Ordinal));
        Assert.Contains("does not name the host", first["reply"], StringComparison.Ordinal);
        var second = Assert.Single(log, e => e["event"] == "attempt" && e["host"].Contains("127.0.0.44", StringComparison.Ordinal));
        Assert.Contains("does not chain to a trusted root", second["reply"], StringComparison.Ordinal);
        var third = await fx.WaitForLogAsync(d, e => e["event"] == "attempt" && e["host"].Contains("127.0.0.45", StringComparison.Ordinal), "attempt on the verified host");
        Assert.Matches("^TLSv1\\.[23] verified$", third["tls"]);
    }

    [Fact]
    public async Task MtaStsEnforce_MatchingMxOverVerifiedTls_Delivered_PolicyFetchedOnce()
    {
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("sts"));
        var to = $"sts{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        await using var mx = SmtpSink.Start("127.0.0.46", fx.OutboundPort);
        mx.Behavior = new SinkBehavior { TlsCertificate = fx.Certificates.Issue("mx1." + to) };
        fx.MtaStsDomain(to, "enforce", "*." + to, "mx1." + to, mx.Host);

        for (var i = 0; i < 3; i++)
        {
            await fx.SendAsync("user@" + from, [$"r{i}@" + to]);
        }

        var messages = await mx.WaitForMessagesAsync(3, Wait);
        Assert.All(messages, m => Assert.NotNull(m.Tls));
        Assert.Equal(1, fx.Policies.Fetches(to));
        var attempt = await fx.WaitForLogAsync(from, e => e["event"] == "attempt" && e["recipient"] == "r0@" + to, "the attempt logged");
        Assert.Matches("^TLSv1\\.[23] verified$", attempt["tls"]);
    }

    [Fact]
    public async Task MtaStsEnforce_MxNotInPolicy_DeferredWithReasonInLog_NoConnection()
    {
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("sts"));
        var to = $"stsno{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        await using var mx = SmtpSink.Start("127.0.0.47", fx.OutboundPort);
        mx.Behavior = new SinkBehavior { TlsCertificate = fx.Certificates.Issue("mx." + to) };
        fx.MtaStsDomain(to, "enforce", "mail.elsewhere.test", "mx." + to, mx.Host);

        await fx.SendAsync("user@" + from, ["r@" + to]);

        var deferred = await fx.WaitForLogAsync(from, e => e["event"] == "deferred" && e["recipient"] == "r@" + to, "the deferral logged");
        Assert.Contains($"MTA-STS policy of {to} (enforce", deferred["reply"], StringComparison.Ordinal);
        Assert.Contains("match", deferred["reply"], StringComparison.Ordinal);
        Assert.Equal(0, mx.Connections);
        var queued = await fx.Queue.ListQueueAsync(new ListQueueRequest { Domain = from });
        Assert.Contains(queued.Messages, q => q.Recipients.Any(r => r.Address == "r@" + to));
    }

    [Fact]
    public async Task MtaStsEnforce_MatchingMxWithUntrustedCertificate_NotDelivered()
    {
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("sts"));
        var to = $"stsbad{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        await using var mx = SmtpSink.Start("127.0.0.48", fx.OutboundPort);
        mx.Behavior = new SinkBehavior { TlsCertificate = TestCertificates.SelfSigned("mx." + to) };
        fx.MtaStsDomain(to, "enforce", "mx." + to, "mx." + to, mx.Host);

        await fx.SendAsync("user@" + from, ["r@" + to]);

        var deferred = await fx.WaitForLogAsync(from, e => e["event"] == "deferred" && e["recipient"] == "r@" + to, "the deferral logged");
        Assert.Contains("certificate not verified", deferred["reply"], StringComparison.Ordinal);
        Assert.Empty(mx.Messages);
    }

    [Fact]
    public async Task MtaStsTesting_UnverifiedMx_DeliveredAndWouldFailLogged()
    {
        var from = await fx.CreateOutboundDomainAsync(GatewayFixture.NewDomainName("sts"));
        var to = $"ststest{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        await using var mx = SmtpSink.Start("127.0.0.49", fx.OutboundPort); // no STARTTLS at all
        fx.MtaStsDomain(to, "testing", "mx." + to, "mx." + to, mx.Host);

        await fx.SendAsync("user@" + from, ["r@" + to]);

        Assert.Single(await mx.WaitForMessagesAsync(1, Wait));
        var attempt = await fx.WaitForLogAsync(from, e => e["event"] == "attempt" && e["recipient"] == "r@" + to, "the attempt logged");
        Assert.Contains("MTA-STS testing, enforce would fail", attempt["detail"], StringComparison.Ordinal);
        Assert.Equal("none", attempt["tls"]);
    }

    [Fact]
    public async Task TestConnection_ReportsStartTlsAndCertificatePerServer_RowModesDecideSuccess()
    {
        await using var plain = SmtpSink.Start("127.0.0.50");
        await using var verified = SmtpSink.Start("127.0.0.51");
        verified.Behavior = new SinkBehavior { TlsCertificate = fx.Certificates.Issue("mail.customer.test") };
        await using var selfSigned = SmtpSink.Start("127.0.0.52");
        selfSigned.Behavior = new SinkBehavior { TlsCertificate = TestCertificates.SelfSigned("mail.customer.test") };
        var d = await InboundDomainAsync(new Gateway.Api.V1.InboundServer { Host = plain.Host, Port = plain.Port });
        var request = new TestConnectionRequest { Name = d };
        request.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + d, Host = plain.Host, Port = plain.Port });
        request.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + d, Host = verified.Host, Port = verified.Port, Tls = TlsMode.Verify, TlsName = "mail.customer.test" });
        request.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + d, Host = selfSigned.Host, Port = selfSigned.Port, Tls = TlsMode.Verify, TlsName = "mail.customer.test" });

        var response = await fx.Domains.TestConnectionAsync(request);

        var p = Assert.Single(response.Results, r => r.Host == plain.Host);
        Assert.True(p is { Connected: true, Smtp: true, StarttlsOffered: false, TlsVersion: "" }, p.ToString());
        Assert.Empty(p.Error);
        var v = Assert.Single(response.Results, r => r.Host == verified.Host);
        Assert.True(v is { Connected: true, StarttlsOffered: true, CertificateVerified: true, Tls: TlsMode.Verify }, v.ToString());
        Assert.StartsWith("TLSv1.", v.TlsVersion, StringComparison.Ordinal);
        var s = Assert.Single(response.Results, r => r.Host == selfSigned.Host);
        Assert.True(s is { Connected: true, StarttlsOffered: true, CertificateVerified: false }, s.ToString());
        Assert.Contains("does not chain to a trusted root", s.Error, StringComparison.Ordinal);
        Assert.False(response.Success);
        Assert.Contains(selfSigned.Host, response.Message, StringComparison.Ordinal);

        // The plain server under a required row fails the test too.
        var required = new TestConnectionRequest { Name = d };
        required.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + d, Host = plain.Host, Port = plain.Port, Tls = TlsMode.Required });
        var r2 = await fx.Domains.TestConnectionAsync(required);
        Assert.False(r2.Success);
        Assert.Contains("does not offer STARTTLS", Assert.Single(r2.Results).Error, StringComparison.Ordinal);
        Assert.Equal(0, plain.Messages.Count + verified.Messages.Count);
    }

    [Fact]
    public async Task UpdateDomain_TlsNameWithoutVerify_InvalidArgumentNamingTheField()
    {
        var d = GatewayFixture.NewDomainName("tlsname");
        var domain = new Domain { Name = d, InboundEnabled = true };
        domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + d, Host = "192.0.2.1", Tls = TlsMode.Required, TlsName = "mx.test" });
        var e = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => fx.Domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain }).ResponseAsync);
        Assert.Equal(Grpc.Core.StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("tls_name", e.Status.Detail + e.Trailers.ToString(), StringComparison.Ordinal);

        domain.InboundServers[0].Tls = TlsMode.Verify;
        var created = await fx.Domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        Assert.Equal(TlsMode.Verify, created.InboundServers[0].Tls);
        Assert.Equal("mx.test", created.InboundServers[0].TlsName);
    }
}
