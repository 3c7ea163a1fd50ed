using System.Buffers;

namespace Gateway.Core.Rules;

/// <summary>
/// Many case-insensitive globs (<c>*</c>: any run of characters, <c>?</c>: one character) matched against one text
/// at once, in time linear in the text's length whatever the patterns (docs/requirements.md §11: tenant rules run
/// in time linear in their input). The patterns are one nondeterministic automaton whose states are bits, moved
/// together a machine word at a time (Shift-And, Baeza-Yates and Gonnet 1992, with <c>?</c> as a class that
/// holds every character and <c>*</c> as a self-loop reached by an ε-move). A step costs the number of states
/// divided by 64, so one pass over a text of n characters costs O(n · total pattern length / 64) and never more:
/// there is no backtracking to exploit. The backtracking glob this replaces needed O(pattern · text) steps per
/// pattern, which a tenant could multiply by 100,000 patterns into minutes per RCPT (security review H4).
/// </summary>
public sealed class GlobSet
{
    private const int StackWords = 256;

    private readonly int _words;
    private readonly ulong[] _start;
    private readonly ulong[] _selfLoop;
    private readonly ulong[] _toStar;
    private readonly ulong[] _any;
    private readonly ulong[]?[] _ascii = new ulong[]?[128];
    private readonly Dictionary<char, ulong[]> _other = [];
    private readonly int[] _final;

    /// <param name="patterns">The globs; matching is case-insensitive (they are lower-cased here).</param>
    public GlobSet(IReadOnlyList<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(patterns);
        Patterns = patterns.Select(p => (p ?? throw new ArgumentException("null pattern", nameof(patterns))).ToLowerInvariant()).ToArray();

        // One state per token plus the start state; consecutive stars are one star.
        var tokens = Patterns.Select(Tokens).ToArray();
        var states = tokens.Sum(t => t.Length + 1);
        _words = Math.Max(1, (states + 63) / 64);
        _start = new ulong[_words];
        _selfLoop = new ulong[_words];
        _toStar = new ulong[_words];
        _any = new ulong[_words];
        _final = new int[tokens.Length];
        var literals = new Dictionary<char, List<int>>();
        var bit = 0;
        for (var p = 0; p < tokens.Length; p++)
        {
            var t = tokens[p];
            Set(_start, bit);
            for (var i = 0; i < t.Length; i++)
            {
                // State bit+i is "i tokens consumed"; the destination of token i is bit+i+1.
                var destination = bit + i + 1;
                switch (t[i])
                {
                    case '*':
                        Set(_toStar, bit + i);
                        Set(_selfLoop, destination);
                        break;
                    case '?':
                        Set(_any, destination);
                        break;
                    default:
                        if (!literals.TryGetValue(t[i], out var list))
                        {
                            literals[t[i]] = list = [];
                        }

                        list.Add(destination);
                        break;
                }
            }

            _final[p] = bit + t.Length;
            bit += t.Length + 1;
        }

        foreach (var (c, destinations) in literals)
        {
            var mask = (ulong[])_any.Clone();
            foreach (var d in destinations)
            {
                Set(mask, d);
            }

            if (c < 128)
            {
                _ascii[c] = mask;
            }
            else
            {
                _other[c] = mask;
            }
        }

        Close(_start, _start);
    }

    /// <summary>The patterns, lower-cased, in the order given.</summary>
    public IReadOnlyList<string> Patterns { get; }

    public int Count => _final.Length;

    /// <summary>How many 64-bit words one step of the automaton touches (the cost per character of text).</summary>
    public int Words => _words;

    /// <summary>
    /// Sets bit <c>i</c> of <paramref name="matched"/> (which holds at least <c>(Count + 63) / 64</c> words) for every
    /// pattern <c>i</c> that matches the whole <paramref name="text"/>; other bits are left as they are.
    /// Returns whether any pattern matched.
    /// </summary>
    public bool Match(ReadOnlySpan<char> text, Span<ulong> matched)
    {
        if (_final.Length == 0)
        {
            return false;
        }

        ulong[]? rented = null;
        var state = _words <= StackWords ? stackalloc ulong[_words] : (rented = ArrayPool<ulong>.Shared.Rent(_words)).AsSpan(0, _words);
        try
        {
            _start.CopyTo(state);
            foreach (var raw in text)
            {
                var c = char.ToLowerInvariant(raw);
                var on = c < 128 ? _ascii[c] : _other.GetValueOrDefault(c);
                if (!Step(state, on ?? _any))
                {
                    return false; // no state left: nothing can match any more
                }
            }

            var any = false;
            for (var p = 0; p < _final.Length; p++)
            {
                var f = _final[p];
                if ((state[f >> 6] & (1UL << (f & 63))) != 0)
                {
                    matched[p >> 6] |= 1UL << (p & 63);
                    any = true;
                }
            }

            return any;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<ulong>.Shared.Return(rented);
            }
        }
    }

    /// <summary>True when any pattern matches the whole text.</summary>
    public bool IsMatch(ReadOnlySpan<char> text)
    {
        ulong[]? rented = null;
        var words = (_final.Length + 63) / 64;
        var matched = words <= StackWords ? stackalloc ulong[words] : (rented = ArrayPool<ulong>.Shared.Rent(words)).AsSpan(0, words);
        matched.Clear();
        try
        {
            return Match(text, matched);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<ulong>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// One character: every state moves along its token if the token takes the character, states after a star stay,
    /// then the ε-moves (<see cref="Close"/>), all in one pass over the words, lowest first: the shift's carry comes
    /// from the lower word's value before this step, the ε-move's from its value after it.
    /// </summary>
    private bool Step(Span<ulong> state, ulong[] takes)
    {
        ulong alive = 0, oldCarry = 0, newCarry = 0;
        for (var w = 0; w < state.Length; w++)
        {
            var old = state[w];
            var moved = (((old << 1) | oldCarry) & takes[w]) | (old & _selfLoop[w]);
            var closed = moved | ((moved & _toStar[w]) << 1) | newCarry;
            oldCarry = old >> 63;
            newCarry = (moved & _toStar[w]) >> 63;
            state[w] = closed;
            alive |= closed;
        }

        return alive != 0;
    }

    /// <summary>
    /// The ε-moves: a state whose next token is a star also is the state after it. One pass suffices because stars
    /// never follow each other, so a state reached by an ε-move never has a star next.
    /// </summary>
    private void Close(ReadOnlySpan<ulong> from, Span<ulong> into)
    {
        for (var w = _words - 1; w >= 0; w--)
        {
            var carry = w > 0 ? (from[w - 1] & _toStar[w - 1]) >> 63 : 0;
            into[w] = from[w] | ((from[w] & _toStar[w]) << 1) | carry;
        }
    }

    private static string Tokens(string pattern)
    {
        var s = new System.Text.StringBuilder(pattern.Length);
        foreach (var c in pattern)
        {
            if (c == '*' && s.Length > 0 && s[^1] == '*')
            {
                continue;
            }

            s.Append(c);
        }

        return s.ToString();
    }

    private static void Set(ulong[] bits, int index) => bits[index >> 6] |= 1UL << (index & 63);

    /// <summary>True when bit <paramref name="index"/> is set in <paramref name="bits"/>.</summary>
    public static bool IsSet(ReadOnlySpan<ulong> bits, int index) => (bits[index >> 6] & (1UL << (index & 63))) != 0;

    /// <summary>How many words a bit set of <paramref name="count"/> bits needs.</summary>
    public static int WordsFor(int count) => (count + 63) / 64;
}
