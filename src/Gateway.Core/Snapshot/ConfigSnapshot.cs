using System.Collections.Concurrent;
using Gateway.Core.Domains;

namespace Gateway.Core.Snapshot;

/// <summary>
/// The in-memory copy of every managed domain that the PolicyDaemon and the Deliverer decide from.
/// Reads never touch Redis and are O(1) in the number of domains; <see cref="ConfigSnapshotService"/>
/// keeps it current. Until the first full load succeeds <see cref="IsLoaded"/> is false and callers
/// must answer "try later" rather than decide (requirements §4.5).
/// </summary>
public sealed class ConfigSnapshot
{
    private volatile Map _map = new(0);
    private long _version;
    private long _syncedAtTicks;
    private volatile bool _loaded;

    /// <summary>True once a full load from Redis has completed.</summary>
    public bool IsLoaded => _loaded;

    /// <summary>The config version the snapshot reflects.</summary>
    public long Version => Interlocked.Read(ref _version);

    /// <summary>When the snapshot last agreed with Redis (UTC), or <see cref="DateTimeOffset.MinValue"/>.</summary>
    public DateTimeOffset SyncedAt => new(Interlocked.Read(ref _syncedAtTicks), TimeSpan.Zero);

    public int Count => _map.Domains.Count;

    /// <summary>
    /// <c>Gateway:UnverifiedInboundGracePeriod</c>: how long after registration an unverified domain gets inbound relay
    /// (<see cref="TimeSpan.Zero"/>, the default: as long as it is registered).
    /// </summary>
    public TimeSpan UnverifiedInboundGrace { get; init; }

    /// <summary>Finds a managed domain; the name is matched case-insensitively, a trailing dot ignored.</summary>
    public DomainEntry? Find(ReadOnlySpan<char> domain)
    {
        if (domain.Length > 0 && domain[^1] == '.')
        {
            domain = domain[..^1];
        }

        return _map.Lookup.TryGetValue(domain, out var entry) ? entry : null;
    }

    public DomainEntry? Find(string? domain) => domain is null ? null : Find(domain.AsSpan());

    /// <summary>
    /// The managed domain an envelope names: the one lookup every rule uses (relay, routing, rules). Canonical domains
    /// (<see cref="Mail.EnvelopeAddress"/>) are found directly; any other spelling (a U-label, upper case, a trailing
    /// dot) is made canonical first. Empty or malformed: none.
    /// </summary>
    public DomainEntry? FindEnvelopeDomain(string? domain)
    {
        if (string.IsNullOrEmpty(domain))
        {
            return null;
        }

        return Find(domain.AsSpan()) ??
               (!System.Text.Ascii.IsValid(domain) && Mail.EnvelopeAddress.TryCanonicalDomain(domain, out var ascii, out _) ? Find(ascii) : null);
    }

    /// <summary>Every domain (a moment's view), for routing diagnostics and tests.</summary>
    public IReadOnlyCollection<DomainEntry> All => (IReadOnlyCollection<DomainEntry>)_map.Domains.Values;

    /// <summary>Replaces the whole content (a full load) and marks the snapshot loaded.</summary>
    /// <param name="rules">Each domain's policy rules by name (none for a domain that is missing).</param>
    public void Replace(IEnumerable<DomainConfig> domains, long version, DateTimeOffset now, IReadOnlyDictionary<string, Rules.RuleList>? rules = null)
    {
        ArgumentNullException.ThrowIfNull(domains);
        var list = domains as ICollection<DomainConfig> ?? domains.ToList();
        var map = new Map(list.Count);
        foreach (var d in list)
        {
            map.Domains[d.Name] = new DomainEntry(d, rules is not null && rules.TryGetValue(d.Name, out var r) ? r : null);
        }

        _map = map;
        Interlocked.Exchange(ref _version, version);
        Interlocked.Exchange(ref _syncedAtTicks, now.UtcTicks);
        _loaded = true;
    }

    /// <summary>Applies the current state of one domain (null: it no longer exists).</summary>
    public void Apply(string name, DomainConfig? config, Rules.RuleList? rules = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (config is null)
        {
            _map.Domains.TryRemove(name, out _);
        }
        else
        {
            _map.Domains[name] = new DomainEntry(config, rules);
        }
    }

    /// <summary>Records that the snapshot now reflects <paramref name="version"/>.</summary>
    public void MarkSynced(long version, DateTimeOffset now)
    {
        Interlocked.Exchange(ref _version, version);
        Interlocked.Exchange(ref _syncedAtTicks, now.UtcTicks);
    }

    /// <summary>The dictionary and its span lookup, swapped together by a full load.</summary>
    private sealed class Map
    {
        public Map(int capacity)
        {
            Domains = new(concurrencyLevel: Environment.ProcessorCount, capacity: Math.Max(capacity, 31), comparer: StringComparer.OrdinalIgnoreCase);
            Lookup = Domains.GetAlternateLookup<ReadOnlySpan<char>>();
        }

        public ConcurrentDictionary<string, DomainEntry> Domains { get; }

        public ConcurrentDictionary<string, DomainEntry>.AlternateLookup<ReadOnlySpan<char>> Lookup { get; }
    }
}
