using System.Net;
using System.Net.Sockets;
using System.Text;
using Gateway.Core.Snapshot;
using Gateway.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace Deliverer.Tests;

/// <summary>
/// Security review M13: the policy, socketmap and intake listeners on Unix sockets instead of TCP on loopback, the way
/// deploy/ sets them up: a setgid directory of group <c>postfix</c> (so the sockets get Postfix's group), the sockets
/// with mode 660 (<c>Gateway:UnixSockets:Mode</c>). A real Postfix (its smtpd running as user postfix) asks the policy
/// service and the socketmap and hands mail to the intake through them.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class UnixSocketListenerTests
{
    private const UnixFileMode Mode660 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite;

    [Fact]
    public async Task Listeners_OnUnixSocketsInAPostfixGroupDirectory_Mode660_ServePostfix()
    {
        var dir = Path.Combine(Path.GetTempPath(), "gw-sock-" + Guid.NewGuid().ToString("N")[..8]);
        await ProcessRunner.RunAsync("install", "-d", "-g", "postfix", "-m", "2770", dir);
        try
        {
            var policy = Path.Combine(dir, "policy.sock");
            var socketmap = Path.Combine(dir, "socketmap.sock");
            var intake = Path.Combine(dir, "intake.sock");
            await using var gw = await WholeGateway.StartAsync(
                $"--PolicyDaemon:PolicyEndpoint=unix:{policy}", $"--PolicyDaemon:SocketmapEndpoint=unix:{socketmap}",
                $"--Gateway:Deliverer:Listen=unix:{intake}", "--Gateway:UnixSockets:Mode=660");
            Assert.Equal(intake, gw.IntakeSocket);
            foreach (var path in new[] { policy, socketmap, intake })
            {
                await Eventually.WaitAsync(() => File.GetUnixFileMode(path) == Mode660, TimeSpan.FromSeconds(10), $"{path} mode 660");
                Assert.Equal("postfix", (await ProcessRunner.RunAsync("stat", "-c", "%G", path)).Trim());
                Assert.Equal(FileAttributes.None, File.GetAttributes(path) & FileAttributes.Directory);
            }

            await using var sink = SmtpSink.Start("127.0.0.2");
            var (name, recipient) = await PostfixRuleTests.RulesDomainAsync(gw, sink);

            // The policy service over its socket: an unmanaged domain is refused, an envelope rule applies at RCPT.
            var (rcpt, _) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "s@remote.test", ["bob@unmanaged.example"]);
            Assert.Contains("NO-DOMAIN", rcpt[0].ToString(), StringComparison.Ordinal);
            (rcpt, _) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "x@blocked.example", [recipient]);
            Assert.Equal($"550 5.7.1 <{recipient}>: Recipient address rejected: Sender blocked by policy", rcpt[0].ToString());

            // The intake over its socket: the content rule is its DATA reply; a clean message is queued and delivered; the
            // client it learned by XFORWARD (trusted on the socket) is the one quarantine rules see.
            var (_, data) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "s@remote.test", [recipient], PostfixRuleTests.Message("win the lottery"));
            Assert.StartsWith("550", data!.ToString(), StringComparison.Ordinal);
            (_, data) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "s@remote.test", [recipient], PostfixRuleTests.Message("through sockets"));
            Assert.Equal(250, data!.Code);
            await sink.WaitForMessagesAsync(1, TimeSpan.FromSeconds(30));
            Assert.Contains("through sockets", sink.Messages.Single().Text, StringComparison.Ordinal);
            (_, data) = await PostfixSmtpClient.SendAsync(gw.Postfix.SmtpEndPoint, "s@remote.test", [recipient], PostfixRuleTests.Message("held one"),
                localAddress: IPAddress.Parse("127.0.0.66"));
            Assert.Equal(250, data!.Code);
            var store = gw.ControlPlane.Services.GetRequiredService<Gateway.Core.Quarantine.QuarantineStore>();
            await Eventually.WaitAsync(async () => await store.CountAsync(name) == 1, TimeSpan.FromSeconds(30), "quarantined by the XFORWARD client");
            Assert.Single(sink.Messages);

            // Straight to the intake's socket, as any local process in the group could: it speaks SMTP.
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(intake));
            var buffer = new byte[512];
            var n = await socket.ReceiveAsync(buffer);
            Assert.StartsWith("220 ", Encoding.ASCII.GetString(buffer, 0, n), StringComparison.Ordinal);
            Assert.True(gw.PolicyDaemon.Services.GetRequiredService<ConfigSnapshot>().IsLoaded);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
