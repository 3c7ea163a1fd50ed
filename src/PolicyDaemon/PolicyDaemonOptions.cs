using System.Net;
using Gateway.Core.Relay;

namespace Gateway.PolicyDaemon;

/// <summary>Settings of the PolicyDaemon (section <c>PolicyDaemon</c>; e.g. <c>PolicyDaemon__PolicyEndpoint</c>).</summary>
public sealed class PolicyDaemonOptions
{
    public const string Section = "PolicyDaemon";

    /// <summary>
    /// Where Postfix's <c>check_policy_service</c> connects: <c>ip:port</c> (<c>[v6]:port</c>) or
    /// <c>unix:/path</c>. Port 0 picks a free port (tests).
    /// </summary>
    public string PolicyEndpoint { get; set; } = "127.0.0.1:10040";

    /// <summary>Where Postfix's <c>socketmap:inet:…</c> tables connect; same forms as <see cref="PolicyEndpoint"/>.</summary>
    public string SocketmapEndpoint { get; set; } = "127.0.0.1:10041";

    /// <summary>
    /// The Postfix action for an accepted recipient (requirements §4: <c>OK</c>). Any access(5) action that permits
    /// works; it must permit, because deploy/postfix ends smtpd_relay_restrictions with <c>defer</c>.
    /// </summary>
    public string AcceptAction { get; set; } = "OK";

    /// <summary>
    /// How long a connection may sit idle between requests. Longer than Postfix's
    /// <c>smtpd_policy_service_max_idle</c> (300 s) so Postfix, not the daemon, closes idle connections:
    /// a request sent on a connection the server just closed costs Postfix a retry delay.
    /// </summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(330);

    /// <summary>How long the rest of a request may take once its first bytes arrived (Postfix writes a request at once).</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Longest attribute line of a policy request, in bytes.</summary>
    public int MaxLineLength { get; set; } = Protocol.PolicyLimits.Default.MaxLineLength;

    /// <summary>Most attribute lines in one policy request.</summary>
    public int MaxAttributes { get; set; } = Protocol.PolicyLimits.Default.MaxAttributes;

    /// <summary>Largest policy request, in bytes.</summary>
    public int MaxRequestBytes { get; set; } = Protocol.PolicyLimits.Default.MaxRequestBytes;

    /// <summary>Largest socketmap request payload, in bytes (Postfix keys are addresses or domains).</summary>
    public int MaxSocketmapRequest { get; set; } = 4096;

    /// <summary>Most concurrent connections per listener (Postfix holds one per smtpd process); 0: no limit.</summary>
    public int MaxConnections { get; set; } = 10_000;

    /// <summary>
    /// The HTTP/1.1 listener for <c>/healthz</c> and <c>/metrics</c> (Prometheus), an <c>http://ip:port</c> URL;
    /// empty turns it off. 10042: next to the policy (10040) and socketmap (10041) ports.
    /// </summary>
    public string HttpUrl { get; set; } = "http://127.0.0.1:10042";

    /// <summary>A separate listener for <c>/metrics</c> (http://ip:port); empty: <c>/metrics</c> is on <see cref="HttpUrl"/>.</summary>
    public string MetricsUrl { get; set; } = string.Empty;

    /// <summary><see cref="TransportMode.Deliverer"/> (default) or <see cref="TransportMode.Direct"/> (requirements §5).</summary>
    public TransportMode TransportMode { get; set; } = TransportMode.Deliverer;

    /// <summary>The Deliverer's intake as a Postfix transport:nexthop (requirements §5).</summary>
    public string DelivererNextHop { get; set; } = "smtp:[127.0.0.1]:10025";

    /// <summary>
    /// Also write every accepted recipient to its domain's message log (rejects are always written). Off by
    /// default: an accepted message is logged by the Deliverer when it arrives at the intake, and one Redis
    /// write per accepted RCPT costs about a third of the daemon's throughput on a 2-core host (docs/benchmarks.md).
    /// </summary>
    public bool LogAccepts { get; set; }

    internal Protocol.PolicyLimits Limits => new(MaxLineLength, MaxAttributes, MaxRequestBytes);

    /// <summary>Parses an endpoint setting; false when it is neither <c>ip:port</c> nor <c>unix:/absolute/path</c>.</summary>
    public static bool TryParseEndpoint(string? text, out EndPoint endPoint)
    {
        endPoint = new IPEndPoint(IPAddress.Loopback, 0);
        var s = text?.Trim() ?? string.Empty;
        if (s.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = s["unix:".Length..];
            if (!Path.IsPathRooted(path))
            {
                return false;
            }

            endPoint = new System.Net.Sockets.UnixDomainSocketEndPoint(path);
            return true;
        }

        if (!s.Contains(':', StringComparison.Ordinal) || s.EndsWith(':') || !IPEndPoint.TryParse(s, out var ip))
        {
            return false;
        }

        // IPEndPoint.TryParse reads "::1" as an address without port: require the [v6]:port form.
        if (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && !s.StartsWith('['))
        {
            return false;
        }

        endPoint = ip;
        return true;
    }

    /// <summary>True for a one-line printable ASCII text (what Postfix accepts in an action or a next hop).</summary>
    internal static bool IsOneLine(string? text) =>
        !string.IsNullOrWhiteSpace(text) && text.Length <= 512 && text.AsSpan().IndexOfAnyExceptInRange(' ', '~') < 0;
}
