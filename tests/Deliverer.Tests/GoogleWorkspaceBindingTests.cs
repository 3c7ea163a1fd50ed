using System.Net;
using System.Security.Cryptography;
using System.Text;
using Gateway.Api.V1;
using Gateway.ControlPlane.Application;
using Gateway.Testing;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;
using MimeKit.Cryptography;

namespace Deliverer.Tests;

/// <summary>
/// requirements §3.9 (security review H1, "EchoSpoofing") for Google Workspace, end to end through a real Postfix: a
/// client inside "Google's ranges" (127.0.0.112/28 from a provider-ranges file) sends as a customer that allows Google
/// Workspace. Only a message with a DKIM signature of the customer's domain made with the key it published under its
/// Google selector (served by the tests' DNS server) is relayed; unsigned, another domain's signature, an attacker's key
/// under the customer's selector, a changed body, a partial-body signature (l=) or no selector configured get 550 5.7.1
/// at DATA. The passing signatures are made by openssl over a hand-canonicalised header (independent of MimeKit, which
/// verifies) and by MimeKit's DkimSigner as Google signs (relaxed/relaxed).
/// </summary>
[Trait("Kind", "Integration")]
public sealed class GoogleWorkspaceBindingTests : IAsyncLifetime
{
    private const string Selector = "google";
    private static readonly IPAddress Google = IPAddress.Parse("127.0.0.113");
    private WholeGateway _gw = null!;
    private string _dir = null!;

    public async Task InitializeAsync()
    {
        _dir = Directory.CreateTempSubdirectory("gw-gws-").FullName;
        var ranges = Path.Combine(_dir, "ranges.json");
        await File.WriteAllTextAsync(ranges, """
            { "providers": {
                "office365": { "source": "test", "as_of": "2026-12-06T00:00:00+00:00", "ranges": ["192.0.2.0/24"] },
                "google_workspace": { "source": "test: Gmail outbound stand-in", "as_of": "2026-12-06T00:00:00+00:00", "ranges": ["127.0.0.112/28"] } } }
            """);
        _gw = await WholeGateway.StartAsync($"--Gateway:ProviderRanges:File={ranges}");
    }

    public async Task DisposeAsync()
    {
        await _gw.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Outbound_FromGoogleRanges_OnlyWithTheDomainsDkimSignatureWithItsSelector_Else550AtData()
    {
        await using var mx = SmtpSink.Start("127.0.0.114", _gw.OutboundPort);
        var external = $"ext{Guid.NewGuid().ToString("N")[..8]}.remote.test";
        _gw.Dns.AddMx(external, 10, "mx." + external).AddA("mx." + external, "127.0.0.114");
        var (_, key) = await _gw.ControlPlane.NewTenantAsync("gws");
        var domains = new DomainService.DomainServiceClient(_gw.ControlPlane.WithKey(key));
        var name = $"gw{Guid.NewGuid().ToString("N")[..8]}.example.com";
        var other = $"other{Guid.NewGuid().ToString("N")[..8]}.example.net";
        await domains.CreateDomainAsync(new CreateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new OutboundSettings { Enabled = true, GoogleWorkspace = true } },
        });
        var verified = await _gw.ControlPlane.Services.GetRequiredService<DomainManager>().ChangeAsync(name,
            d => d with { Verification = d.Verification with { Verified = true, Method = Gateway.Core.Domains.VerificationMethod.Txt, VerifyTime = DateTimeOffset.UtcNow } },
            Gateway.Core.Storage.ConfigOps.Verify);
        await _gw.WaitAppliedAsync(name, verified.Etag);
        var customerKey = await NewKeyAsync("customer");
        var otherKey = await NewKeyAsync("other");
        var attackerKey = await NewKeyAsync("attacker");
        var from = $"ceo@{name}";
        var to = $"bob@{external}";

        // No selector configured: CheckDomain says so, and mail from Google is refused even when properly signed.
        var check = await domains.CheckDomainAsync(new CheckDomainRequest { Name = name });
        Assert.Contains("OUTBOUND_GOOGLE_WORKSPACE_NO_DKIM_SELECTOR", check.ToString(), StringComparison.Ordinal);
        _gw.Dns.AddTxtParts($"{Selector}._domainkey.{name}", $"v=DKIM1; k=rsa; p={customerKey.PublicKey}".Chunk(255).Select(c => new string(c)));
        var data = await SendAsync(from, to, await OpensslSignAsync(Message(from, to), name, Selector, customerKey.PemFile));
        Assert.StartsWith("550 5.7.1", data, StringComparison.Ordinal);
        Assert.Contains("no Google Workspace DKIM selector", data, StringComparison.Ordinal);

        var bad = await Assert.ThrowsAsync<RpcException>(async () => await domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new OutboundSettings { GoogleWorkspaceDkimSelector = "google._domainkey" } },
            UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "outbound.google_workspace_dkim_selector" } },
        }));
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        var updated = await domains.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new OutboundSettings { GoogleWorkspaceDkimSelector = " Google " } },
            UpdateMask = new Google.Protobuf.WellKnownTypes.FieldMask { Paths = { "outbound.google_workspace_dkim_selector" } },
        });
        Assert.Equal(Selector, updated.Outbound.GoogleWorkspaceDkimSelector);
        Assert.True(updated.Outbound.GoogleWorkspace);
        await _gw.WaitAppliedAsync(name, updated.Etag);
        check = await domains.CheckDomainAsync(new CheckDomainRequest { Name = name });
        Assert.DoesNotContain("OUTBOUND_GOOGLE_WORKSPACE", check.ToString(), StringComparison.Ordinal);

        // Unsigned; signed by another domain (valid for that domain); signed with an attacker's key under the customer's
        // name and selector; the body changed after signing; a signature over part of the body only: 550 at DATA.
        data = await SendAsync(from, to, Message(from, to));
        Assert.StartsWith("550 5.7.1", data, StringComparison.Ordinal);
        Assert.Contains($"without a DKIM signature of {name}", data, StringComparison.Ordinal);
        _gw.Dns.AddTxtParts($"{Selector}._domainkey.{other}", $"v=DKIM1; k=rsa; p={otherKey.PublicKey}".Chunk(255).Select(c => new string(c)));
        data = await SendAsync(from, to, await OpensslSignAsync(Message(from, to), other, Selector, otherKey.PemFile));
        Assert.StartsWith("550 5.7.1", data, StringComparison.Ordinal);
        data = await SendAsync(from, to, await OpensslSignAsync(Message(from, to), name, Selector, attackerKey.PemFile));
        Assert.StartsWith("550 5.7.1", data, StringComparison.Ordinal);
        Assert.Contains("does not verify", data, StringComparison.Ordinal);
        var signed = await OpensslSignAsync(Message(from, to), name, Selector, customerKey.PemFile);
        data = await SendAsync(from, to, signed.Replace("Hello from Google.", "Hello from Google. Wire the money.", StringComparison.Ordinal));
        Assert.StartsWith("550 5.7.1", data, StringComparison.Ordinal);
        Assert.Contains("does not verify", data, StringComparison.Ordinal);
        data = await SendAsync(from, to, await OpensslSignAsync(Message(from, to), name, Selector, customerKey.PemFile, bodyLength: true));
        Assert.StartsWith("550 5.7.1", data, StringComparison.Ordinal);
        Assert.Contains("(l=)", data, StringComparison.Ordinal);
        var old = DateTimeOffset.UtcNow.AddDays(-8).ToUnixTimeSeconds();
        data = await SendAsync(from, to, await OpensslSignAsync(Message(from, to), name, Selector, customerKey.PemFile, time: old));
        Assert.StartsWith("550 5.7.1", data, StringComparison.Ordinal);
        Assert.Contains("older than 7 days", data, StringComparison.Ordinal);
        Assert.Empty(mx.Messages);

        // The customer's key: relayed, signed by openssl over a hand-canonicalised header, and by MimeKit as Google signs.
        data = await SendAsync(from, to, signed);
        Assert.StartsWith("250", data, StringComparison.Ordinal);
        data = await SendAsync(from, to, MimeKitSign(Message(from, to), name, Selector, customerKey.PemFile));
        Assert.StartsWith("250", data, StringComparison.Ordinal);
        await mx.WaitForMessagesAsync(2, TimeSpan.FromSeconds(30));
        Assert.Contains(mx.Messages, m => m.Text.Contains("Hello from Google.", StringComparison.Ordinal));
    }

    private async Task<string> SendAsync(string from, string to, string message)
    {
        var (rcpt, data) = await PostfixSmtpClient.SendAsync(_gw.Postfix.SmtpEndPoint, from, [to], message, Google);
        Assert.True(rcpt[0].IsPositive, rcpt[0].ToString()); // RCPT cannot see the signature: the PolicyDaemon accepts the range
        return data!.ToString();
    }

    private static string Message(string from, string to) =>
        $"Received: by mail-sor-f41.google.com with SMTPS id test\r\n" +
        $"From: Chief <{from}>\r\nTo: <{to}>\r\nSubject:  via   Google\t Workspace \r\n" +
        $"Date: {DateTimeOffset.UtcNow:R}\r\nMessage-ID: <{Guid.NewGuid():N}@mail.gmail.test>\r\n\r\nHello from Google.\r\n\r\n\r\n";

    private async Task<(string PemFile, string PublicKey)> NewKeyAsync(string label)
    {
        var pem = Path.Combine(_dir, label + ".pem");
        await ProcessRunner.RunAsync("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", pem);
        var der = Path.Combine(_dir, label + ".pub.der");
        await ProcessRunner.RunAsync("openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER", "-out", der);
        return (pem, Convert.ToBase64String(await File.ReadAllBytesAsync(der)));
    }

    /// <summary>
    /// A DKIM-Signature (RFC 6376) made without MimeKit: c=relaxed/simple canonicalised here by hand (§3.4.2, §3.4.3),
    /// the body hashed with SHA-256, the header hash signed by <c>openssl dgst -sha256 -sign</c> (RSASSA-PKCS1-v1_5).
    /// </summary>
    private async Task<string> OpensslSignAsync(string message, string domain, string selector, string pemFile, bool bodyLength = false, long? time = null)
    {
        var split = message.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        var headers = message[..(split + 2)];
        var body = message[(split + 4)..];
        while (body.EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            body = body[..^2]; // simple body: trailing empty lines removed
        }

        var bodyHash = Convert.ToBase64String(SHA256.HashData(Encoding.ASCII.GetBytes(body)));
        string[] signed = ["from", "to", "subject", "date", "message-id"];
        var lines = headers.Split("\r\n", StringSplitOptions.RemoveEmptyEntries);
        var canonical = new StringBuilder();
        foreach (var h in signed)
        {
            var line = lines.Last(l => l.StartsWith(h + ":", StringComparison.OrdinalIgnoreCase));
            canonical.Append(Relaxed(line)).Append("\r\n");
        }

        var value = $"v=1; a=rsa-sha256; c=relaxed/simple; d={domain}; s={selector}; t={time ?? DateTimeOffset.UtcNow.ToUnixTimeSeconds()}; " +
                    (bodyLength ? $"l={body.Length}; " : string.Empty) + $"h={string.Join(':', signed)}; bh={bodyHash}; b=";
        canonical.Append(Relaxed("DKIM-Signature: " + value));
        var input = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        await File.WriteAllTextAsync(input, canonical.ToString(), Encoding.ASCII);
        await ProcessRunner.RunAsync("openssl", "dgst", "-sha256", "-sign", pemFile, "-out", input + ".sig", input);
        var signature = Convert.ToBase64String(await File.ReadAllBytesAsync(input + ".sig"));
        var result = $"DKIM-Signature: {value}{signature}\r\n" + message;
        return bodyLength ? result[..^2] + "Appended by someone else.\r\n" : result;
    }

    /// <summary>RFC 6376 §3.4.2 for one unfolded header line.</summary>
    private static string Relaxed(string line)
    {
        var colon = line.IndexOf(':', StringComparison.Ordinal);
        var v = string.Join(' ', line[(colon + 1)..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries));
        return line[..colon].Trim().ToLowerInvariant() + ":" + v;
    }

    private static string MimeKitSign(string text, string domain, string selector, string pemFile)
    {
        using var input = new MemoryStream(Encoding.ASCII.GetBytes(text));
        var message = MimeMessage.Load(input);
        var signer = new DkimSigner(pemFile, domain, selector)
        {
            HeaderCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
            BodyCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
        };
        var options = FormatOptions.Default.Clone();
        options.NewLineFormat = NewLineFormat.Dos;
        signer.Sign(options, message, [HeaderId.From, HeaderId.To, HeaderId.Subject, HeaderId.Date, HeaderId.MessageId]);
        using var output = new MemoryStream();
        message.WriteTo(options, output);
        return Encoding.ASCII.GetString(output.ToArray());
    }
}
