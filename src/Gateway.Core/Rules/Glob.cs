namespace Gateway.Core.Rules;

/// <summary>
/// A case-insensitive glob (<c>*</c>: any run of characters, <c>?</c>: one character; nothing else is special),
/// lower-cased once when compiled, matched in time linear in the text (a <see cref="GlobSet"/> of one pattern).
/// </summary>
public sealed class Glob
{
    private readonly GlobSet _set;

    public Glob(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        _set = new GlobSet([pattern]);
    }

    public string Pattern => _set.Patterns[0];

    public bool IsMatch(ReadOnlySpan<char> text) => _set.IsMatch(text);

    public override string ToString() => Pattern;
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
