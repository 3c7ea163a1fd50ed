using System.ComponentModel.DataAnnotations;
using System.Net;

namespace Gateway.Deliverer;

/// <summary>The Deliverer's own settings (<c>Gateway:Deliverer</c>); the queue's are <c>Gateway:Queue</c>.</summary>
public sealed class DelivererOptions
{
    public const string Section = "Gateway:Deliverer";

    /// <summary>
    /// Where the SMTP intake listens (requirements §1: 127.0.0.1:10025). Port 0 picks a free port (tests).
    /// <c>unix:/path</c>: a Unix socket (Postfix's <c>smtpd_proxy_filter = unix:…</c>), trusted like the trusted networks.
    /// </summary>
    [Required(AllowEmptyStrings = false)]
    public string Listen { get; set; } = "127.0.0.1:10025";

    /// <summary>
    /// Optional intake listeners that grant one direction only, for Postfix listeners whose policy requests carry
    /// <c>policy_context=inbound</c> / <c>outbound</c> (requirements §4.6): point that listener's
    /// <c>smtpd_proxy_filter</c> here and the intake applies the same scope. Empty: not opened.
    /// </summary>
    public string InboundListen { get; set; } = string.Empty;

    /// <inheritdoc cref="InboundListen"/>
    public string OutboundListen { get; set; } = string.Empty;

    /// <summary>
    /// Clients allowed to hand mail in, as addresses or CIDR ranges; empty: loopback (requirements §6). No default
    /// array here: the configuration binder would append configured entries to it instead of replacing it.
    /// </summary>
    public string[] TrustedNetworks { get; set; } = [];

    public static readonly string[] DefaultTrustedNetworks = ["127.0.0.0/8", "::1/128"];

    private string[] EffectiveTrustedNetworks => TrustedNetworks.Length > 0 ? TrustedNetworks : DefaultTrustedNetworks;

    /// <summary>requirements §6: message size limit, default 50 MB (advertised as SIZE, RFC 1870).</summary>
    [Range(1024, 1L << 31)]
    public long MaxMessageSize { get; set; } = 50L * 1024 * 1024;

    /// <summary>requirements §6: recipients per message (RFC 5321 §4.5.3.1.8 wants at least 100).</summary>
    [Range(1, 100_000)]
    public int MaxRecipients { get; set; } = 1000;

    /// <summary>Messages with this many Received headers are refused as looping (Postfix: hopcount_limit = 50).</summary>
    [Range(5, 500)]
    public int MaxHops { get; set; } = 50;

    /// <summary>
    /// At most this many intake sessions at once (requirements §11, bounded memory); one more is answered <c>421 4.3.2</c> and
    /// closed, and its client (Postfix) tries again later. Default 100, Postfix's <c>default_process_limit</c>: one Postfix
    /// never opens more, and the worst case is this many messages of <see cref="MaxMessageSize"/> in memory.
    /// </summary>
    public int MaxSessions { get; set; } = 100;

    /// <summary>
    /// The most bytes one client (XFORWARD ADDR, else the peer) may hold at once in unfinished spools of this process, the
    /// pieces of big messages still being received (requirements §11; <c>Intake/SpoolQuota.cs</c>). A message that would pass it
    /// gets <c>452 4.3.1 Insufficient system storage</c> at its end and its pieces are removed at once. 0: twice
    /// <see cref="MaxMessageSize"/> (two messages of the largest size at once).
    /// </summary>
    [Range(0, long.MaxValue)]
    public long MaxSpoolBytesPerClient { get; set; }

    /// <summary>How long the intake waits for the client's next bytes (RFC 5321 §4.5.3.2.7 suggests 5 minutes).</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long a connection's greeting waits for the first snapshot load after a start (then RCPT answers 451).</summary>
    public TimeSpan SnapshotWait { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Bad commands tolerated per connection before it is closed (Postfix: smtpd_hard_error_limit).</summary>
    [Range(1, 1000)]
    public int MaxErrors { get; set; } = 20;

    /// <summary>Destination port for outbound mail to recipients' MX hosts (25; tests deliver to a sink elsewhere).</summary>
    [Range(1, 65535)]
    public int OutboundPort { get; set; } = 25;

    /// <summary>How many messages one Deliverer attempts at the same time.</summary>
    [Range(1, 10_000)]
    public int MaxConcurrentDeliveries { get; set; } = 64;

    /// <summary>
    /// At most this many addresses are connected to in one attempt, whatever the route's rows and DNS hold (Postfix:
    /// <c>smtp_mx_address_limit</c> = 5 for MX; an inbound route may name up to 100 hosts of many addresses each), so one
    /// attempt stays short (requirements §11.6).
    /// </summary>
    [Range(1, 1000)]
    public int MaxAddressesPerAttempt { get; set; } = 10;

    /// <summary>
    /// Deliveries of this process to one destination (a managed domain's inbound route, or an outbound recipient domain)
    /// at the same time (Postfix: <c>default_destination_concurrency_limit</c> = 20), so one slow destination cannot take
    /// every delivery slot (requirements §11.6).
    /// </summary>
    [Range(1, 10_000)]
    public int MaxConcurrentPerDestination { get; set; } = 20;

    /// <summary>When a message's destination is full, how soon it is looked at again (no attempt is counted).</summary>
    public TimeSpan BusyRetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// The longest one delivery attempt of one message may take, every host and recipient together (requirements §11.6:
    /// 10 minutes). What has no answer by then is deferred like any transient failure.
    /// </summary>
    public TimeSpan AttemptDeadline { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long a connection may take from TCP connected to ready for MAIL (greeting, EHLO, STARTTLS). Postfix waits up to
    /// 300 s (<c>smtp_helo_timeout</c>); real servers greet within seconds, and greeting delays used against spam stay
    /// under half a minute. 60 s still serves those, while a black hole that accepts TCP and never greets costs a minute
    /// once (then it is a dead host) rather than five minutes per message.
    /// </summary>
    public TimeSpan GreetingTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long an address that timed out (connect or greeting) is skipped by every Deliverer (shared through Redis);
    /// zero turns the memory off. Postfix's <c>minimal_backoff_time</c> is 300 s too.
    /// </summary>
    public TimeSpan DeadHostTime { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often the schedule is polled when nothing announced work (a missed wake-up costs at most this).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>TCP connect timeout per host (Postfix: smtp_connect_timeout = 30s).</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Timeout of each SMTP command and of the DATA transfer (Postfix waits 300 s for most replies).</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How long an idle delivery connection is kept for the next message to the same host (Postfix: smtp_connection_cache_time_limit = 2s).</summary>
    public TimeSpan ConnectionCacheTime { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Idle connections kept per destination (as many as deliveries may run at once, so a busy route keeps its sessions).</summary>
    [Range(0, 10_000)]
    public int ConnectionCachePerHost { get; set; } = 64;

    /// <summary>
    /// How long the failures of one copy of a message to several managed domains wait for the other copies' failures, so the
    /// sender gets one DSN for the message rather than one per copy (requirements §11; docs/architecture.md "One failure DSN per
    /// message"). The DSN goes at once when the last copy is done. 5 minutes: Postfix's first retry (<c>minimal_backoff_time</c>
    /// 300 s) comes no sooner, so a copy deferred once is not waited for, and a failure notice that is minutes late misleads no one.
    /// A message of one copy never waits.
    /// </summary>
    public TimeSpan FailureDsnWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often to look for queued messages that lost their schedule entry.</summary>
    public TimeSpan SweepInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Offer STARTTLS-capable servers TLS (opportunistic, RFC 3207; certificates are not checked, as Postfix's "may" level).</summary>
    public bool OpportunisticTls { get; set; } = true;

    /// <summary>
    /// The HTTP/1.1 listener for <c>/healthz</c> and <c>/metrics</c> (Prometheus), an <c>http://ip:port</c> URL;
    /// empty turns it off. 10026: next to the intake (10025).
    /// </summary>
    public string HttpUrl { get; set; } = "http://127.0.0.1:10026";

    /// <summary>A separate listener for <c>/metrics</c> (http://ip:port); empty: <c>/metrics</c> is on <see cref="HttpUrl"/>.</summary>
    public string MetricsUrl { get; set; } = string.Empty;

    /// <summary>How often the fleet-wide queue depth (<c>gateway.queue.*</c>) is read from Redis for the metrics.</summary>
    public TimeSpan QueueSampleInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Every intake listener configured (the main one and the inbound and outbound ones when set).</summary>
    public IEnumerable<IPEndPoint> IntakeEndPoints() =>
        new[] { Listen, InboundListen, OutboundListen }.Where(l => l.Length > 0 && IPEndPoint.TryParse(l, out _)).Select(IPEndPoint.Parse);

    /// <summary>A listener setting: <c>ip:port</c>, or <c>unix:/path</c> for a Unix socket with the mode of <c>Gateway:UnixSockets</c> (security review M13).</summary>
    internal static bool IsListen(string text) => IPEndPoint.TryParse(text, out _) || Gateway.Core.Hosting.UnixSockets.TryParse(text, out _);

    internal static bool IsValid(DelivererOptions o) =>
        IsListen(o.Listen) &&
        (o.InboundListen.Length == 0 || IsListen(o.InboundListen)) &&
        (o.OutboundListen.Length == 0 || IsListen(o.OutboundListen)) &&
        o.EffectiveTrustedNetworks.All(n => IPNetwork.TryParse(AsCidr(n), out _)) &&
        o.MaxSessions > 0 && o.IdleTimeout > TimeSpan.Zero && o.PollInterval > TimeSpan.Zero && o.ConnectTimeout > TimeSpan.Zero && o.CommandTimeout > TimeSpan.Zero &&
        o.SweepInterval > TimeSpan.Zero && o.BusyRetryDelay > TimeSpan.Zero && o.AttemptDeadline > TimeSpan.Zero && o.GreetingTimeout > TimeSpan.Zero &&
        o.DeadHostTime >= TimeSpan.Zero && o.FailureDsnWindow > TimeSpan.Zero && o.ConnectionCacheTime >= TimeSpan.Zero && o.QueueSampleInterval > TimeSpan.Zero &&
        (o.HttpUrl.Length == 0 || Gateway.Core.Hosting.KestrelUrls.TryParse(o.HttpUrl, out _, out _, out _)) &&
        (o.MetricsUrl.Length == 0 || Gateway.Core.Hosting.KestrelUrls.TryParse(o.MetricsUrl, out _, out _, out _));

    /// <summary>The trusted networks parsed (an address alone is a /32 or /128).</summary>
    public IReadOnlyList<IPNetwork> ParsedTrustedNetworks() => EffectiveTrustedNetworks.Select(n => IPNetwork.Parse(AsCidr(n))).ToList();

    private static string AsCidr(string n) =>
        n.Contains('/', StringComparison.Ordinal) ? n : n + (n.Contains(':', StringComparison.Ordinal) ? "/128" : "/32");
}
