using System.Globalization;
using System.Text;
using System.Text.Json;

namespace PolicyBench;

/// <summary>Markdown from the JSON lines of a run: per domain count and concurrency, each server, with the targets.</summary>
internal static class Report
{
    public static int Run(Options o)
    {
        var results = File.ReadAllLines(o["in"])
            .Where(l => l.Length > 0)
            .Select(l => JsonSerializer.Deserialize<LoadResult>(l, LoadResult.Json)!)
            .ToList();
        var sb = new StringBuilder();
        var c = CultureInfo.InvariantCulture;
        sb.AppendLine("| domains | connections | server | req/s | p50 µs | p99 µs | p99.9 µs | vs trivial: req/s | vs trivial: p99 | errors |");
        sb.AppendLine("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var group in results.GroupBy(r => (r.Domains, r.Connections)).OrderBy(g => g.Key.Domains).ThenBy(g => g.Key.Connections))
        {
            var trivial = group.LastOrDefault(r => r.Server == "trivial");
            foreach (var r in group)
            {
                var ratio = trivial is null || r.Server == "trivial" ? "" : (r.Rps / trivial.Rps).ToString("F2", c);
                var p99 = trivial is null || r.Server == "trivial" ? "" : ((double)r.P99Us / trivial.P99Us).ToString("F2", c);
                sb.AppendLine(c, $"| {r.Domains:N0} | {r.Connections} | {r.Server} | {r.Rps:N0} | {r.P50Us} | {r.P99Us} | {r.P999Us} | {ratio} | {p99} | {r.Errors} |");
            }
        }

        sb.AppendLine();
        sb.AppendLine("Targets (issue 3): daemon ≥ 0.8 × trivial req/s and p99 ≤ 1.2 × trivial p99 at each concurrency; daemon req/s at 100,000 domains ≥ 0.9 × at 10.");
        sb.AppendLine();
        var daemon = results.Where(r => r.Server == "daemon").ToList();
        foreach (var conn in daemon.Select(r => r.Connections).Distinct().Order())
        {
            foreach (var domains in daemon.Select(r => r.Domains).Distinct().Order())
            {
                var d = daemon.LastOrDefault(r => r.Connections == conn && r.Domains == domains);
                var t = results.LastOrDefault(r => r.Server == "trivial" && r.Connections == conn && r.Domains == domains);
                if (d is null || t is null)
                {
                    continue;
                }

                var tput = d.Rps / t.Rps;
                var lat = (double)d.P99Us / t.P99Us;
                sb.AppendLine(c, $"- {domains:N0} domains, {conn} connections: throughput {tput:F2} × trivial ({Verdict(tput >= 0.8)}), p99 {lat:F2} × trivial ({Verdict(lat <= 1.2)})");
            }

            var small = daemon.Where(r => r.Connections == conn).MinBy(r => r.Domains);
            var large = daemon.Where(r => r.Connections == conn).MaxBy(r => r.Domains);
            if (small is not null && large is not null && small.Domains != large.Domains)
            {
                var scale = large.Rps / small.Rps;
                sb.AppendLine(c, $"- {conn} connections: {large.Domains:N0} vs {small.Domains:N0} domains: {scale:F2} ({Verdict(scale >= 0.9)})");
            }

            var pf = results.LastOrDefault(r => r.Server == "postfwd" && r.Connections == conn && r.Domains == small?.Domains);
            if (small is not null && pf is { Rps: > 0 })
            {
                sb.AppendLine(c, $"- {conn} connections, {small.Domains:N0} domains: daemon / postfwd = {small.Rps / pf.Rps:F0} ×");
            }
        }

        Console.Write(sb.ToString());
        return 0;
    }

    private static string Verdict(bool ok) => ok ? "meets target" : "BELOW target";
}
