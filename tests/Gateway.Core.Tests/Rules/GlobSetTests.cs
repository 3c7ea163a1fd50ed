using System.Text.RegularExpressions;
using Gateway.Core.Rules;

namespace Gateway.Core.Tests.Rules;

/// <summary>
/// The linear-time glob automaton against an independent matcher (.NET's non-backtracking regular expressions, the
/// same language written as a regex) on tables, random patterns and the adversarial patterns of the security review.
/// </summary>
[Trait("Kind", "Unit")]
public sealed class GlobSetTests
{
    private static readonly string[] ExpectedX151 = ["*51", "x1*", "x151*"];

    [Theory]
    [InlineData("*", "", true)]
    [InlineData("*", "anything", true)]
    [InlineData("", "", true)]
    [InlineData("", "a", false)]
    [InlineData("a", "A", true)]
    [InlineData("?", "", false)]
    [InlineData("?", "x", true)]
    [InlineData("?", "xy", false)]
    [InlineData("a*b", "ab", true)]
    [InlineData("a*b", "axxxb", true)]
    [InlineData("a*b", "axxxbc", false)]
    [InlineData("a**b", "ab", true)]
    [InlineData("*@example.com", "bob@EXAMPLE.com", true)]
    [InlineData("*@example.com", "bob@example.com.evil", false)]
    [InlineData("*.spam.example", "mx.spam.example", true)]
    [InlineData("*.spam.example", "spam.example", false)]
    [InlineData("b?b*@*.test", "bob+x@a.test", true)]
    [InlineData("*a*a*a*c", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false)]
    [InlineData("*a*a*a*c", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac", true)]
    [InlineData("ö*", "Öl", true)]
    public void Match_Table_AsGlob(string pattern, string text, bool expected)
    {
        Assert.Equal(expected, new GlobSet([pattern]).IsMatch(text));
        Assert.Equal(expected, new Glob(pattern).IsMatch(text));
    }

    [Fact]
    public void Match_RandomPatternsAndTexts_SameAsRegex()
    {
        var random = new Random(20261206);
        const string Alphabet = "ab@.";
        for (var round = 0; round < 400; round++)
        {
            // Several patterns side by side, so states of neighbours must never leak into each other.
            var patterns = Enumerable.Range(0, random.Next(1, 12)).Select(_ => RandomText(random, "ab@.*?", random.Next(0, 9))).ToArray();
            var set = new GlobSet(patterns);
            var regexes = patterns.Select(ToRegex).ToArray();
            for (var t = 0; t < 25; t++)
            {
                var text = RandomText(random, Alphabet, random.Next(0, 14));
                var matched = new ulong[GlobSet.WordsFor(patterns.Length)];
                var any = set.Match(text, matched);
                for (var i = 0; i < patterns.Length; i++)
                {
                    Assert.True(regexes[i].IsMatch(text) == GlobSet.IsSet(matched, i), $"pattern '{patterns[i]}' on '{text}'");
                }

                Assert.Equal(regexes.Any(r => r.IsMatch(text)), any);
            }
        }
    }

    [Fact]
    public void Match_ManyPatternsAcrossWordBoundaries_EachReportedByItsIndex()
    {
        // 300 patterns of 1-3 states each cross many 64-bit words: only the right ones must report.
        var patterns = Enumerable.Range(0, 300).Select(i => i % 3 == 0 ? $"*{i}" : i % 3 == 1 ? $"x{i}*" : $"{i}").ToArray();
        var set = new GlobSet(patterns);
        Assert.True(set.Words > 5);
        var matched = new ulong[GlobSet.WordsFor(patterns.Length)];
        Assert.True(set.Match("x151", matched));
        var hits = Enumerable.Range(0, patterns.Length).Where(i => GlobSet.IsSet(matched, i)).Select(i => patterns[i]).ToArray();
        Assert.Equal(ExpectedX151.OrderBy(p => p, StringComparer.Ordinal), hits.OrderBy(p => p, StringComparer.Ordinal));
    }

    [Fact]
    public void Match_ReviewWorstCase_AnswersLikeRegex()
    {
        // Security review H4: '*' + 'a'×240 + 'c@*' against 'a'×1900 + '@x.test' took 429,228 steps per pattern
        // with the backtracking glob; here it is one pass over the text for all 100 patterns.
        var patterns = Enumerable.Range(0, 100).Select(i => "*" + new string('a', 240 - i) + "c@*").ToArray();
        var set = new GlobSet(patterns);
        var text = new string('a', 1900) + "@x.test";
        Assert.False(set.IsMatch(text));
        Assert.True(set.IsMatch(new string('a', 1900) + "c@x.test"));
        var star = new GlobSet([string.Concat(Enumerable.Repeat("*a", 120)) + "*c"]);
        Assert.False(star.IsMatch(new string('a', 2000)));
        Assert.True(star.IsMatch(new string('a', 2000) + "c"));
    }

    [Fact]
    public void AddressPatternSet_WholeDomainAndNull_SetOwnersLikeAddressPattern()
    {
        var patterns = new (string, int)[] { ("*@a.test", 0), ("a.test", 1), ("<>", 2), ("bob@*", 3), ("*.a.test", 3) };
        var set = new AddressPatternSet(patterns, 4);
        foreach (var address in new[] { "bob@a.test", "x@a.test.", "", "x@sub.a.test", "bob@other.test", "nodomain", "@a.test" })
        {
            var owners = new ulong[1];
            set.Match(address, owners);
            for (var o = 0; o < 4; o++)
            {
                var expected = patterns.Where(p => p.Item2 == o).Any(p => new AddressPattern(p.Item1).IsMatch(address));
                Assert.True(expected == GlobSet.IsSet(owners, o), $"owner {o} on '{address}'");
            }
        }
    }

    private static string RandomText(Random random, string alphabet, int length) =>
        new(Enumerable.Range(0, length).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray());

    private static Regex ToRegex(string glob) =>
        new("^" + string.Concat(glob.Select(c => c switch { '*' => ".*", '?' => ".", _ => Regex.Escape(c.ToString()) })) + "$",
            RegexOptions.IgnoreCase | RegexOptions.CultureInvariant | RegexOptions.Singleline | RegexOptions.NonBacktracking);
}
