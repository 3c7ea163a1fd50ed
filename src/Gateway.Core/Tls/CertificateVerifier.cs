using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Gateway.Core.Tls;

/// <summary>Whether a server certificate verified, and why not.</summary>
public readonly record struct CertificateCheck(bool Verified, string? Problem);

/// <summary>
/// Certificate verification for the gateway's TLS clients (requirements §10): the chain must end at a root of the system
/// trust store or of <c>Gateway:Tls:TrustedCaFile</c>, and the certificate must name the host the client asked for (the
/// name checks of <see cref="SslStream"/>: subjectAltName DNS names with RFC 6125 wildcards, or an IP address). Revocation
/// is not checked (no CRL/OCSP fetches from the delivery path; as Postfix does by default).
/// </summary>
public sealed class CertificateVerifier(X509Certificate2Collection extraRoots)
{
    public static CertificateVerifier FromOptions(TlsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new CertificateVerifier(options.LoadTrustedRoots());
    }

    /// <summary>Judges the outcome of a handshake's own validation (<paramref name="errors"/>, against the system store) and, for chain errors, the extra roots.</summary>
    public CertificateCheck Check(X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null || errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable))
        {
            return new CertificateCheck(false, "the server sent no certificate");
        }

        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch))
        {
            return new CertificateCheck(false, "the certificate does not name the host (" + Names(certificate) + ")");
        }

        if (!errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors))
        {
            return new CertificateCheck(true, null);
        }

        if (extraRoots.Count > 0)
        {
            using var custom = new X509Chain();
            custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            custom.ChainPolicy.CustomTrustStore.AddRange(extraRoots);
            custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            if (chain is not null)
            {
                foreach (var element in chain.ChainElements)
                {
                    custom.ChainPolicy.ExtraStore.Add(element.Certificate);
                }
            }

            using var leaf = new X509Certificate2(certificate);
            if (custom.Build(leaf))
            {
                return new CertificateCheck(true, null);
            }

            return new CertificateCheck(false, "the certificate does not chain to a trusted root (" + Status(custom) + ")");
        }

        return new CertificateCheck(false, "the certificate does not chain to a trusted root (" + (chain is null ? "no chain" : Status(chain)) + ")");
    }

    private static string Status(X509Chain chain) =>
        chain.ChainStatus.Length == 0 ? "unknown" : string.Join(", ", chain.ChainStatus.Select(s => s.Status.ToString()).Distinct());

    private static string Names(X509Certificate certificate)
    {
        using var c = new X509Certificate2(certificate);
        var san = c.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
        var names = san?.EnumerateDnsNames().ToList() ?? [];
        return names.Count > 0 ? "it names " + string.Join(", ", names.Take(5)) : "subject " + c.Subject;
    }
}
