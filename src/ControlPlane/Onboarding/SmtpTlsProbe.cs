using System.Net.Sockets;
using MailKit;
using MailKit.Net.Smtp;
using MailKit.Security;

using Gateway.Core;
using Gateway.Core.Tls;

namespace Gateway.ControlPlane.Onboarding;

/// <summary>What the SMTP part of a connection test saw.</summary>
/// <param name="Smtp">The server greeted and answered EHLO.</param>
/// <param name="Problem">Why SMTP or TLS failed; null when all went well.</param>
public sealed record SmtpTlsProbeResult(bool Smtp, TlsObservation Observation, string? Problem);

/// <summary>
/// The TLS part of the connection test (requirements §10: "the connection test reports TLS too"): on an open connection,
/// reads the greeting, sends EHLO, and when STARTTLS is offered makes the handshake and checks the certificate against the
/// system trust store or <c>Gateway:Tls:TrustedCaFile</c> and the name (the row's tls_name or host). Then QUIT; no mail is sent.
/// </summary>
public sealed class SmtpTlsProbe(CertificateVerifier certificates, GatewayOptions gateway)
{
    public async Task<SmtpTlsProbeResult> ProbeAsync(Socket socket, string name, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(socket);
        using var client = new SmtpClient { LocalDomain = "connection-test." + gateway.GatewayDomain, Timeout = (int)timeout.TotalMilliseconds, CheckCertificateRevocation = false };
        CertificateCheck? check = null;
        // Completes every handshake so the result can say what is wrong; the check is kept, never ignored.
#pragma warning disable CA5359 // a test that sends no mail: the check is reported, not enforced
        client.ServerCertificateValidationCallback = (_, certificate, chain, errors) =>
        {
            check = certificates.Check(certificate, chain, errors);
            return true;
        };
#pragma warning restore CA5359
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        limit.CancelAfter(timeout);
        try
        {
            await client.ConnectAsync(socket, name, ((System.Net.IPEndPoint)socket.RemoteEndPoint!).Port, SecureSocketOptions.StartTlsWhenAvailable, limit.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SslHandshakeException or System.Security.Authentication.AuthenticationException)
        {
            return new SmtpTlsProbeResult(true, new TlsObservation(true, null, false, e.Message), "the STARTTLS handshake failed: " + e.Message);
        }
        catch (Exception e) when (e is TimeoutException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            // MailKit's own Timeout throws TimeoutException; the linked limit cancels: a listener that never greets (not SMTP).
            return new SmtpTlsProbeResult(false, TlsObservation.None, "no SMTP answer in time");
        }
        catch (Exception e) when (e is SmtpProtocolException or SmtpCommandException or IOException or SocketException or ServiceNotConnectedException)
        {
            return new SmtpTlsProbeResult(false, TlsObservation.None, "no SMTP conversation: " + e.Message);
        }

        var observation = client.IsSecure
            ? new TlsObservation(true, TlsPolicy.ProtocolName(client.SslProtocol), check?.Verified == true, check?.Problem)
            : new TlsObservation(client.Capabilities.HasFlag(SmtpCapabilities.StartTLS), null, false, null);
        try
        {
            await client.DisconnectAsync(true, limit.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SmtpProtocolException or SmtpCommandException or IOException or OperationCanceledException or ServiceNotConnectedException or TimeoutException)
        {
        }

        return new SmtpTlsProbeResult(true, observation, null);
    }
}
