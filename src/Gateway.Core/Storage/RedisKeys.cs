using StackExchange.Redis;

namespace Gateway.Core.Storage;

/// <summary>
/// Builds every Redis key and channel of the gateway; nothing else spells a key. The schema is
/// documented in docs/architecture.md. Two hash-tag families keep multi-key operations in one
/// Redis Cluster slot:
/// <list type="bullet">
/// <item><c>{cfg}</c>: tenants, API keys, the domain registry and the config change feed (small, one slot).</item>
/// <item><c>{d:&lt;domain&gt;}</c>: everything of one managed domain (settings, later rules, queue index, quarantine, log).</item>
/// </list>
/// </summary>
public static class RedisKeys
{
    private const string Cfg = "gw:{cfg}:";

    /// <summary>Hash: company id → tenant JSON.</summary>
    public static readonly RedisKey Tenants = Cfg + "tenants";

    /// <summary>Sorted set (all scores 0, ordered by member): company ids, for paging.</summary>
    public static readonly RedisKey TenantIds = Cfg + "tenant-ids";

    /// <summary>Hash: API key id → key JSON (company, description, SHA-256 of the key).</summary>
    public static readonly RedisKey ApiKeys = Cfg + "apikeys";

    /// <summary>Hash with the generated operator key's hash (field <c>sha256</c>) and creation time.</summary>
    public static readonly RedisKey OperatorKey = Cfg + "operator";

    /// <summary>Hash: managed domain → owning company id. The uniqueness claim across tenants.</summary>
    public static readonly RedisKey DomainRegistry = Cfg + "domains";

    /// <summary>Counter bumped by every saved configuration change.</summary>
    public static readonly RedisKey ConfigVersion = Cfg + "version";

    /// <summary>
    /// String: a random id of the configuration's lineage, set by the first announced change (and replaced when an operator
    /// accepts a state after data loss). A snapshot that sees it change or vanish knows Redis lost data (requirements §4 rule 5).
    /// </summary>
    public static readonly RedisKey ConfigEpoch = Cfg + "epoch";

    /// <summary>Hash: the operator's last acceptance of the stored configuration (<c>epoch</c>, <c>version</c>, <c>domains</c>, <c>at</c>, <c>by</c>, <c>reason</c>).</summary>
    public static readonly RedisKey ConfigAccepted = Cfg + "accepted";

    /// <summary>Hash: program instance → <c>"&lt;seen unix ms&gt;|&lt;held since unix ms&gt;|&lt;reason&gt;"</c> while its snapshot is held after suspected data loss.</summary>
    public static readonly RedisKey ConfigHeld = Cfg + "held";

    /// <summary>Sorted set: <c>"&lt;nonce&gt; &lt;op&gt; &lt;domain&gt;"</c> → Redis time (unix ms) of a change being saved but not yet announced (atomic change, requirements §3).</summary>
    public static readonly RedisKey ConfigPending = Cfg + "pending";

    /// <summary>Stream of changes; entry id <c>&lt;version&gt;-0</c>, fields <c>d</c> (domain) and <c>op</c>.</summary>
    public static readonly RedisKey ConfigChanges = Cfg + "changes";

    /// <summary>Pub/sub channel announcing each change as <c>"&lt;version&gt; &lt;op&gt; &lt;domain&gt;"</c>.</summary>
    public static readonly RedisChannel ConfigChannel = RedisChannel.Literal("gw:config");

    /// <summary>
    /// Hash: provider (<c>office365</c>, <c>google_workspace</c>) → JSON of its sending ranges as last refreshed
    /// from its SPF records, shared by every PolicyDaemon (the shipped data file is the fallback).
    /// </summary>
    public static readonly RedisKey ProviderRanges = Cfg + "provider-ranges";

    /// <summary>Counter of a tenant's requests of one kind (<c>changes</c>, <c>checks</c>) in one minute (unix minute); expires with it (Gateway:Limits, the ControlPlane's TenantLimits).</summary>
    public static RedisKey TenantRate(string companyId, string kind, long minute) =>
        $"{Cfg}rate:{companyId}:{kind}:{minute.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>String: the secret under which claim tokens are derived (claim by proof of an unverified domain).</summary>
    public static readonly RedisKey ClaimSecret = Cfg + "claim-secret";

    /// <summary>Set: API key ids of a tenant.</summary>
    public static RedisKey TenantApiKeys(string companyId) => $"{Cfg}tenant:{companyId}:apikeys";

    /// <summary>
    /// Sorted set: a tenant's live FollowLog streams on every ControlPlane (stream id → lease end, unix ms of Redis's
    /// clock); a stream renews its lease while it lives, a dead ControlPlane's streams drop out when theirs run out.
    /// </summary>
    public static RedisKey TenantFollows(string companyId) => $"{Cfg}tenant:{companyId}:follows";

    /// <summary>Sorted set (scores 0): domains of a tenant, for paging by name.</summary>
    public static RedisKey TenantDomains(string companyId) => $"{Cfg}tenant:{companyId}:domains";

    /// <summary>The hash tag of one domain's keys.</summary>
    public static string DomainTag(string domain) => "{d:" + domain + "}";

    /// <summary>Hash: <c>company</c>, <c>etag</c> (revision), <c>data</c> (settings JSON).</summary>
    public static RedisKey Domain(string domain) => $"gw:{DomainTag(domain)}:config";

    /// <summary>Sorted set of the domain's queued message ids (score: next attempt, unix ms).</summary>
    public static RedisKey DomainQueue(string domain) => $"gw:{DomainTag(domain)}:queue";

    /// <summary>Sorted set of the domain's quarantined message ids (score: quarantine time, unix ms).</summary>
    public static RedisKey DomainQuarantine(string domain) => $"gw:{DomainTag(domain)}:quarantine";

    /// <summary>Stream: the domain's message log (requirements §7).</summary>
    public static RedisKey DomainLog(string domain) => $"gw:{DomainTag(domain)}:log";

    /// <summary>Hash: the domain's last health check (status, findings JSON, time, revision checked) and last verification attempt.</summary>
    public static RedisKey DomainHealth(string domain) => $"gw:{DomainTag(domain)}:health";

    /// <summary>String with a random token: a ControlPlane is checking the domain in the background (expires by itself).</summary>
    public static RedisKey DomainCheckLock(string domain) => $"gw:{DomainTag(domain)}:check-lock";

    /// <summary>Hash: selector → the domain's DKIM private key, sealed with the key-encryption key (issue 17, docs/outbound.md).</summary>
    public static RedisKey DomainDkimKeys(string domain) => $"gw:{DomainTag(domain)}:dkim";

    /// <summary>String: the cached MTA-STS policy (RFC 8461) of a recipient domain, JSON, expiring with its max_age (docs/outbound.md).</summary>
    public static RedisKey MtaStsPolicy(string domain) => $"gw:{{sts:{domain}}}:policy";

    /// <summary>String with a random token: a Deliverer is fetching the domain's MTA-STS policy (expires by itself).</summary>
    public static RedisKey MtaStsFetchLock(string domain) => $"gw:{{sts:{domain}}}:lock";

    /// <summary>Hash: recipient → cached answer of recipient verification (Verification/VerificationCache.cs, docs/operations.md).</summary>
    public static RedisKey DomainVerifyCache(string domain) => $"gw:{DomainTag(domain)}:verify";

    /// <summary>Sorted set beside <see cref="DomainVerifyCache"/>: recipient → expiry (unix ms), bounding the cache.</summary>
    public static RedisKey DomainVerifyExpiries(string domain) => $"gw:{DomainTag(domain)}:verify-exp";

    /// <summary>Counter of the domain's verification probes in one minute (unix minute), fleet-wide; expires with it.</summary>
    public static RedisKey DomainVerifyRate(string domain, long minute) =>
        $"gw:{DomainTag(domain)}:verify-rate:{minute.ToString(System.Globalization.CultureInfo.InvariantCulture)}";

    /// <summary>The pattern matching every key of one domain (for scans and cascade deletion).</summary>
    public static RedisValue DomainKeyPattern(string domain) => $"gw:{{d:{domain}}}:*";

    // ---- Delivery queue (Deliverer, ControlPlane QueueService); see docs/architecture.md "Delivery queue".

    /// <summary>
    /// Hash of one queued message in its owning domain's slot: <c>env</c> (envelope and per-recipient state, JSON) and <c>body</c>
    /// (raw bytes), or <c>bodyref</c> (the id of a body shared with the message's other copies, <see cref="SharedBodies"/>).
    /// </summary>
    public static RedisKey QueueMessage(string domain, string id) => $"gw:{DomainTag(domain)}:msg:{id}";

    /// <summary>String: a message body shared by the queue entries of one message, in a slot of its own (<see cref="SharedBodies"/>).</summary>
    public static RedisKey SharedBody(string bodyId) => $"gw:{{b:{bodyId}}}:body";

    /// <summary>
    /// String: a body being received in pieces (<see cref="SharedBodies.AppendSpoolAsync"/>), in the slot of the body it becomes;
    /// renamed to <see cref="SharedBody"/> when the message is complete, with a short expiry until then.
    /// </summary>
    public static RedisKey SharedBodySpool(string bodyId) => $"gw:{{b:{bodyId}}}:spool";

    /// <summary>Set: the queue entries (<c>&lt;domain&gt;|&lt;id&gt;</c>) that reference a shared body; the last one out removes it.</summary>
    public static RedisKey SharedBodyRefs(string bodyId) => $"gw:{{b:{bodyId}}}:refs";

    /// <summary>
    /// Hash: the failures of a message's copies waiting for one combined DSN, in the slot of its body (<see cref="Delivery.FailureDsnRecords"/>;
    /// docs/architecture.md "One failure DSN per message").
    /// </summary>
    public static RedisKey FailureDsn(string groupId) => $"gw:{{b:{groupId}}}:dsn";

    /// <summary>Sorted set in its own slot: message groups with failures waiting, by when their combined DSN is due (unix ms).</summary>
    public static readonly RedisKey FailureDsnDue = "gw:{dsn}:due";

    /// <summary>Counter of one route group (hosts of equal preference) for round robin across the whole fleet.</summary>
    public static RedisKey RoundRobin(string domain, string groupKey) => $"gw:{DomainTag(domain)}:rr:{groupKey}";

    /// <summary>Sorted set of one schedule shard: member <c>&lt;domain&gt;|&lt;id&gt;</c>, score = due time (unix ms); a lease moves the score to its expiry.</summary>
    /// <summary>The number of schedule shards unless <c>Gateway:Queue:ScheduleShards</c> says otherwise.</summary>
    public const int DefaultScheduleShards = 8;

    public static RedisKey ScheduleDue(int shard) => $"gw:{{sched:{shard}}}:due";

    /// <summary>Hash of one schedule shard: member → lease token of the worker that holds it.</summary>
    public static RedisKey ScheduleLeases(int shard) => $"gw:{{sched:{shard}}}:leases";

    /// <summary>
    /// Sorted set in its own slot: delivery addresses (<c>ip:port</c>) that timed out, by the time (unix ms) until which no
    /// Deliverer connects to them (docs/architecture.md "Routing and attempts"). Small: one entry per dead address.
    /// </summary>
    public static readonly RedisKey DeadHosts = "gw:{dead}:hosts";

    /// <summary>Hash beside <see cref="DeadHosts"/>: address → why it was marked dead.</summary>
    public static readonly RedisKey DeadHostReasons = "gw:{dead}:reasons";

    /// <summary>Pub/sub channel that wakes Deliverers when work became due (message: the shard number).</summary>
    public static readonly RedisChannel QueueChannel = RedisChannel.Literal("gw:queue");

    // ---- Policy rules and quarantine (issue 6: PolicyRuleService, QuarantineService); see docs/rules.md.

    /// <summary>Hash of a domain's ordered policy rules: <c>rev</c> (list revision, compare-and-set) and <c>data</c> (JSON list).</summary>
    public static RedisKey DomainRules(string domain) => $"gw:{DomainTag(domain)}:rules";

    /// <summary>Hash of one quarantined message: <c>env</c> (envelope, rule, time; JSON), <c>body</c> (raw bytes), <c>claim</c> (a release in progress).</summary>
    public static RedisKey QuarantineMessage(string domain, string id) => $"gw:{DomainTag(domain)}:qmsg:{id}";


    // ---- Message log and domain deletion (issue 6); see docs/message-log.md.

    /// <summary>
    /// Hash in <c>{cfg}</c>: domain → <c>"&lt;deletes running&gt; &lt;first start, unix ms&gt;"</c> for domains whose
    /// deletion has started and whose keys are still being purged. Their names cannot be registered again until the purge ends; a ControlPlane
    /// that starts finishes the purges a crashed one left behind.
    /// </summary>
    public static readonly RedisKey DomainsBeingDeleted = Cfg + "deleting";

    /// <summary>String with a random token: the ControlPlane running the fleet's periodic maintenance (log trim, purge resume); expires by itself.</summary>
    public static readonly RedisKey MaintenanceLock = Cfg + "maintenance-lock";

    /// <summary>The pattern of one domain's members in a schedule shard (<c>&lt;domain&gt;|&lt;id&gt;</c>).</summary>
    public static RedisValue ScheduleMemberPattern(string domain) => domain + "|*";
}
