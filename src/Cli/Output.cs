using System.Globalization;
using Google.Protobuf.WellKnownTypes;

namespace Gateway.Cli;

/// <summary>Plain-text tables and fields for people; --json gives the machine form.</summary>
internal static class Output
{
    public static void Table(TextWriter w, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(headers);
        var all = rows.ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Count == 0 ? 0 : all.Max(r => i < r.Count ? r[i].Length : 0))).ToArray();
        w.WriteLine(Line(headers, widths));
        foreach (var r in all)
        {
            w.WriteLine(Line(r, widths));
        }

        if (all.Count == 0)
        {
            w.WriteLine("(none)");
        }
    }

    public static void Fields(TextWriter w, IEnumerable<(string Name, string Value)> fields)
    {
        ArgumentNullException.ThrowIfNull(w);
        var list = fields.ToList();
        var width = list.Count == 0 ? 0 : list.Max(f => f.Name.Length);
        foreach (var (name, value) in list)
        {
            w.WriteLine($"{(name + ":").PadRight(width + 2)}{value}");
        }
    }

    public static string Time(Timestamp? t) =>
        t is null || (t.Seconds == 0 && t.Nanos == 0) ? "-" : t.ToDateTimeOffset().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static string YesNo(bool b) => b ? "yes" : "no";

    private static string Line(IReadOnlyList<string> cells, int[] widths) =>
        string.Join("  ", widths.Select((wd, i) => (i < cells.Count ? cells[i] : string.Empty).PadRight(wd))).TrimEnd();
}
