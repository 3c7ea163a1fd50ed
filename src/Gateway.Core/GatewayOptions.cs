using System.ComponentModel.DataAnnotations;

namespace Gateway.Core;

/// <summary>
/// Settings shared by the three programs, bound from the <c>Gateway</c> section
/// (appsettings.json, or environment variables such as <c>Gateway__Redis</c>).
/// </summary>
public sealed class GatewayOptions
{
    public const string Section = "Gateway";

    /// <summary>StackExchange.Redis configuration string, e.g. <c>127.0.0.1:6379</c>.</summary>
    [Required(AllowEmptyStrings = false)]
    public string Redis { get; set; } = "127.0.0.1:6379";

    /// <summary>
    /// The Redis ACL user the programs log in as (<c>AUTH user password</c>); empty: the default user, or whatever
    /// <see cref="Redis"/> says (<c>user=…</c>). deploy/redis/ defines a <c>gateway</c> user limited to the gateway's keys.
    /// </summary>
    public string? RedisUser { get; set; }

    /// <summary>The Redis password (<c>AUTH</c>); prefer <see cref="RedisPasswordFile"/> so it stays out of the environment.</summary>
    public string? RedisPassword { get; set; }

    /// <summary>
    /// A file holding the Redis password (its first line), e.g. a systemd credential
    /// (<c>LoadCredential=redis-password:…</c> → <c>%d/redis-password</c>, deploy/systemd/).
    /// </summary>
    public string? RedisPasswordFile { get; set; }

    /// <summary>
    /// How often each program reads Redis's durability settings again (<c>appendonly</c>, <c>appendfsync</c>,
    /// <c>maxmemory-policy</c>); they are read at start and reported in the log, on <c>/healthz</c> and as
    /// <c>gateway.redis.durable</c>.
    /// </summary>
    public TimeSpan RedisDurabilityCheckInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The operator key. When empty the ControlPlane generates one at first start, stores only
    /// its hash in Redis and writes the key to <see cref="OperatorKeyFile"/>.
    /// </summary>
    public string? OperatorKey { get; set; }

    /// <summary>Where a generated operator key is written (owner-only permissions).</summary>
    public string OperatorKeyFile { get; set; } = "data/operator.key";

    /// <summary>
    /// The gateway's own DNS domain. A tenant's inbound MX host is
    /// <c>&lt;company-id&gt;.in.&lt;GatewayDomain&gt;</c> (requirements §2).
    /// </summary>
    [Required(AllowEmptyStrings = false)]
    public string GatewayDomain { get; set; } = "gateway.example";

    /// <summary>Prefix of the verification TXT record: <c>&lt;prefix&gt;=&lt;token&gt;</c> (requirements §3).</summary>
    [Required(AllowEmptyStrings = false)]
    [RegularExpression("^[a-z0-9][a-z0-9_-]{0,31}$", ErrorMessage = "Gateway:VerificationPrefix must be 1-32 lower-case letters, digits, '-' or '_'.")]
    public string VerificationPrefix { get; set; } = "tmes";

    /// <summary>
    /// Public mailbox providers that no tenant may register (nor their subdomains).
    /// Null or empty: the built-in list <see cref="Domains.PublicProviders.Default"/>.
    /// </summary>
    public string[]? PublicProviders { get; set; }

    /// <summary>
    /// Allow inbound servers on loopback addresses (127.0.0.0/8, ::1). Off in production: a tenant
    /// must not make the Deliverer talk to the gateway host's own services. The development run
    /// script and the tests turn it on to deliver to local sinks.
    /// </summary>
    public bool AllowLoopbackDestinations { get; set; }

    /// <summary>
    /// Allow connections to private addresses (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) on a tenant's behalf:
    /// on by default, since a self-hosted gateway usually relays to mail servers on the same private network. Turn it
    /// off for a shared fleet whose customers' servers are all on the internet (docs/operations.md; <see cref="Domains.DestinationFilter"/>).
    /// </summary>
    public bool AllowPrivateDestinations { get; set; } = true;

    /// <summary>
    /// The optional grace period of docs/requirements.md §3: an unverified domain gets inbound relay only this long
    /// after its registration, then NO-DOMAIN until it is verified. Zero (the default, as in the seed's product): no
    /// limit. A shared fleet may want a few days, so a registration nobody verifies stops receiving mail.
    /// </summary>
    public TimeSpan UnverifiedInboundGracePeriod { get; set; }

    /// <summary>How often a program compares its snapshot with the stored config version.</summary>
    public TimeSpan SnapshotReconcileInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// A full load of the snapshot that would remove more than this share (percent) of its domains at once is treated
    /// as data loss (requirements §4 rule 5): the program keeps its snapshot until an operator accepts (docs/operations.md).
    /// </summary>
    [Range(1, 100)]
    public int SnapshotDropGuardPercent { get; set; } = 50;

    /// <summary>…and at least this many domains (small installations delete a handful legitimately).</summary>
    [Range(1, int.MaxValue)]
    public int SnapshotDropGuardMinimum { get; set; } = 10;

    /// <summary>
    /// A change whose writer began it this long ago and never announced it (it died between the write and the
    /// announcement) is announced by whichever program sees it first (<see cref="Storage.ConfigChangeFeed.AnnounceAbandonedAsync"/>).
    /// </summary>
    public TimeSpan ConfigPendingGrace { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// …and announced once more this long after its writer began it, then forgotten: a save whose write reached Redis
    /// after the first announcement (Redis stalled, the connection stalled) and whose writer died before announcing it
    /// is still applied everywhere. Longer than any save can take to land (the Redis client's timeout is 5 s).
    /// </summary>
    public TimeSpan ConfigPendingFinal { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A file where the PolicyDaemon and the Deliverer remember the configuration lineage they last applied (version,
    /// lineage id, domain count), so that one starting while Redis has lost data notices it and answers "try later"
    /// until an operator accepts the stored state, instead of refusing every domain (docs/reliability.md "Redis
    /// faults"). Empty: off. The systemd units set it in each program's state directory; scripts/run.sh in ./data.
    /// </summary>
    public string? LineageFile { get; set; }

    /// <summary>How many entries of the config change stream Redis keeps (approximately).</summary>
    [Range(100, 10_000_000)]
    public int ConfigChangeStreamLength { get; set; } = 100_000;

    /// <summary>Name servers for verification, health checks and delivery (<c>Gateway:Dns:Servers</c>).</summary>
    public Dns.DnsOptions Dns { get; set; } = new();

    /// <summary>How long message log events are kept (requirements §7: 90 days by default).</summary>
    public TimeSpan MessageLogRetention { get; set; } = TimeSpan.FromDays(90);

    /// <summary>
    /// The most entries one domain's message log keeps besides the time limit (requirements §11.9): Redis trims the
    /// oldest beyond it (approximately, whole stream nodes at a time), so a flood of events cannot exhaust Redis.
    /// </summary>
    [Range(1000, 1_000_000_000)]
    public int MessageLogMaxEntries { get; set; } = 1_000_000;

    /// <summary>
    /// How often one ControlPlane of the fleet (under a lease) trims every domain's log to the retention, so
    /// events of domains that get no new ones (the append path trims only on append) do not stay forever,
    /// and finishes domain deletions a crashed ControlPlane left behind.
    /// </summary>
    public TimeSpan MaintenanceInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often FollowLog looks for new events (it polls; see <see cref="MessageLog.MessageLogReader.FollowAsync"/>).</summary>
    public TimeSpan MessageLogFollowPollInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// The SPF mechanism customers add for outbound protection (requirements §3.11); by default
    /// <c>include:_spf.&lt;GatewayDomain&gt;</c>.
    /// </summary>
    public string? SpfInclude { get; set; }

    /// <summary>The SPF include to publish.</summary>
    public string EffectiveSpfInclude => string.IsNullOrWhiteSpace(SpfInclude) ? $"include:_spf.{GatewayDomain}" : SpfInclude;

    /// <summary>
    /// The public IPv4/IPv6 addresses the gateway sends outbound mail from (<c>Gateway:SendingAddresses</c>).
    /// CheckDomain evaluates each customer's SPF record against them (RFC 7208); they should be what the
    /// record behind <see cref="EffectiveSpfInclude"/> lists. Empty: the SPF check is skipped with a note.
    /// </summary>
    public string[] SendingAddresses { get; set; } = [];

    /// <summary>
    /// Where customers' sending servers relay their outbound mail (the gateway's outbound listener, requirements §3
    /// "Outbound servers"): <c>HOST</c> or <c>HOST:PORT</c>; by default <c>relay.&lt;GatewayDomain&gt;</c>.
    /// </summary>
    public string? OutboundRelayHost { get; set; }

    /// <summary>The outbound relay host to show customers.</summary>
    public string EffectiveOutboundRelayHost => string.IsNullOrWhiteSpace(OutboundRelayHost) ? $"relay.{GatewayDomain}" : OutboundRelayHost.Trim();

    /// <summary>The inbound MX host of a tenant.</summary>
    public string InboundMxHost(string companyId) => $"{companyId}.in.{GatewayDomain}";
}
