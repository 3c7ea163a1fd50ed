using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

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
    public static void Bind(KestrelServerOptions kestrel, string url, HttpProtocols protocols, Action<ListenOptions>? bound = null)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        if (!TryParse(url, out var host, out var port, out var error))
        {
            throw new InvalidOperationException(error);
        }

        void Configure(ListenOptions o)
        {
            o.Protocols = protocols;
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

    /// <summary>The <c>http://ip:port</c> a started listener is bound to.</summary>
    public static string Address(ListenOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var ep = options.IPEndPoint ?? throw new InvalidOperationException("not an IP listener");
        return $"http://{(ep.Address.Equals(IPAddress.IPv6Any) || ep.Address.Equals(IPAddress.Any) ? "127.0.0.1" : ep.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ep.Address}]" : ep.Address.ToString())}:{ep.Port}";
    }

    /// <summary>Checks a URL: <c>http://</c>, a literal IP, <c>localhost</c> or a wildcard, and a port.</summary>
    public static bool TryParse(string url, out string host, out int port, out string error)
    {
        ArgumentNullException.ThrowIfNull(url);
        host = string.Empty;
        port = 0;
        const string Scheme = "http://";
        if (!url.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            error = $"'{url}': only http:// URLs are supported (TLS terminates in front of the gateway)";
            return false;
        }

        var rest = url[Scheme.Length..].TrimEnd('/');
        var colon = rest.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(rest[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port) ||
            port > 65535)
        {
            error = $"'{url}': expected http://<ip>:<port>";
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
