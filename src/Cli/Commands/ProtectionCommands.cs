using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Gateway.Api.V1;

namespace Gateway.Cli.Commands;

/// <summary>
/// The flags of <c>domains create|update</c> that edit <c>Domain.protection</c> (docs/protection.md), each with its
/// update_mask path, and how a policy is printed.
/// </summary>
internal sealed class ProtectionFlags
{
    private readonly Option<double?> _tag = new("--spam-tag-score") { Description = "Deliver with X-Spam-Flag: YES from this rspamd score (default 6; 0: off)" };
    private readonly Option<double?> _quarantine = new("--spam-quarantine-score") { Description = "Quarantine from this score (default 10; 0: off)" };
    private readonly Option<double?> _reject = new("--spam-reject-score") { Description = "Refuse with 550 5.7.1 from this score (default 15; 0: off)" };
    private readonly Option<bool?> _subjectTag = new("--spam-subject-tag") { Description = "Prefix the subject of tagged mail with [SPAM] (true/false)" };
    private readonly Option<double?> _outbound = new("--outbound-reject-score") { Description = "Refuse the domain's outbound mail from this score (default 0: off, only logged)" };
    private readonly Option<string?> _malware = new("--malware") { Description = "Malware: reject (default) or quarantine; unverified domains always reject" };
    private readonly Option<bool?> _dmarc = new("--dmarc-enforce") { Description = "Honour the sender's DMARC p=reject/p=quarantine (true/false; default true)" };
    private readonly Option<string?> _spoofing = new("--spoofing") { Description = "Unauthenticated mail claiming a managed domain in From: deliver, tag, quarantine (default) or reject" };
    private readonly Option<string?> _failure = new("--on-scanner-failure") { Description = "While rspamd or clamd fails: tempfail (default, 451) or pass (delivered with X-Gateway-Unscanned)" };

    public void AddTo(Command c)
    {
        ArgumentNullException.ThrowIfNull(c);
        foreach (var o in new Option[] { _tag, _quarantine, _reject, _subjectTag, _outbound, _malware, _dmarc, _spoofing, _failure })
        {
            c.Options.Add(o);
        }
    }

    /// <summary>Fills <c>d.Protection</c> from the flags given and returns the update_mask paths they imply.</summary>
    public List<string> Apply(ParseResult p, Domain d)
    {
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(d);
        var paths = new List<string>();
        var protection = d.Protection ?? new ProtectionSettings();
        var spam = protection.Spam ?? new SpamProtection();
        if (p.GetValue(_tag) is { } tag)
        {
            spam.TagScore = tag;
            paths.Add("protection.spam.tag_score");
        }

        if (p.GetValue(_quarantine) is { } quarantine)
        {
            spam.QuarantineScore = quarantine;
            paths.Add("protection.spam.quarantine_score");
        }

        if (p.GetValue(_reject) is { } reject)
        {
            spam.RejectScore = reject;
            paths.Add("protection.spam.reject_score");
        }

        if (p.GetValue(_subjectTag) is { } subject)
        {
            spam.SubjectTag = subject;
            paths.Add("protection.spam.subject_tag");
        }

        if (p.GetValue(_outbound) is { } outbound)
        {
            spam.OutboundRejectScore = outbound;
            paths.Add("protection.spam.outbound_reject_score");
        }

        if (p.GetValue(_malware) is { } malware)
        {
            protection.Malware = Action(malware, "--malware");
            paths.Add("protection.malware");
        }

        if (p.GetValue(_dmarc) is { } dmarc)
        {
            protection.DmarcEnforce = dmarc;
            paths.Add("protection.dmarc_enforce");
        }

        if (p.GetValue(_spoofing) is { } spoofing)
        {
            protection.Spoofing = Action(spoofing, "--spoofing");
            paths.Add("protection.spoofing");
        }

        if (p.GetValue(_failure) is { } failure)
        {
            protection.OnScannerFailure = failure.ToLowerInvariant() switch
            {
                "tempfail" => ScannerFailureAction.Tempfail,
                "pass" => ScannerFailureAction.Pass,
                _ => throw new CliException($"--on-scanner-failure '{failure}': expected tempfail or pass"),
            };
            paths.Add("protection.on_scanner_failure");
        }

        if (paths.Count > 0)
        {
            protection.Spam = spam;
            d.Protection = protection;
        }

        return paths;
    }

    private static ProtectionAction Action(string text, string flag) => text.ToLowerInvariant() switch
    {
        "deliver" => ProtectionAction.Deliver,
        "tag" => ProtectionAction.Tag,
        "quarantine" => ProtectionAction.Quarantine,
        "reject" => ProtectionAction.Reject,
        _ => throw new CliException($"{flag} '{text}': expected deliver, tag, quarantine or reject"),
    };

    /// <summary>One line per part of the policy, values in force (the API shows defaults too).</summary>
    public static IEnumerable<(string Name, string Value)> Describe(ProtectionSettings? p)
    {
        p ??= new ProtectionSettings();
        var s = p.Spam ?? new SpamProtection();
        string Threshold(double v) => v > 0 ? "≥ " + v.ToString("0.##", CultureInfo.InvariantCulture) : "off";
        yield return ("spam", $"tag {Threshold(s.TagScore)}{(s.SubjectTag ? " (+[SPAM] subject)" : string.Empty)}, quarantine {Threshold(s.QuarantineScore)}, reject {Threshold(s.RejectScore)}; outbound reject {Threshold(s.OutboundRejectScore)}");
        yield return ("malware", Name(p.Malware));
        yield return ("DMARC", p.DmarcEnforce ? "enforced (p=reject refused, p=quarantine held)" : "not enforced (only in the headers)");
        yield return ("spoofing", Name(p.Spoofing) + " (From: a managed domain, not authenticated)");
        yield return ("scanner failure", p.OnScannerFailure == ScannerFailureAction.Pass ? "pass (delivered with X-Gateway-Unscanned)" : "tempfail (451 4.7.1, the sender retries)");
    }

    /// <summary>The policy in force, for <c>setup</c>: every message is scanned from now on, with these settings.</summary>
    public static void WriteSummary(TextWriter w, Domain d)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(d);
        w.WriteLine("Inbound protection: every message is scanned (rspamd, ClamAV) before the gateway accepts it. Policy in force:");
        foreach (var (name, value) in Describe(d.Protection))
        {
            w.WriteLine($"  {name}: {value}");
        }

        w.WriteLine($"Change it with: gatewayctl domains update {d.Name} --spam-reject-score N --malware quarantine --on-scanner-failure pass … (docs/protection.md)");
    }

    private static string Name(ProtectionAction a) => a switch
    {
        ProtectionAction.Deliver => "deliver",
        ProtectionAction.Tag => "tag",
        ProtectionAction.Quarantine => "quarantine",
        ProtectionAction.Reject => "reject",
        _ => "default",
    };
}

/// <summary><c>protection learn spam|ham DIR</c>: trains rspamd's Bayes classifier through its controller.</summary>
internal static class ProtectionCommands
{
    public const string DefaultController = "http://127.0.0.1:11334";

    public static Command Protection()
    {
        var protection = new Command("protection", "Inbound protection engines (docs/protection.md)");
        protection.Subcommands.Add(Learn());
        return protection;
    }

    private static Command Learn()
    {
        var kind = new Argument<string>("kind") { Description = "spam or ham" };
        kind.AcceptOnlyFromAmong("spam", "ham");
        var dir = new Argument<string>("dir") { Description = "A folder of messages, one per file (an mbox \"From \" first line is dropped); sub-folders too" };
        var controller = new Option<string?>("--controller")
        {
            Description = $"rspamd's controller (default $GATEWAY_RSPAMD_CONTROLLER or {DefaultController})",
        };
        var password = new Option<string?>("--password") { Description = "The controller's enable password (default $GATEWAY_RSPAMD_PASSWORD; none from loopback)" };
        var parallel = new Option<int>("--parallel") { Description = "Messages sent at once", DefaultValueFactory = _ => 4 };
        var all = new Option<bool>("--all")
        {
            Description = "Learn every message (rspamd's Learn-Type: bulk); by default rspamd skips those Bayes already classifies with 95 % certainty",
        };
        var learn = new Command("learn", "Feed a folder of messages to rspamd's Bayes learning (/learnspam, /learnham)") { kind, dir, controller, password, parallel, all };
        CommandRunner.SetAction(learn, async (ctx, p, ct) =>
        {
            var folder = p.GetValue(dir)!;
            if (!Directory.Exists(folder))
            {
                throw new CliException($"{folder}: no such folder");
            }

            var url = new Uri((p.GetValue(controller) ?? Environment.GetEnvironmentVariable("GATEWAY_RSPAMD_CONTROLLER") ?? DefaultController).TrimEnd('/') + "/");
            var pass = p.GetValue(password) ?? Environment.GetEnvironmentVariable("GATEWAY_RSPAMD_PASSWORD");
            var files = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Where(f => !Path.GetFileName(f).StartsWith('.')).Order(StringComparer.Ordinal).ToList();
            var report = await LearnAsync(url, p.GetValue(kind)!, pass, files, Math.Max(1, p.GetValue(parallel)), p.GetValue(all), ct);
            if (ctx.Json)
            {
                ctx.Out.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
                {
                    ["kind"] = report.Kind, ["learned"] = report.Learned, ["skipped"] = report.Skipped, ["failed"] = report.Failed, ["errors"] = report.Errors,
                }));
            }
            else
            {
                ctx.Out.WriteLine($"Learned {report.Learned} message(s) as {report.Kind} at {url}; {report.Skipped} already known or already classified; {report.Failed} failed.");
                foreach (var e in report.Errors.Take(10))
                {
                    ctx.Out.WriteLine("  " + e);
                }
            }

            if (report.Failed > 0)
            {
                throw new CliException($"{report.Failed} of {files.Count} message(s) could not be learned", report.Learned + report.Skipped > 0 ? ExitCodes.Failure : ExitCodes.Unavailable);
            }
        });
        return learn;
    }

    /// <summary>What a learning run did (printed, or as JSON with --json).</summary>
    internal sealed record LearnReport(string Kind, int Learned, int Skipped, int Failed, IReadOnlyList<string> Errors);

    private static async Task<LearnReport> LearnAsync(Uri controller, string kind, string? password, IReadOnlyList<string> files, int parallel, bool all, CancellationToken ct)
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = TimeSpan.FromSeconds(60) };
        var endpoint = new Uri(controller, kind == "spam" ? "learnspam" : "learnham");
        int learned = 0, skipped = 0, failed = 0;
        var errors = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = ct }, async (file, token) =>
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, endpoint) { Content = new ReadOnlyMemoryContent(WithoutMboxLine(await File.ReadAllBytesAsync(file, token))) };
                if (!string.IsNullOrEmpty(password))
                {
                    request.Headers.TryAddWithoutValidation("Password", password);
                }

                if (all)
                {
                    request.Headers.TryAddWithoutValidation("Learn-Type", "bulk");
                }

                using var response = await http.SendAsync(request, token);
                var body = await response.Content.ReadAsStringAsync(token);
                if (response.IsSuccessStatusCode && Success(body))
                {
                    Interlocked.Increment(ref learned);
                }
                else if (response.StatusCode is (HttpStatusCode)208 or HttpStatusCode.NoContent || body.Contains("already learned", StringComparison.OrdinalIgnoreCase))
                {
                    // rspamd answers 208 for a message it has learned as this class before, and 204 for one its Bayes already
                    // puts in this class with 95 % certainty (lua_bayes_learn.can_learn: it trains on errors).
                    Interlocked.Increment(ref skipped);
                }
                else
                {
                    Interlocked.Increment(ref failed);
                    errors.Enqueue($"{file}: HTTP {(int)response.StatusCode} {body.Trim()}");
                }
            }
            catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                Interlocked.Increment(ref failed);
                errors.Enqueue($"{file}: {e.Message}");
            }
        });
        return new LearnReport(kind, learned, skipped, failed, [.. errors]);
    }

    /// <summary>A message saved from an mbox starts with its "From " separator line, which is no header field: it is dropped.</summary>
    internal static ReadOnlyMemory<byte> WithoutMboxLine(byte[] message)
    {
        if (message.AsSpan().StartsWith("From "u8))
        {
            var lf = Array.IndexOf(message, (byte)'\n');
            return lf < 0 ? message : message.AsMemory(lf + 1);
        }

        return message;
    }

    private static bool Success(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("success", out var s) && s.ValueKind == JsonValueKind.True;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
