using Gateway.Core.Routing;
using Gateway.Core.Domains;

namespace Gateway.Core.Tls;

/// <summary>
/// What one delivery connection demands of TLS: the mode, the name a certificate must carry (verify), and where the demand
/// comes from (an inbound row, or a recipient domain's MTA-STS policy) for the messages logged when it is not met.
/// </summary>
/// <param name="Report">MTA-STS <c>testing</c>: deliver as opportunistic, but say in the log what enforcement would have refused.</param>
public sealed record TlsRequirement(TlsMode Mode, string? Name, string Source, bool Report = false)
{
    public static readonly TlsRequirement Opportunistic = new(TlsMode.Opportunistic, null, "default");
}

/// <summary>What a delivery connection got: STARTTLS offered, the negotiated protocol (null: no TLS), the certificate check.</summary>
public sealed record TlsObservation(bool StartTlsOffered, string? Protocol, bool Verified, string? Problem)
{
    public static readonly TlsObservation None = new(false, null, false, null);
}

/// <summary>
/// TLS to customer servers and under MTA-STS as pure functions (requirements §10; docs/outbound.md "TLS modes"): which
/// requirement applies to a route host, whether a connection met it (else a temporary failure: the next host is tried, the
/// message retried; never a bounce, as Postfix defers on TLS policy failures), and the words the message log keeps.
/// </summary>
public static class TlsPolicy
{
    /// <summary>
    /// The requirement for <paramref name="host"/> of an inbound route: the strictest mode among the domain's rows naming that
    /// host and port (two rows for one server cannot make it weaker), with that row's <c>tls_name</c> or the host name.
    /// </summary>
    public static TlsRequirement ForInboundHost(IReadOnlyList<InboundServer> rows, RouteHost host)
    {
        ArgumentNullException.ThrowIfNull(rows);
        InboundServer? strictest = null;
        foreach (var row in rows)
        {
            var port = row.Port == 0 ? InboundServer.DefaultPort : row.Port;
            if (port == host.Port && string.Equals(row.Host, host.Host, StringComparison.OrdinalIgnoreCase) && (strictest is null || row.Tls > strictest.Tls))
            {
                strictest = row;
            }
        }

        return strictest is null || strictest.Tls == TlsMode.Opportunistic
            ? TlsRequirement.Opportunistic
            : new TlsRequirement(strictest.Tls, strictest.Tls == TlsMode.Verify ? strictest.TlsName ?? host.Host : null, $"tls {Name(strictest.Tls)} of inbound server {host}");
    }

    /// <summary>Null when the connection met the requirement; else why not (logged as the attempt's reply, a temporary failure).</summary>
    public static string? Unmet(TlsRequirement requirement, TlsObservation observed)
    {
        ArgumentNullException.ThrowIfNull(requirement);
        ArgumentNullException.ThrowIfNull(observed);
        if (requirement.Mode == TlsMode.Opportunistic)
        {
            return null;
        }

        if (observed.Protocol is null)
        {
            return observed.StartTlsOffered
                ? $"TLS required ({requirement.Source}) but the STARTTLS handshake failed"
                : $"TLS required ({requirement.Source}) but the server does not offer STARTTLS";
        }

        return requirement.Mode == TlsMode.Verify && !observed.Verified
            ? $"TLS certificate not verified ({requirement.Source}, name {requirement.Name}): {observed.Problem ?? "unknown reason"}"
            : null;
    }

    /// <summary>The message log's <c>tls</c> field: <c>none</c>, <c>TLSv1.3 verified</c>, <c>TLSv1.2 not verified</c>.</summary>
    public static string Describe(TlsObservation observed)
    {
        ArgumentNullException.ThrowIfNull(observed);
        return observed.Protocol is null ? "none" : observed.Protocol + (observed.Verified ? " verified" : " not verified");
    }

    /// <summary>The API / docs spelling of a mode.</summary>
    public static string Name(TlsMode mode) => mode switch
    {
        TlsMode.Required => "required",
        TlsMode.Verify => "verify",
        _ => "opportunistic",
    };

    /// <summary>The protocol as the log spells it (<c>TLSv1.3</c>), from <see cref="System.Security.Authentication.SslProtocols"/>.</summary>
    public static string ProtocolName(System.Security.Authentication.SslProtocols protocol) => protocol switch
    {
        System.Security.Authentication.SslProtocols.Tls13 => "TLSv1.3",
        System.Security.Authentication.SslProtocols.Tls12 => "TLSv1.2",
#pragma warning disable SYSLIB0039, CA5397 // old protocols are only named here, never enabled
        System.Security.Authentication.SslProtocols.Tls11 => "TLSv1.1",
        System.Security.Authentication.SslProtocols.Tls => "TLSv1.0",
#pragma warning restore SYSLIB0039, CA5397
        _ => protocol.ToString(),
    };
}
