using System.Net;
using System.Net.Sockets;
using Gateway.Core.Domains;
using Gateway.ControlPlane.Onboarding;
using ControlPlane.Tests.Spf;
using Gateway.Core;

namespace ControlPlane.Tests.Onboarding;

/// <summary>The connection test over real loopback sockets; host names answered from a zone table.</summary>
[Trait("Kind", "Integration")]
public sealed class ConnectionTesterTests
{
    private static ConnectionTester Tester(ZoneDns dns, bool allowLoopback = true, double timeoutSeconds = 2) =>
        new(dns, new OnboardingOptions { ConnectTimeout = TimeSpan.FromSeconds(timeoutSeconds) },
            new GatewayOptions { AllowLoopbackDestinations = allowLoopback },
            new Gateway.ControlPlane.Onboarding.SmtpTlsProbe(new Gateway.Core.Tls.CertificateVerifier([]), new GatewayOptions()));

    private static InboundServer Row(string host, int port, string recipient = "*@example.com") => new(recipient, host, port, 10);

    [Fact]
    public async Task TestAsync_HostThatNeverAnswers_TimesOutAtTheLimit()
    {
        // A listener whose accept queue is full: Linux drops further SYNs, so a connect hangs as it would
        // towards a firewalled host.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(0);
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var fillers = new List<Socket>();
        try
        {
            for (var i = 0; i < 16; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                fillers.Add(s);
                // Generous: a connect with room in the queue completes in microseconds even on a busy machine;
                // one that does not complete in this time had its SYN dropped, so the queue is full.
                using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(1500));
                try
                {
                    await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }

            var result = await Tester(new ZoneDns(), timeoutSeconds: 0.5).TestAsync([Row("127.0.0.1", port)], CancellationToken.None);

            Assert.False(result.Success);
            var only = Assert.Single(result.Results);
            Assert.Equal("timed out after 0.5 s", only.Error);
            Assert.True(only.Elapsed >= TimeSpan.FromMilliseconds(400), only.Elapsed.ToString());
        }
        finally
        {
            fillers.ForEach(f => f.Dispose());
        }
    }

    [Fact]
    public async Task TestAsync_SameHostAndPortOnSeveralRows_TestedOnce()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        var result = await Tester(new ZoneDns()).TestAsync(
            [Row("127.0.0.1", port), Row("127.0.0.1", port, "john@example.com"), Row("127.0.0.1", port, "sophie@example.com")], CancellationToken.None);

        Assert.True(result.Success);
        Assert.Equal(ConnectionTester.SuccessMessage, result.Message);
        Assert.Single(result.Results);
    }

    [Fact]
    public async Task TestAsync_NameResolvingToLoopbackWhenNotAllowed_RefusedWithoutConnecting()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var dns = new ZoneDns().A("sneaky.example.net", "127.0.0.1");

        var result = await Tester(dns, allowLoopback: false).TestAsync([Row("sneaky.example.net", port)], CancellationToken.None);

        Assert.False(result.Success);
        Assert.Equal("refused: sneaky.example.net resolves only to addresses the gateway does not connect to (127.0.0.1: a loopback address (Gateway:AllowLoopbackDestinations is off))",
            Assert.Single(result.Results).Error);
        Assert.False(listener.Pending());
    }

    [Theory]
    [InlineData("::ffff:127.0.0.1")]
    [InlineData("::127.0.0.1")]
    [InlineData("64:ff9b::7f00:1")]
    public async Task TestAsync_NameResolvingToAnIpv6FormOfLoopback_Refused_NeverConnected(string address)
    {
        using var listener = new TcpListener(IPAddress.IPv6Any, 0) { Server = { DualMode = true } };
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var dns = new ZoneDns().A("sneaky6.example.net", address);

        var result = await Tester(dns, allowLoopback: false).TestAsync([Row("sneaky6.example.net", port)], CancellationToken.None);

        Assert.False(result.Success);
        Assert.StartsWith(ConnectionTester.FailureMessage, result.Message, StringComparison.Ordinal);
        Assert.Contains("refused: sneaky6.example.net resolves only to addresses the gateway does not connect to", Assert.Single(result.Results).Error, StringComparison.Ordinal);
        Assert.Contains("a loopback address", result.Results[0].Error, StringComparison.Ordinal);
        Assert.False(listener.Pending());
    }

    [Theory]
    [InlineData("169.254.169.254", "link-local")]
    [InlineData("0.0.0.0", "unspecified")]
    [InlineData("::ffff:169.254.169.254", "link-local")]
    [InlineData("fe80::1", "link-local")]
    [InlineData("ff02::1", "multicast")]
    public async Task TestAsync_LiteralOrNameToForbiddenRange_RefusedWithTheRange(string address, string kind)
    {
        var dns = new ZoneDns().A("meta.example.net", address);
        var byName = await Tester(dns).TestAsync([Row("meta.example.net", 25)], CancellationToken.None);
        Assert.Contains($"a {kind} address", Assert.Single(byName.Results).Error, StringComparison.Ordinal);
        var byLiteral = await Tester(new ZoneDns()).TestAsync([Row(address, 25)], CancellationToken.None);
        Assert.Contains($"a {kind} address", Assert.Single(byLiteral.Results).Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TestAsync_NameWithTwoAddressesFirstDown_ConnectsToTheSecond()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        // 127.0.0.2 has nothing on the port (refused), 127.0.0.1 has the listener.
        var dns = new ZoneDns().A("mail.example.net", "127.0.0.2", "127.0.0.1");
        var result = await Tester(dns).TestAsync([Row("mail.example.net", port)], CancellationToken.None);

        var only = Assert.Single(result.Results);
        Assert.True(only.Connected, only.Error);
        Assert.Equal("127.0.0.1", only.Address);
    }

    [Fact]
    public async Task TestAsync_DnsFailure_SaysResolutionFailed()
    {
        var dns = new ZoneDns().Timeout("mail.example.net");
        var result = await Tester(dns).TestAsync([Row("mail.example.net", 25)], CancellationToken.None);

        Assert.False(result.Success);
        Assert.StartsWith("cannot resolve mail.example.net:", Assert.Single(result.Results).Error, StringComparison.Ordinal);
    }
}
