using System.Net;
using System.Security.Cryptography;
using System.Text;
using Gateway.Core.Dns;
using Gateway.Core.Domains;
using Gateway.Core.Relay;
using Gateway.Core.Snapshot;
using Gateway.Testing;
using MimeKit;
using MimeKit.Cryptography;

namespace Gateway.Core.Tests;

/// <summary>
/// GoogleWorkspaceBinding (requirements §3.9) against a real DNS server (DnsTestServer) publishing the key: which
/// signatures count, and DNS failure as a temporary answer. The end-to-end test through Postfix is
/// Deliverer.Tests' GoogleWorkspaceBindingTests.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class GoogleWorkspaceBindingDnsTests : IAsyncDisposable
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;
    private readonly DnsTestServer _dns = DnsTestServer.Start();
    private readonly RSA _key = RSA.Create(2048);

    public GoogleWorkspaceBindingDnsTests() =>
        _dns.AddTxtParts("google._domainkey.example.com", ("v=DKIM1; k=rsa; p=" + Convert.ToBase64String(_key.ExportSubjectPublicKeyInfo())).Chunk(255).Select(c => new string(c)));

    public async ValueTask DisposeAsync()
    {
        await _dns.DisposeAsync();
        _key.Dispose();
    }

    private static DomainEntry Domain(string? selector) => new(new DomainConfig
    {
        Name = "example.com",
        CompanyId = "acme",
        Settings = new DomainSettings(false, [], new OutboundSettings(true, false, true, ["192.0.2.10"]) { GoogleWorkspaceDkimSelector = selector }),
        Verification = new VerificationState(new string('a', 32), true, VerificationMethod.Txt, DateTimeOffset.UtcNow),
        CreateTime = DateTimeOffset.UtcNow,
        UpdateTime = DateTimeOffset.UtcNow,
    });

    private MimeMessage Signed(string domain = "example.com", string selector = "google", RSA? key = null)
    {
        var message = MimeMessage.Load(new MemoryStream(Encoding.ASCII.GetBytes(
            "From: <ceo@example.com>\r\nTo: <bob@remote.test>\r\nSubject: hi\r\nMessage-ID: <1@mail.gmail.test>\r\n\r\nHello.\r\n")));
        using var pem = new MemoryStream(Encoding.ASCII.GetBytes((key ?? _key).ExportPkcs8PrivateKeyPem()));
        var signer = new DkimSigner(pem, domain, selector)
        {
            HeaderCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
            BodyCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
        };
        signer.Sign(message, [HeaderId.From, HeaderId.To, HeaderId.Subject, HeaderId.MessageId]);
        return message;
    }

    private Task<string?> CheckAsync(DomainEntry domain, MimeMessage? message) =>
        GoogleWorkspaceBinding.CheckAsync(domain, message, DnsSetup.CreateClient(new DnsOptions { Servers = [_dns.Address], UseCache = false, Retries = 0, Timeout = TimeSpan.FromSeconds(1) }),
            Now, CancellationToken.None);

    [Fact]
    public async Task CheckAsync_TheDomainsSignatureWithItsSelector_Passes_OthersRefused550()
    {
        Assert.Null(await CheckAsync(Domain("google"), Signed()));
        Assert.Null(await CheckAsync(Domain("GOOGLE".ToLowerInvariant()), Signed(selector: "Google")));
        Assert.StartsWith("550 5.7.1 Sender not authorised: example.com allows Google Workspace but has no Google Workspace DKIM selector",
            await CheckAsync(Domain(null), Signed()), StringComparison.Ordinal);
        Assert.Contains("without a DKIM signature of example.com", await CheckAsync(Domain("google"), Signed(domain: "mail.example.com")), StringComparison.Ordinal);
        Assert.Contains("without a DKIM signature of example.com", await CheckAsync(Domain("google"), Signed(selector: "s1")), StringComparison.Ordinal);
        using var other = RSA.Create(2048);
        Assert.Contains("does not verify", await CheckAsync(Domain("google"), Signed(key: other)), StringComparison.Ordinal);
        var tampered = Signed();
        tampered.Subject = "changed";
        Assert.Contains("does not verify", await CheckAsync(Domain("google"), tampered), StringComparison.Ordinal);
        Assert.StartsWith("550 5.7.1", await CheckAsync(Domain("google"), null), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckAsync_KeyRevokedOrTooShortOrMissing_Refused550()
    {
        _dns.AddTxt("revoked._domainkey.example.com", "v=DKIM1; k=rsa; p=");
        Assert.Contains("does not verify", await CheckAsync(Domain("revoked"), Signed(selector: "revoked")), StringComparison.Ordinal);
        using var shortKey = RSA.Create(512);
        _dns.AddTxtParts("short._domainkey.example.com", ("v=DKIM1; k=rsa; p=" + Convert.ToBase64String(shortKey.ExportSubjectPublicKeyInfo())).Chunk(255).Select(c => new string(c)));
        Assert.Contains("does not verify", await CheckAsync(Domain("short"), Signed(selector: "short", key: shortKey)), StringComparison.Ordinal);
        Assert.Contains("does not verify", await CheckAsync(Domain("absent"), Signed(selector: "absent")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CheckAsync_NameServerDoesNotAnswer_451TryLater()
    {
        var silent = new System.Net.Sockets.UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        using var _ = silent;
        var dns = DnsSetup.CreateClient(new DnsOptions { Servers = [$"127.0.0.1:{((IPEndPoint)silent.Client.LocalEndPoint!).Port}"], UseCache = false, Retries = 0, Timeout = TimeSpan.FromMilliseconds(300) });
        var reply = await GoogleWorkspaceBinding.CheckAsync(Domain("google"), Signed(), dns, Now, CancellationToken.None);
        Assert.StartsWith("451 4.7.0", reply, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("google", true)]
    [InlineData("s-2024", true)]
    [InlineData("-a", false)]
    [InlineData("a.b", false)]
    [InlineData("", false)]
    public void IsSelector_OneLabel(string text, bool expected) => Assert.Equal(expected, GoogleWorkspaceBinding.IsSelector(text));
}
