using System.Net;
using Gateway.Api.V1;
using Gateway.Core.Domains;
using Gateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using Gateway.ControlPlane.Application;

namespace Deliverer.Tests;

/// <summary>
/// End to end through a real Postfix from deploy/postfix: an SMTP client talks to Postfix, the
/// PolicyDaemon decides, Postfix hands the message to the Deliverer's intake, and the message arrives at
/// the sink the route chose (requirements §3 worked example) or at the recipient's MX (outbound).
/// </summary>
[Trait("Kind", "Integration")]
public sealed class PostfixEndToEndTests : IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private WholeGateway _gw = null!;

    public async Task InitializeAsync() => _gw = await WholeGateway.StartAsync();

    public async Task DisposeAsync() => await _gw.DisposeAsync();

    private static string Message(string from, string to, string subject) =>
        $"From: <{from}>\r\nTo: <{to}>\r\nSubject: {subject}\r\nMessage-ID: <{Guid.NewGuid():N}@client.test>\r\n\r\nHello through Postfix.\r\n";

    /// <summary>On a timeout, says what Postfix did with the message.</summary>
    private async Task<T> WithMaillogAsync<T>(Task<T> wait)
    {
        try
        {
            return await wait;
        }
        catch (TimeoutException e)
        {
            throw new TimeoutException(e.Message + "\nPostfix maillog:\n" + _gw.Postfix.ReadMaillog(), e);
        }
    }

    private async Task<DomainService.DomainServiceClient> TenantAsync()
    {
        var (_, key) = await _gw.ControlPlane.NewTenantAsync("e2e");
        return new DomainService.DomainServiceClient(_gw.ControlPlane.WithKey(key));
    }

    [Fact]
    public async Task Inbound_ThroughPostfix_ArrivesAtTheSinkTheRouteChose()
    {
        // The seed's four hosts: 192.0.2.1 (*@, pref 20), 203.0.113.1 (john, 10), 203.0.113.2 (sophie, 20), 198.51.100.1 (taro, 50).
        var catchAll = SmtpSink.Start("127.0.0.2");
        var john = SmtpSink.Start("127.0.0.3");
        var sophie = SmtpSink.Start("127.0.0.4");
        var taro = SmtpSink.Start("127.0.0.5");
        await using var _1 = catchAll;
        await using var _2 = john;
        await using var _3 = sophie;
        await using var _4 = taro;

        var domains = await TenantAsync();
        var name = $"e2e{Guid.NewGuid().ToString("N")[..8]}.example.com";
        var domain = new Domain { Name = name, InboundEnabled = true };
        domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + name, Host = catchAll.Host, Port = catchAll.Port, Preference = 20 });
        domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "john@" + name, Host = john.Host, Port = john.Port, Preference = 10 });
        domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "sophie@" + name, Host = sophie.Host, Port = sophie.Port, Preference = 20 });
        domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "taro@" + name, Host = taro.Host, Port = taro.Port, Preference = 50 });
        var created = await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        await _gw.WaitAppliedAsync(name, created.Etag);

        foreach (var local in new[] { "john", "taro", "hanako" })
        {
            var (rcpt, data) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, "sender@remote.test", [$"{local}@{name}"],
                Message("sender@remote.test", $"{local}@{name}", "to " + local));
            Assert.True(rcpt[0].IsPositive, $"{local}: {rcpt[0]}");
            Assert.True(data!.IsPositive, $"{local}: {data}");
        }

        var atJohn = Assert.Single(await WithMaillogAsync(john.WaitForMessagesAsync(1, Wait)));
        Assert.Equal([$"john@{name}"], atJohn.Recipients);
        var atCatchAll = await catchAll.WaitForMessagesAsync(2, Wait);
        Assert.Equal([$"hanako@{name}", $"taro@{name}"], atCatchAll.SelectMany(m => m.Recipients).Order(StringComparer.Ordinal));
        Assert.Empty(taro.Messages);
        Assert.Empty(sophie.Messages);
        Assert.Contains("Hello through Postfix.", System.Text.Encoding.UTF8.GetString(atJohn.Data), StringComparison.Ordinal);

        // Unmanaged domain: Postfix refuses at RCPT with the exact text.
        var (refused, _) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, "sender@remote.test", ["x@unmanaged.example.org"]);
        Assert.Equal("554 5.7.1 <x@unmanaged.example.org>: Recipient address rejected: NO-DOMAIN", refused[0].ToString());
    }

    [Fact]
    public async Task Outbound_FromAuthorisedSource_ThroughPostfix_DeliveredToRecipientsMx()
    {
        var mx = SmtpSink.Start("127.0.0.6", _gw.OutboundPort);
        await using var _ = mx;
        var external = $"ext{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        _gw.Dns.AddMx(external, 10, "mx." + external).AddA("mx." + external, "127.0.0.6");

        var domains = await TenantAsync();
        var name = $"out{Guid.NewGuid().ToString("N")[..8]}.example.com";
        await domains.CreateDomainAsync(new CreateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new Gateway.Api.V1.OutboundSettings { Enabled = true, CustomIps = { "127.0.0.7" } } },
        });
        // Verification has its own tests; here the gateway-side change marks the domain verified.
        var verified = await _gw.ControlPlane.Services.GetRequiredService<DomainManager>().ChangeAsync(name,
            d => d with { Verification = d.Verification with { Verified = true, Method = Gateway.Core.Domains.VerificationMethod.Txt, VerifyTime = DateTimeOffset.UtcNow } },
            Gateway.Core.Storage.ConfigOps.Verify);
        await _gw.WaitAppliedAsync(name, verified.Etag);

        var (rcpt, data) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, $"alice@{name}", [$"bob@{external}"],
            Message($"alice@{name}", $"bob@{external}", "outbound"), localAddress: IPAddress.Parse("127.0.0.7"));
        Assert.True(rcpt[0].IsPositive, rcpt[0].ToString());
        Assert.True(data!.IsPositive, data.ToString());
        var delivered = Assert.Single(await WithMaillogAsync(mx.WaitForMessagesAsync(1, Wait)));
        Assert.Equal($"alice@{name}", delivered.MailFrom);
        Assert.Equal([$"bob@{external}"], delivered.Recipients);

        var (other, _) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, $"alice@{name}", [$"bob@{external}"],
            localAddress: IPAddress.Parse("127.0.0.8"));
        Assert.Equal($"554 5.7.1 <bob@{external}>: Recipient address rejected: NO-DOMAIN", other[0].ToString());
    }

    [Fact]
    public async Task MailKitClient_TwoDomains_ThenBdat_ThroughPostfixProxy_EachDomainsServerGetsItsCopy()
    {
        // A widely used client against Postfix as deployed (MailKit, pipelining), then CHUNKING: Postfix offers it and
        // smtpd turns BDAT into DATA for the intake (BDAT_README). The intake splits a message per domain and answers with one id per copy (the second copy's id is the first's with "-1").
        var first = SmtpSink.Start("127.0.0.2");
        var second = SmtpSink.Start("127.0.0.3");
        await using var _1 = first;
        await using var _2 = second;
        var domains = await TenantAsync();
        var names = new List<string>();
        foreach (var sink in new[] { first, second })
        {
            var name = $"mk{Guid.NewGuid().ToString("N")[..8]}.example.com";
            var domain = new Domain { Name = name, InboundEnabled = true };
            domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + name, Host = sink.Host, Port = sink.Port, Preference = 10 });
            var created = await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
            await _gw.WaitAppliedAsync(name, created.Etag);
            names.Add(name);
        }

        // The sender's domain, whose MX (a sink) receives the gateway's notice for ann (NOTIFY=SUCCESS, FAILURE).
        var senderDomain = $"snd{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        await using var senderMx = SmtpSink.Start("127.0.0.4", _gw.OutboundPort);
        _gw.Dns.AddMx(senderDomain, 10, "mx." + senderDomain).AddA("mx." + senderDomain, senderMx.Host);

        var message = new MimeKit.MimeMessage();
        message.From.Add(MimeKit.MailboxAddress.Parse("sender@" + senderDomain));
        message.To.Add(MimeKit.MailboxAddress.Parse("ann@" + names[0]));
        message.To.Add(MimeKit.MailboxAddress.Parse("bob@" + names[1]));
        message.Subject = "Grüße über BDAT";
        message.Body = new MimeKit.TextPart("plain") { Text = "Zwei Empfänger, zwei Domänen.\n" };
        using var client = new NotifyingClient("ann@");
        await client.ConnectAsync(_gw.Postfix.SmtpEndPoint.Address.ToString(), _gw.Postfix.SmtpEndPoint.Port, MailKit.Security.SecureSocketOptions.None);
        Assert.True(client.Capabilities.HasFlag(MailKit.Net.Smtp.SmtpCapabilities.Chunking), client.Capabilities.ToString());
        Assert.True(client.Capabilities.HasFlag(MailKit.Net.Smtp.SmtpCapabilities.Dsn), "Postfix offers DSN: its parameters reach the intake");
        var reply = await client.SendAsync(message);
        await client.DisconnectAsync(true);

        Assert.True(System.Text.RegularExpressions.Regex.IsMatch(reply, @"^2\.0\.0 Ok: queued as (?<id>[0-9a-z]+) \k<id>-1$"), "[" + reply + "]");
        var atFirst = Assert.Single(await WithMaillogAsync(first.WaitForMessagesAsync(1, Wait)));
        var atSecond = Assert.Single(await WithMaillogAsync(second.WaitForMessagesAsync(1, Wait)));
        Assert.Equal(["ann@" + names[0]], atFirst.Recipients);
        Assert.Equal(["bob@" + names[1]], atSecond.Recipients);
        foreach (var copy in new[] { atFirst, atSecond })
        {
            var parsed = MimeKit.MimeMessage.Load(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(copy.Text)));
            Assert.Equal("Grüße über BDAT", parsed.Subject);
            Assert.Equal("Zwei Empfänger, zwei Domänen.\n", parsed.TextBody!.ReplaceLineEndings("\n"));
        }

        await _gw.Postfix.WaitForMaillogAsync("rcpt=2", Wait);

        // NOTIFY=SUCCESS,FAILURE passed through Postfix: ann's copy was relayed, so the sender gets a "relayed" notice;
        // bob's recipient asked for nothing (the default: failures only) and is not reported.
        var notice = Assert.Single(await WithMaillogAsync(senderMx.WaitForMessagesAsync(1, Wait)));
        Assert.Equal(["sender@" + senderDomain], notice.Recipients);
        var report = Assert.IsType<MimeKit.MultipartReport>(MimeKit.MimeMessage.Load(new MemoryStream(notice.Data)).Body);
        var groups = Assert.IsType<MimeKit.MessageDeliveryStatus>(report[1]).StatusGroups.Skip(1).Where(g => g.Count > 0).ToList();
        var ann = Assert.Single(groups);
        Assert.Equal("rfc822; ann@" + names[0], ann["Final-Recipient"]);
        Assert.Equal("relayed", ann["Action"]);

        // CHUNKING by hand (MailKit only chunks binary content): one BDAT LAST chunk with the whole message.
        await using var raw = await PostfixSmtpClient.ConnectAsync(_gw.Postfix.SmtpEndPoint);
        Assert.Contains((await raw.EhloAsync()).Lines, l => l == "CHUNKING");
        Assert.Equal(250, (await raw.MailFromAsync("sender@remote.test")).Code);
        Assert.Equal(250, (await raw.RcptToAsync("carol@" + names[0])).Code);
        var content = $"From: <sender@remote.test>\r\nSubject: chunked\r\n\r\nSent with BDAT.";
        var bdat = await raw.CommandAsync($"BDAT {content.Length + 2} LAST\r\n{content}"); // CommandAsync adds the final CRLF
        Assert.Equal(250, bdat.Code);
        Assert.StartsWith("2.0.0 Ok: queued as ", bdat.Lines[0], StringComparison.Ordinal);
        await raw.QuitAsync();
        var chunked = (await first.WaitForMessagesAsync(2, Wait)).Single(m => m.Text.Contains("Sent with BDAT.", StringComparison.Ordinal));
        Assert.Equal(["carol@" + names[0]], chunked.Recipients);
        await _gw.Postfix.WaitForMaillogAsync("bdat=1", Wait);
    }

    /// <summary>Asks for NOTIFY=SUCCESS,FAILURE for the recipients whose address starts with a prefix.</summary>
    private sealed class NotifyingClient(string prefix) : MailKit.Net.Smtp.SmtpClient
    {
        protected override MailKit.DeliveryStatusNotification? GetDeliveryStatusNotifications(MimeKit.MimeMessage message, MimeKit.MailboxAddress mailbox) =>
            mailbox.Address.StartsWith(prefix, StringComparison.Ordinal) ? MailKit.DeliveryStatusNotification.Success | MailKit.DeliveryStatusNotification.Failure : null;
    }
}
