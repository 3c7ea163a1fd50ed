using System.Security.Cryptography.X509Certificates;

namespace Gateway.Core.Tls;

/// <summary>Settings of <c>Gateway:Tls</c>: what certificates of other servers are trusted (requirements §10).</summary>
public sealed class TlsOptions
{
    public const string Section = "Gateway:Tls";

    /// <summary>
    /// A PEM file of extra trusted root certificates (e.g. a customer's private CA), besides the system trust store: used
    /// for <c>tls: verify</c> rows, MTA-STS policy fetches and MX certificates under MTA-STS, and the connection test.
    /// </summary>
    public string? TrustedCaFile { get; set; }

    /// <summary>The certificates of <see cref="TrustedCaFile"/> (empty without one).</summary>
    /// <exception cref="InvalidOperationException">The file cannot be read or holds no certificate.</exception>
    public X509Certificate2Collection LoadTrustedRoots()
    {
        var roots = new X509Certificate2Collection();
        if (string.IsNullOrWhiteSpace(TrustedCaFile))
        {
            return roots;
        }

        try
        {
            roots.ImportFromPemFile(TrustedCaFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new InvalidOperationException($"Gateway:Tls:TrustedCaFile: {TrustedCaFile} cannot be read: {e.Message}", e);
        }

        return roots.Count > 0 ? roots : throw new InvalidOperationException($"Gateway:Tls:TrustedCaFile: {TrustedCaFile} holds no PEM certificate");
    }
}
