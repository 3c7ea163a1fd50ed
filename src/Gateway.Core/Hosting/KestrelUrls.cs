using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;

namespace Gateway.Core.Hosting;

/// <summary>
/// Binds <c>http://host:port</c> URLs to Kestrel with explicit protocols. Needed where one program
/// serves two kinds of listeners (gRPC over cleartext HTTP/2 needs an HTTP/2-only endpoint, while
/// curl, JSON and Prometheus scrapers speak HTTP/1.1), which <c>UseUrls</c> cannot express.
/// </summary>
public static class KestrelUrls
{
    /// <summary>Splits a <c>urls</c>-style list (<c>;</c>-separated); empty entries are ignored.</summary>
    public static IReadOnlyList<string> Split(string? urls) =>
        (urls ?? string.Empty).Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>
    /// Listens on <paramref name="url"/> (http only) with <paramref name="protocols"/>; <paramref name="bound"/>
    /// receives the listen options, whose endpoint carries the real port once the server has started.
    /// </summary>
    /// <param name="certificate">For <c>https://</c> URLs: the server certificate (<see cref="LoadCertificate"/>).</param>
    public static void Bind(KestrelServerOptions kestrel, string url, HttpProtocols protocols, Action<ListenOptions>? bound = null,
        X509Certificate2? certificate = null)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        if (!TryParse(url, out var host, out var port, out var error))
        {
            throw new InvalidOperationException(error);
        }

        var tls = url.StartsWith(HttpsScheme, StringComparison.OrdinalIgnoreCase);
        if (tls && certificate is null)
        {
            throw new InvalidOperationException($"'{url}' needs a certificate: set {CertificatePathKey} (PEM or PFX) and, for PEM, {CertificateKeyPathKey}");
        }

        void Configure(ListenOptions o)
        {
            o.Protocols = protocols;
            if (tls)
            {
                // TLS 1.2+; HTTP/2 is negotiated by ALPN (gRPC needs it).
                o.UseHttps(certificate!);
                Tls.AddOrUpdate(o, Marker);
            }

            bound?.Invoke(o);
        }

        switch (host)
        {
            case "localhost":
                kestrel.ListenLocalhost(port, Configure);
                break;
            case "*" or "+" or "0.0.0.0" or "[::]" or "::":
                kestrel.ListenAnyIP(port, Configure);
                break;
            default:
                kestrel.Listen(IPAddress.Parse(host.Trim('[', ']')), port, Configure);
                break;
        }
    }

    /// <summary>Kestrel's own certificate settings, used for every <c>https://</c> listener of a program.</summary>
    public const string CertificatePathKey = "Kestrel:Certificates:Default:Path";

    public const string CertificateKeyPathKey = "Kestrel:Certificates:Default:KeyPath";

    public const string CertificatePasswordKey = "Kestrel:Certificates:Default:Password";

    private const string HttpsScheme = "https://";

    private static readonly ConditionalWeakTable<ListenOptions, object> Tls = [];
    private static readonly object Marker = new();

    /// <summary>
    /// The certificate named by Kestrel's settings (<c>Kestrel:Certificates:Default:Path</c>: a PEM certificate with
    /// <c>KeyPath</c>, or a PFX with <c>Password</c>); null when none is configured.
    /// </summary>
    public static X509Certificate2? LoadCertificate(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var path = configuration[CertificatePathKey];
        if (string.IsNullOrEmpty(path))
        {
            return null;
        }

        var keyPath = configuration[CertificateKeyPathKey];
        var password = configuration[CertificatePasswordKey];
        return !string.IsNullOrEmpty(keyPath)
            ? X509Certificate2.CreateFromPemFile(path, keyPath)
            : X509CertificateLoader.LoadPkcs12FromFile(path, password);
    }

    /// <summary>The <c>http://ip:port</c> (or <c>https://</c>) a started listener is bound to.</summary>
    public static string Address(ListenOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var ep = options.IPEndPoint ?? throw new InvalidOperationException("not an IP listener");
        return $"{(Tls.TryGetValue(options, out _) ? "https" : "http")}://{(ep.Address.Equals(IPAddress.IPv6Any) || ep.Address.Equals(IPAddress.Any) ? "127.0.0.1" : ep.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ep.Address}]" : ep.Address.ToString())}:{ep.Port}";
    }

    /// <summary>Checks a URL: <c>http://</c>, a literal IP, <c>localhost</c> or a wildcard, and a port.</summary>
    public static bool TryParse(string url, out string host, out int port, out string error)
    {
        ArgumentNullException.ThrowIfNull(url);
        host = string.Empty;
        port = 0;
        var scheme = url.StartsWith("http://", StringComparison.OrdinalIgnoreCase) ? "http://"
            : url.StartsWith(HttpsScheme, StringComparison.OrdinalIgnoreCase) ? HttpsScheme : null;
        if (scheme is null)
        {
            error = $"'{url}': expected http://<ip>:<port> or https://<ip>:<port>";
            return false;
        }

        var rest = url[scheme.Length..].TrimEnd('/');
        var colon = rest.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(rest[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port) ||
            port > 65535)
        {
            error = $"'{url}': expected http(s)://<ip>:<port>";
            return false;
        }

        host = rest[..colon];
        if (host is not ("localhost" or "*" or "+") && !IPAddress.TryParse(host.Trim('[', ']'), out _))
        {
            error = $"'{url}': the host must be an IP address, localhost or *";
            return false;
        }

        error = string.Empty;
        return true;
    }
}
