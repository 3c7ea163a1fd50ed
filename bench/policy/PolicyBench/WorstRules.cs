using System.Diagnostics;
using System.Globalization;
using Gateway.Core.Domains;
using Gateway.Core.Relay;
using Gateway.Core.Rules;
using Gateway.Core.Snapshot;
using Gateway.ControlPlane.Application;

namespace PolicyBench;

/// <summary>
/// The policy decision per RCPT (relay rules + the domain's envelope rules, <see cref="RelayEngine"/>: what the
/// PolicyDaemon runs for each request, without the socket) for a domain holding the worst rule set the default
/// tenant limits allow (<see cref="TenantLimits.RulesPerDomain"/>, <see cref="TenantLimits.RuleBytesPerDomain"/>),
/// against 2,000-character addresses (about Postfix's line limit). Side by side in the same run: the backtracking
/// glob the gateway used before (commit ff520a2, copied below) on the same rules and addresses, and the same
/// decision for a domain with 10 ordinary rules. Reports p50/p99/max per decision (docs/benchmarks.md).
/// </summary>
internal static class WorstRules
{
    public static int Run(Options o)
    {
        var seconds = o.Int("seconds", 10);
        var limits = new TenantLimits();
        var shapes = new (string Name, Func<int, string> Pattern, int Length)[]
        {
            ("'*'+a×240+'c@*' (security review H4)", _ => "*" + new string('a', 240) + "c@*", 244),
            ("'*a*a…*a*c@*' (a star every other character)", _ => string.Concat(Enumerable.Repeat("*a", 125)) + "*c@*", 254),
            ("'*a…c@*' 64 characters, one rule each", _ => "*" + new string('a', 60) + "c@*", 64),
        };
        var sender = new string('a', 2000) + "@x.test";
        var recipient = new string('a', 1990) + "@worst.test";
        Console.WriteLine($"# Worst-case rules: one policy decision per RCPT ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} CPUs, .NET {Environment.Version})");
        Console.WriteLine();
        Console.WriteLine($"Limits: {limits.RulesPerDomain} rules, {limits.RuleBytesPerDomain:N0} characters per domain. Sender {sender.Length} characters, recipient {recipient.Length}.");
        Console.WriteLine();
        Console.WriteLine("| rule set | matcher | decisions | p50 µs | p99 µs | max µs |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|");
        Measure("10 ordinary rules", "GlobSet (now)", Ordinary(), sender, recipient, seconds, backtracking: false);
        foreach (var (name, pattern, length) in shapes)
        {
            // As many patterns as the character budget allows, split between sender and recipient conditions,
            // at most 100 per condition and at most RulesPerDomain rules.
            var patterns = Math.Min(limits.RuleBytesPerDomain / length, limits.RulesPerDomain * 200);
            const int perRule = 2;
            var rules = Enumerable.Range(0, Math.Min(limits.RulesPerDomain, patterns / perRule)).Select(i => new PolicyRule
            {
                Id = "r" + i.ToString("x12", CultureInfo.InvariantCulture),
                Action = RuleAction.Reject,
                Senders = [pattern(i)],
                Recipients = [pattern(i)],
            }).ToList();
            var chars = TenantLimits.RuleBytes(rules);
            var label = $"{rules.Count} rules × 2 patterns {name}, {chars:N0} characters";
            Measure(label, "GlobSet (now)", rules, sender, recipient, seconds, backtracking: false);
            Measure(label, "backtracking glob (ff520a2)", rules, sender, recipient, seconds, backtracking: true);
        }

        return 0;
    }

    private static List<PolicyRule> Ordinary() => Enumerable.Range(0, 10).Select(i => new PolicyRule
    {
        Id = "o" + i.ToString("x12", CultureInfo.InvariantCulture),
        Action = RuleAction.Reject,
        Senders = [$"*@spam{i}.example", $"bad{i}@*"],
        Recipients = [$"ceo{i}@worst.test"],
    }).ToList();

    private static void Measure(string ruleSet, string matcher, List<PolicyRule> rules, string sender, string recipient, int seconds, bool backtracking)
    {
        var domain = new DomainConfig
        {
            Name = "worst.test",
            CompanyId = "bench",
            Settings = new DomainSettings(true, [new InboundServer("*@worst.test", "192.0.2.1", 25, 10)], OutboundSettings.Disabled),
            Verification = new VerificationState(new string('a', 32), true, VerificationMethod.Txt, DateTimeOffset.UtcNow),
            CreateTime = DateTimeOffset.UtcNow,
            UpdateTime = DateTimeOffset.UtcNow,
        };
        var snapshot = new ConfigSnapshot();
        var list = new RuleList { Revision = 1, Rules = rules };
        snapshot.Replace([domain], 1, DateTimeOffset.UtcNow, new Dictionary<string, RuleList> { ["worst.test"] = list });
        var engine = new RelayEngine([backtracking ? new BacktrackingCheck(rules) : new RuleEnvelopeCheck()]);
        var none = new ProviderRangeList("bench", DateTimeOffset.UtcNow, []);
        var providers = new ProviderRanges(none, none);
        var request = new RelayRequest { Stage = SmtpStage.Rcpt, Sender = sender, Recipient = recipient, ClientAddress = "198.51.100.7" };
        var latencies = new List<double>();
        var deadline = Stopwatch.GetTimestamp() + (long)(seconds * (double)Stopwatch.Frequency);
        var outcome = RelayOutcome.NotApplicable;
        while (Stopwatch.GetTimestamp() < deadline || latencies.Count < 3)
        {
            var start = Stopwatch.GetTimestamp();
            outcome = engine.Evaluate(request, snapshot, providers).Outcome;
            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
        }

        latencies.Sort();
        double P(double q) => latencies[Math.Min(latencies.Count - 1, (int)Math.Ceiling(q * latencies.Count) - 1)];
        Console.WriteLine($"| {ruleSet} | {matcher} | {latencies.Count:N0} ({outcome}) | {P(0.5):N0} | {P(0.99):N0} | {latencies[^1]:N0} |");
    }

    /// <summary>The envelope rule check with the matching the gateway used before: every pattern of every rule in turn, backtracking.</summary>
    private sealed class BacktrackingCheck(List<PolicyRule> rules) : IEnvelopeCheck
    {
        public EnvelopeRefusal? Check(RelayRequest request, RelayDecision accepted)
        {
            foreach (var rule in rules)
            {
                if (rule.Senders.Any(p => IsMatch(p, request.Sender)) && rule.Recipients.Any(p => IsMatch(p, request.Recipient)))
                {
                    return new EnvelopeRefusal(false, rule.EffectiveRejectText, rule.Id);
                }
            }

            return null;
        }
    }

    /// <summary>Glob.IsMatch as of commit ff520a2 (single backtrack point), for the side-by-side measurement only.</summary>
    private static bool IsMatch(string pattern, ReadOnlySpan<char> text)
    {
        var p = pattern.AsSpan();
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
}
