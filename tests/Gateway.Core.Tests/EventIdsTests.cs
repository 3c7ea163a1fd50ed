using System.Text.RegularExpressions;
using Gateway.Testing;

namespace Gateway.Core.Tests;

/// <summary>
/// Log event ids are the operators' handle on the logs (alerts, docs/operations.md name them): each id is one event in the
/// whole gateway. Two pairs had been given twice (1300/1301 for the delivery schedule and MTA-STS, 560 for a takeover and the
/// background-check notice) and 1003 for both the intake's session limit and a provider binding refusal.
/// </summary>
[Trait("Kind", "Unit")]
public sealed partial class EventIdsTests
{
    [Fact]
    public void LoggerMessages_EveryEventIdIsUsedOnce()
    {
        var src = RepositoryPaths.Get("src");
        var seen = new Dictionary<int, string>();
        var duplicates = new List<string>();
        foreach (var file in Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories))
        {
            if (file.Contains("/obj/", StringComparison.Ordinal) || file.Contains("/bin/", StringComparison.Ordinal))
            {
                continue;
            }

            foreach (Match m in EventId().Matches(File.ReadAllText(file)))
            {
                var id = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                var where = Path.GetRelativePath(src, file);
                if (!seen.TryAdd(id, where))
                {
                    duplicates.Add($"{id}: {seen[id]} and {where}");
                }
            }
        }

        Assert.True(seen.Count > 50, $"only {seen.Count} event ids found under {src}");
        Assert.Empty(duplicates);
    }

    [GeneratedRegex(@"LoggerMessage\(\s*EventId\s*=\s*(\d+)")]
    private static partial Regex EventId();
}
