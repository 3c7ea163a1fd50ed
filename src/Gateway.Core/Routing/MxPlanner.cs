namespace Gateway.Core.Routing;

/// <summary>One MX record: preference and exchange host (no trailing dot).</summary>
public readonly record struct MxRecord(int Preference, string Exchange);

/// <summary>The outbound route of a recipient domain.</summary>
public sealed record MxPlan(IReadOnlyList<string> Hosts, bool NullMx, bool ImplicitMx)
{
    public static readonly MxPlan Null = new([], true, false);
}

/// <summary>
/// RFC 5321 §5.1 as a pure function: MX hosts by preference, equal preferences in random order; no MX
/// records → the domain itself (implicit MX, A/AAAA); a null MX (RFC 7505: one record, preference 0,
/// exchange ".") means the domain accepts no mail.
/// </summary>
public static class MxPlanner
{
    public static MxPlan Plan(string domain, IReadOnlyList<MxRecord> records, Random random)
    {
        ArgumentNullException.ThrowIfNull(records);
        ArgumentNullException.ThrowIfNull(random);
        if (records.Count == 0)
        {
            return new MxPlan([domain], false, true);
        }

        // RFC 7505 §3: a null MX is the only MX of its domain; one mixed with others is ignored.
        var real = records.Where(r => r.Exchange.Length > 0 && r.Exchange != ".").ToList();
        if (real.Count == 0)
        {
            return MxPlan.Null;
        }

        var hosts = new List<string>(real.Count);
        foreach (var group in real.GroupBy(r => r.Preference).OrderBy(g => g.Key))
        {
            var names = group.Select(r => r.Exchange.TrimEnd('.').ToLowerInvariant()).Distinct(StringComparer.Ordinal).ToArray();
            random.Shuffle(names);
            hosts.AddRange(names.Where(n => !hosts.Contains(n, StringComparer.Ordinal)));
        }

        return new MxPlan(hosts, false, false);
    }
}
