using System.Globalization;
using System.Text;
using System.Text.Json;

namespace PolicyBench;

/// <summary>
/// Markdown from the JSON lines of a run: per domain count, concurrency and server the median of the
/// repeated runs (the machine may be shared: medians of interleaved runs damp bursts of other work), the
/// ratios to the trivial server, and the targets.
/// </summary>
internal static class Report
{
    public static int Run(Options o)
    {
        var runs = File.ReadAllLines(o["in"])
            .Where(l => l.Length > 0)
            .Select(l => JsonSerializer.Deserialize<LoadResult>(l, LoadResult.Json)!)
            .ToList();
        var rows = runs.GroupBy(r => (r.Server, r.Domains, r.Connections))
            .Select(g => new Row(g.Key.Server, g.Key.Domains, g.Key.Connections, g.Count(),
                Median(g.Select(r => r.Rps)), Median(g.Select(r => (double)r.P50Us)), Median(g.Select(r => (double)r.P99Us)),
                Median(g.Select(r => (double)r.P999Us)), g.Sum(r => r.Requests), g.Sum(r => r.Errors)))
            .ToList();
        Row? Find(string server, int domains, int connections) =>
            rows.FirstOrDefault(r => r.Server == server && r.Domains == domains && r.Connections == connections);

        var c = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("| domains | connections | server | runs | req/s | p50 µs | p99 µs | p99.9 µs | req/s ÷ trivial | p99 ÷ trivial | replies checked | errors |");
        sb.AppendLine("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        string[] order = ["trivial", "daemon", "postfwd"];
        foreach (var r in rows.OrderBy(r => r.Domains).ThenBy(r => r.Connections).ThenBy(r => Array.IndexOf(order, r.Server)))
        {
            var t = Find("trivial", r.Domains, r.Connections);
            var vs = t is null || r.Server == "trivial" ? ("", "") : ((r.Rps / t.Rps).ToString("F2", c), (r.P99 / t.P99).ToString("F2", c));
            sb.AppendLine(c, $"| {r.Domains:N0} | {r.Connections} | {r.Server} | {r.Runs} | {r.Rps:N0} | {r.P50:F0} | {r.P99:F0} | {r.P999:F0} | {vs.Item1} | {vs.Item2} | {r.Requests:N0} | {r.Errors} |");
        }

        sb.AppendLine();
        sb.AppendLine("Targets (issue 3, on this 2-core machine): daemon ≥ 0.8 × trivial req/s and p99 ≤ 1.2 × trivial p99 at each");
        sb.AppendLine("concurrency; daemon req/s at 100,000 domains ≥ 0.9 × at 10 domains; daemon ≥ 25 × postfwd at 8 connections.");
        sb.AppendLine();
        var domainCounts = rows.Select(r => r.Domains).Distinct().Order().ToList();
        foreach (var conn in rows.Select(r => r.Connections).Distinct().Order())
        {
            foreach (var domains in domainCounts)
            {
                if (Find("daemon", domains, conn) is { } d && Find("trivial", domains, conn) is { } t)
                {
                    var tput = d.Rps / t.Rps;
                    var lat = d.P99 / t.P99;
                    sb.AppendLine(c, $"- {domains:N0} domains, {conn} connections: req/s {tput:F2} × trivial ({Verdict(tput >= 0.8)}), p99 {lat:F2} × trivial ({Verdict(lat <= 1.2)})");
                }

                if (Find("daemon", domains, conn) is { } dd && Find("postfwd", domains, conn) is { } p)
                {
                    var x = p.Rps > 0 ? (dd.Rps / p.Rps).ToString("N0", c) + " ×" : $"postfwd answered {p.Requests} requests in the whole run";
                    sb.AppendLine(c, $"- {domains:N0} domains, {conn} connections: daemon vs postfwd: {x}");
                }
            }

            if (domainCounts.Count > 1 && Find("daemon", domainCounts[0], conn) is { } small && Find("daemon", domainCounts[^1], conn) is { } large)
            {
                var scale = large.Rps / small.Rps;
                sb.AppendLine(c, $"- {conn} connections: daemon req/s at {large.Domains:N0} ÷ at {small.Domains:N0} domains = {scale:F2} ({Verdict(scale >= 0.9)})");
            }
        }

        Console.Write(sb.ToString());
        return 0;
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        return v.Length == 0 ? 0 : v.Length % 2 == 1 ? v[v.Length / 2] : (v[(v.Length / 2) - 1] + v[v.Length / 2]) / 2;
    }

    private static string Verdict(bool ok) => ok ? "meets target" : "BELOW target";

    private sealed record Row(string Server, int Domains, int Connections, int Runs, double Rps, double P50, double P99, double P999, long Requests, long Errors);
}
