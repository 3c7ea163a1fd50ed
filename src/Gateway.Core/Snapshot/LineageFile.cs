using System.Globalization;

namespace Gateway.Core.Snapshot;

/// <summary>What a program last applied: config version, lineage id and domain count.</summary>
public sealed record SavedLineage(long Version, string? Epoch, int Domains);

/// <summary>
/// requirements §4 rule 5, §8: a program that starts while Redis has lost data has no snapshot to keep, and would
/// otherwise load what Redis holds (nothing) and refuse every domain. With <see cref="GatewayOptions.LineageFile"/> it
/// remembers, on its own disk, the lineage it last applied; at start <see cref="ConfigSnapshotService"/> compares it
/// with Redis's and, when they disagree as data loss does, answers "try later" until an operator accepts the stored
/// state. One line, <c>v1 &lt;version&gt; &lt;epoch or -&gt; &lt;domains&gt;</c>, replaced by rename.
/// </summary>
public sealed class LineageFile(string path)
{
    public string Path { get; } = path;

    /// <summary>The saved lineage, or null when there is none (first start) or it cannot be read (then the reason).</summary>
    public SavedLineage? Read(out string? problem)
    {
        problem = null;
        string text;
        try
        {
            text = File.ReadAllText(Path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = e.Message;
            return null;
        }

        var parts = text.Trim().Split(' ');
        if (parts.Length == 4 && parts[0] == "v1" &&
            long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var version) &&
            int.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out var domains))
        {
            return new SavedLineage(version, parts[2] == "-" ? null : parts[2], domains);
        }

        problem = "not a lineage file";
        return null;
    }

    /// <summary>Writes <paramref name="lineage"/> (temporary file, then rename: a crash leaves the old or the new one).</summary>
    public void Write(SavedLineage lineage)
    {
        ArgumentNullException.ThrowIfNull(lineage);
        var temporary = Path + ".tmp";
        File.WriteAllText(temporary, string.Create(CultureInfo.InvariantCulture, $"v1 {lineage.Version} {lineage.Epoch ?? "-"} {lineage.Domains}\n"));
        File.Move(temporary, Path, overwrite: true);
    }
}
