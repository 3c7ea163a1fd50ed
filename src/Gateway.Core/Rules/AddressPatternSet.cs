using System.Buffers;

namespace Gateway.Core.Rules;

/// <summary>
/// The address patterns of many owners (the rules of a domain) compiled together, with the meaning of
/// <see cref="AddressPattern"/>: with an '@' a pattern matches the whole address, without one the domain part,
/// <c>&lt;&gt;</c> the null sender. One call tells every owner with a matching pattern, in time linear in the
/// address (<see cref="GlobSet"/>), however many patterns there are.
/// </summary>
public sealed class AddressPatternSet
{
    private const int StackWords = 256;

    private readonly GlobSet _whole;
    private readonly int[] _wholeOwner;
    private readonly GlobSet _domain;
    private readonly int[] _domainOwner;
    private readonly int[] _nullOwners;

    /// <param name="patterns">Each pattern with the index of its owner (0 ≤ owner &lt; <paramref name="owners"/>).</param>
    public AddressPatternSet(IEnumerable<(string Pattern, int Owner)> patterns, int owners)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        Owners = owners;
        var whole = new List<(string, int)>();
        var domain = new List<(string, int)>();
        var nulls = new List<int>();
        foreach (var (pattern, owner) in patterns)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(owner);
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(owner, owners);
            if (pattern == AddressPattern.NullSender)
            {
                nulls.Add(owner);
            }
            else if (pattern.Contains('@', StringComparison.Ordinal))
            {
                whole.Add((pattern, owner));
            }
            else
            {
                domain.Add((pattern, owner));
            }
        }

        _whole = new GlobSet(whole.Select(p => p.Item1).ToArray());
        _wholeOwner = whole.Select(p => p.Item2).ToArray();
        _domain = new GlobSet(domain.Select(p => p.Item1).ToArray());
        _domainOwner = domain.Select(p => p.Item2).ToArray();
        _nullOwners = nulls.Distinct().ToArray();
        Count = whole.Count + domain.Count + nulls.Count;
    }

    /// <summary>How many owners the bits of <see cref="Match"/> stand for.</summary>
    public int Owners { get; }

    /// <summary>How many patterns there are.</summary>
    public int Count { get; }

    /// <summary>
    /// Sets bit <c>o</c> of <paramref name="owners"/> (at least <see cref="GlobSet.WordsFor"/>(<see cref="Owners"/>)
    /// words) for every owner <c>o</c> that has a pattern matching <paramref name="address"/> (empty: the null sender).
    /// Case-insensitive; one trailing dot of the address's domain is ignored.
    /// </summary>
    public void Match(string address, Span<ulong> owners)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.Length == 0)
        {
            foreach (var o in _nullOwners)
            {
                owners[o >> 6] |= 1UL << (o & 63);
            }

            return;
        }

        var span = address.AsSpan();
        if (span[^1] == '.')
        {
            span = span[..^1];
        }

        if (span.Length > 0 && _whole.Count > 0)
        {
            Collect(_whole, span, _wholeOwner, owners);
        }

        var at = span.LastIndexOf('@');
        var domain = at < 0 ? ReadOnlySpan<char>.Empty : span[(at + 1)..];
        if (domain.Length > 0 && _domain.Count > 0)
        {
            Collect(_domain, domain, _domainOwner, owners);
        }
    }

    /// <summary>Matches <paramref name="text"/> against <paramref name="set"/> and sets the bit of the owner of every matching pattern.</summary>
    internal static void Collect(GlobSet set, ReadOnlySpan<char> text, int[] ownerOf, Span<ulong> owners)
    {
        var words = GlobSet.WordsFor(set.Count);
        ulong[]? rented = null;
        var matched = words <= StackWords ? stackalloc ulong[words] : (rented = ArrayPool<ulong>.Shared.Rent(words)).AsSpan(0, words);
        matched.Clear();
        try
        {
            if (!set.Match(text, matched))
            {
                return;
            }

            for (var p = 0; p < ownerOf.Length; p++)
            {
                if (GlobSet.IsSet(matched, p))
                {
                    var o = ownerOf[p];
                    owners[o >> 6] |= 1UL << (o & 63);
                }
            }
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<ulong>.Shared.Return(rented);
            }
        }
    }
}
