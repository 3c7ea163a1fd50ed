namespace Gateway.Core.Rules;

/// <summary>
/// A case-insensitive glob (<c>*</c>: any run of characters, <c>?</c>: one character; nothing else is special),
/// lower-cased once when compiled. Matching is allocation-free and linear in practice (the classic
/// single-backtrack-point algorithm: a later <c>*</c> supersedes an earlier one, so no exponential blow-up).
/// </summary>
public sealed class Glob
{
    private readonly string _pattern;

    public Glob(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        _pattern = pattern.ToLowerInvariant();
    }

    public string Pattern => _pattern;

    public bool IsMatch(ReadOnlySpan<char> text)
    {
        var p = _pattern.AsSpan();
        int ti = 0, pi = 0, starP = -1, starT = 0;
        while (ti < text.Length)
        {
            if (pi < p.Length && (p[pi] == '?' || p[pi] == char.ToLowerInvariant(text[ti])))
            {
                ti++;
                pi++;
            }
            else if (pi < p.Length && p[pi] == '*')
            {
                starP = pi++;
                starT = ti;
            }
            else if (starP >= 0)
            {
                pi = starP + 1;
                ti = ++starT;
            }
            else
            {
                return false;
            }
        }

        while (pi < p.Length && p[pi] == '*')
        {
            pi++;
        }

        return pi == p.Length;
    }

    public override string ToString() => _pattern;
}

/// <summary>
/// An envelope address pattern of a rule: with an '@' it matches the whole address (<c>bad@x.org</c>,
/// <c>*@example.com</c>); without, the domain part (<c>example.com</c>, <c>*.spam.example</c>); <c>&lt;&gt;</c>
/// is the null sender. Case-insensitive; a trailing dot of the address's domain is ignored.
/// </summary>
public sealed class AddressPattern
{
    public const string NullSender = "<>";

    private readonly Glob? _glob;
    private readonly bool _wholeAddress;

    public AddressPattern(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        Text = pattern;
        if (pattern != NullSender)
        {
            _glob = new Glob(pattern);
            _wholeAddress = pattern.Contains('@', StringComparison.Ordinal);
        }
    }

    public string Text { get; }

    public bool IsMatch(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (_glob is null)
        {
            return address.Length == 0;
        }

        var span = address.AsSpan();
        if (span.Length > 0 && span[^1] == '.')
        {
            span = span[..^1];
        }

        if (_wholeAddress)
        {
            return span.Length > 0 && _glob.IsMatch(span);
        }

        var at = span.LastIndexOf('@');
        var domain = at < 0 ? ReadOnlySpan<char>.Empty : span[(at + 1)..];
        return domain.Length > 0 && _glob.IsMatch(domain);
    }
}
