using System.Net;

namespace Gateway.Deliverer.Protection;

/// <summary>Whether the intake scans (requirements §9). <see cref="Off"/> is for test set-ups without engines only.</summary>
public enum ProtectionMode
{
    /// <summary>Every message is scanned before the intake's 250; a failing scanner means 451 unless the domain says pass.</summary>
    Scan,

    /// <summary>Nothing is scanned and nothing says so in the message: never in production (logged as a warning at start).</summary>
    Off,
}

/// <summary>Who looks for malware.</summary>
public enum MalwareScanner
{
    /// <summary>The Deliverer sends the message to clamd (INSTREAM) itself, at the same time as it asks rspamd.</summary>
    Clamd,

    /// <summary>rspamd's antivirus module asks clamd; its <c>CLAM_VIRUS</c> / <c>CLAM_VIRUS_FAIL</c> symbols are the verdict.</summary>
    Rspamd,
}

/// <summary>The scanning engines and how the intake uses them (<c>Gateway:Protection</c>; docs/protection.md).</summary>
public sealed class ProtectionOptions
{
    public const string Section = "Gateway:Protection";

    public static readonly string[] DefaultRspamdUrls = ["http://127.0.0.1:11333"];
    public static readonly string[] DefaultClamdServers = ["127.0.0.1:3310"];

    public ProtectionMode Mode { get; set; } = ProtectionMode.Scan;

    /// <summary>
    /// rspamd normal workers (<c>http://host:port</c>), asked at <c>/checkv2</c>. Several: each message starts at the
    /// next one (spreading the load) and fails over to the others. No default array here: the configuration binder
    /// would append configured entries to it.
    /// </summary>
    public string[] RspamdUrls { get; set; } = [];

    /// <summary>clamd servers as <c>host:port</c> or <c>unix:/path</c> (<c>INSTREAM</c>), several as for rspamd.</summary>
    public string[] ClamdServers { get; set; } = [];

    public MalwareScanner MalwareScanner { get; set; } = MalwareScanner.Clamd;

    /// <summary>Which messages the Deliverer sends to clamd (<see cref="MalwareScanner.Clamd"/>): those with attachments (default) or every one.</summary>
    public MalwareScope MalwareScope { get; set; } = MalwareScope.Attachments;

    /// <summary>One attempt at one rspamd (rspamd's own <c>task_timeout</c> is 8 s).</summary>
    public TimeSpan RspamdTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>One attempt at one clamd. Keep timeout × servers under Postfix's <c>smtpd_proxy_timeout</c> (100 s).</summary>
    public TimeSpan ClamdTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A server that failed is tried after the others for this long.</summary>
    public TimeSpan ServerBackoff { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The authserv-id of the <c>Authentication-Results</c> header (RFC 8601); empty: <c>Gateway:Queue:HostName</c>.</summary>
    public string AuthServId { get; set; } = string.Empty;

    /// <summary>
    /// rspamd's per-request <c>Settings</c> header (JSON) sent with <see cref="MalwareScanner.Clamd"/>: rspamd's own
    /// antivirus check is skipped, since the Deliverer asks clamd itself. Empty: none. A request with settings is not
    /// matched against rspamd's settings module rules (docs/protection.md).
    /// </summary>
    public string RspamdSettings { get; set; } = """{"symbols_disabled":["CLAM_VIRUS"]}""";

    public IReadOnlyList<Uri> EffectiveRspamdUrls => (RspamdUrls.Length > 0 ? RspamdUrls : DefaultRspamdUrls).Select(u => new Uri(u.TrimEnd('/') + "/")).ToList();

    public IReadOnlyList<EndPoint> EffectiveClamdServers =>
        MalwareScanner == MalwareScanner.Clamd ? (ClamdServers.Length > 0 ? ClamdServers : DefaultClamdServers).Select(ParseEndPoint).ToList() : [];

    internal static bool IsValid(ProtectionOptions o) =>
        (o.RspamdUrls.Length == 0 || o.RspamdUrls.All(u => Uri.TryCreate(u, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")) &&
        o.ClamdServers.All(s => TryParseEndPoint(s, out _)) &&
        o.RspamdTimeout > TimeSpan.Zero && o.ClamdTimeout > TimeSpan.Zero && o.ServerBackoff >= TimeSpan.Zero &&
        (o.RspamdSettings.Length == 0 || IsJsonObject(o.RspamdSettings)) &&
        !o.AuthServId.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is ';' or '(' or ')');

    public static bool TryParseEndPoint(string text, out EndPoint endPoint)
    {
        endPoint = null!;
        if (text.StartsWith("unix:", StringComparison.Ordinal) && text.Length > 5)
        {
            endPoint = new System.Net.Sockets.UnixDomainSocketEndPoint(text[5..]);
            return true;
        }

        if (IPEndPoint.TryParse(text, out var ip) && ip.Port != 0)
        {
            endPoint = ip;
            return true;
        }

        var colon = text.LastIndexOf(':');
        if (colon > 0 && int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
            && port is > 0 and < 65536 && Uri.CheckHostName(text[..colon]) == UriHostNameType.Dns)
        {
            endPoint = new DnsEndPoint(text[..colon], port);
            return true;
        }

        return false;
    }

    private static EndPoint ParseEndPoint(string text) => TryParseEndPoint(text, out var e) ? e : throw new FormatException($"not host:port or unix:/path: {text}");

    private static bool IsJsonObject(string text)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(text);
            return doc.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object;
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }
}
