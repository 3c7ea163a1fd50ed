using System.Net;
using System.Text;
using Gateway.Api.V1;
using Gateway.Testing;

namespace Deliverer.Tests;

/// <summary>One whole gateway (Redis, DNS, ControlPlane, PolicyDaemon, Deliverer, a Postfix from deploy/postfix) for the hostile-sender tests.</summary>
public sealed class HostileGatewayFixture : IAsyncLifetime
{
    public WholeGateway Gateway { get; private set; } = null!;

    public DomainService.DomainServiceClient Domains { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Gateway = await WholeGateway.StartAsync();
        var (_, key) = await Gateway.ControlPlane.NewTenantAsync("hostile");
        Domains = new DomainService.DomainServiceClient(Gateway.ControlPlane.WithKey(key));
    }

    public async Task DisposeAsync() => await Gateway.DisposeAsync();

    /// <summary>An inbound domain whose rows send everything (or the given recipients only) to <paramref name="sink"/>.</summary>
    public async Task<string> InboundDomainAsync(SmtpSink sink, params string[] locals)
    {
        var name = $"h{Guid.NewGuid().ToString("N")[..10]}.example.com";
        var domain = new Domain { Name = name, InboundEnabled = true };
        foreach (var local in locals.Length == 0 ? ["*"] : locals)
        {
            domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = $"{local}@{name}", Host = sink.Host, Port = sink.Port, Preference = 10 });
        }

        var created = await Domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        await Gateway.WaitAppliedAsync(name, created.Etag);
        return name;
    }
}

/// <summary>
/// A hostile internet sender through a real Postfix configured from deploy/postfix (requirements §3.6, §11.8): the SMTP
/// smuggling sequences, recipients without a route. The client connects from 127.0.0.2, an "internet" address (main.cf
/// exempts only the gateway host's own 127.0.0.1 and ::1 from the bare-newline rule).
/// </summary>
[Trait("Kind", "Integration")]
public sealed class PostfixHostileSenderTests(HostileGatewayFixture fx) : IClassFixture<HostileGatewayFixture>
{
    private static readonly IPAddress Internet = IPAddress.Parse("127.0.0.2");

    [Theory]
    [InlineData("\n.\n")]
    [InlineData("\n.\r\n")]
    [InlineData("\r.\r\n")]
    [InlineData("\r\n.\r")]
    public async Task Smuggling_PublishedSequences_ThroughPostfix_ExactlyOneMessage(string sequence)
    {
        await using var sink = SmtpSink.Start("127.0.0.4");
        var d = await fx.InboundDomainAsync(sink);
        var token = Guid.NewGuid().ToString("N");
        await using var client = await PostfixSmtpClient.ConnectAsync(fx.Gateway.Postfix.SmtpEndPoint, Internet);
        Assert.Equal(250, (await client.EhloAsync("attacker.test")).Code);
        Assert.Equal(250, (await client.MailFromAsync("someone@remote.test")).Code);
        Assert.Equal(250, (await client.RcptToAsync($"first@{d}")).Code);

        // The sender's message, a smuggling sequence, then a whole second transaction for another recipient.
        var content = $"Subject: first {token}\r\n\r\nfirst part{sequence}MAIL FROM:<ceo@{d}>\r\nRCPT TO:<smuggled@{d}>\r\nDATA\r\n" +
                      $"From: ceo@{d}\r\nSubject: smuggled {token}\r\n\r\nsecond part\r\n.\r\n";
        var reply = await client.RawDataAsync(Encoding.ASCII.GetBytes(content));
        Assert.Equal(250, reply.Code);
        // Had anything ended the data early, the smuggled MAIL, RCPT and DATA would have been answered too.
        Assert.Empty(await client.DrainRepliesAsync(TimeSpan.FromSeconds(1)));
        await client.QuitAsync();

        var arrived = Assert.Single(await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30)));
        Assert.Equal([$"first@{d}"], arrived.Recipients);
        Assert.Contains("smuggled " + token, arrived.Text, StringComparison.Ordinal); // as text of the one message
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Single(sink.Messages);
        var text = arrived.Text.Replace("\r\n", string.Empty, StringComparison.Ordinal);
        Assert.DoesNotContain('\r', text);
        Assert.DoesNotContain('\n', text);
    }

    [Fact]
    public async Task Rcpt_NoRowMatches_550AtRcpt_NothingQueued()
    {
        await using var sink = SmtpSink.Start("127.0.0.4");
        var d = await fx.InboundDomainAsync(sink, "ann");
        var (rcpt, data) = await PostfixSmtpClient.SendAsync(fx.Gateway.Postfix.SmtpEndPoint, "someone@remote.test", [$"carol@{d}"],
            "Subject: x\r\n\r\nhello\r\n", Internet);
        Assert.Equal($"550 5.1.1 <carol@{d}>: Recipient address rejected: unknown recipient", rcpt[0].ToString());
        Assert.Null(data);
        Assert.Empty(sink.Messages);
    }
}
