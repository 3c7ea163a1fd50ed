using Gateway.Core.Storage;
using StackExchange.Redis;

namespace Gateway.Core.Rules;

public enum SaveRulesOutcome
{
    Done,
    NotFound,
    Stale,
}

/// <summary>
/// A domain's ordered rules in Redis: one hash <see cref="RedisKeys.DomainRules"/> (<c>rev</c>, <c>data</c> = the
/// list as JSON) in the domain's slot, replaced as a whole by a compare-and-set on <c>rev</c>. Every save is
/// announced through <see cref="ConfigChangeFeed"/>, so the snapshots of the PolicyDaemons and Deliverers reload
/// the domain (settings and rules together) within a second, exactly as a settings change.
/// </summary>
public sealed class RuleStore(IConnectionMultiplexer redis, ConfigChangeFeed feed)
{
    /// <summary>The change feed's op for a rule change.</summary>
    public const string RulesOp = "rules";

    // KEYS: domain config, rules. ARGV: company, expected rev, data. Returns new rev, -1 no such domain of the company, -2 stale.
    private const string SaveScript = """
        if redis.call('HGET', KEYS[1], 'company') ~= ARGV[1] then return -1 end
        local rev = redis.call('HGET', KEYS[2], 'rev') or '0'
        if rev ~= ARGV[2] then return -2 end
        local n = redis.call('HINCRBY', KEYS[2], 'rev', 1)
        redis.call('HSET', KEYS[2], 'data', ARGV[3])
        return n
        """;

    private IDatabase Db => redis.GetDatabase();

    /// <summary>The domain's rules (empty list with revision 0 when it has none).</summary>
    public async Task<RuleList> GetAsync(string domain)
    {
        var v = await Db.HashGetAsync(RedisKeys.DomainRules(domain), ["rev", "data"]).ConfigureAwait(false);
        return Parse(v) ?? RuleList.Empty;
    }

    /// <summary>Rules of several domains at once (pipelined), for the snapshot; null where a domain has none.</summary>
    public async Task<RuleList?[]> GetManyAsync(IReadOnlyList<string> domains)
    {
        ArgumentNullException.ThrowIfNull(domains);
        var db = Db;
        var tasks = new Task<RedisValue[]>[domains.Count];
        for (var i = 0; i < domains.Count; i++)
        {
            tasks[i] = db.HashGetAsync(RedisKeys.DomainRules(domains[i]), ["rev", "data"]);
        }

        var values = await Task.WhenAll(tasks).ConfigureAwait(false);
        return values.Select(Parse).ToArray();
    }

    /// <summary>Replaces the list if its revision is still <paramref name="expectedRevision"/> and the domain belongs to <paramref name="companyId"/>; then announces it.</summary>
    public async Task<(SaveRulesOutcome Outcome, RuleList? Saved)> SaveAsync(string companyId, string domain, long expectedRevision, IReadOnlyList<PolicyRule> rules)
    {
        var list = new RuleList { Revision = expectedRevision + 1, Rules = rules };
        var intent = await feed.BeginAsync(domain, RulesOp).ConfigureAwait(false);
        var r = (long)await Db.ScriptEvaluateAsync(SaveScript, [RedisKeys.Domain(domain), RedisKeys.DomainRules(domain)],
            [companyId, expectedRevision, RuleJson.Serialize(list)]).ConfigureAwait(false);
        switch (r)
        {
            case -1:
                await feed.CancelAsync(intent).ConfigureAwait(false);
                return (SaveRulesOutcome.NotFound, null);
            case -2:
                await feed.CancelAsync(intent).ConfigureAwait(false);
                return (SaveRulesOutcome.Stale, null);
        }

        await feed.PublishAsync(domain, RulesOp, intent).ConfigureAwait(false);
        return (SaveRulesOutcome.Done, list with { Revision = r });
    }

    private static RuleList? Parse(RedisValue[] v)
    {
        if (v.Length < 2 || v[1].IsNull)
        {
            return null;
        }

        return RuleJson.Deserialize(v[1].ToString()) with { Revision = (long)v[0] };
    }
}
