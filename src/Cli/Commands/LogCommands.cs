using System.CommandLine;
using System.Globalization;
using Gateway.Api.V1;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;

namespace Gateway.Cli.Commands;

/// <summary>logs …: MessageLogService (requirements §7: every step of every message, per domain, queryable and followable).</summary>
internal static class LogCommands
{
    public static Command Logs()
    {
        var logs = new Command("logs", "The message log of a domain: query past events, follow new ones");
        logs.Subcommands.Add(Query());
        logs.Subcommands.Add(Follow());
        return logs;
    }

    /// <summary>The filters both subcommands share.</summary>
    private sealed class Filters
    {
        public readonly Argument<string> Domain = new("domain");
        public readonly Option<string?> MessageId = new("--message-id") { Description = "One message's events (its id from the queue, setup or `queued as`)" };
        public readonly Option<string?> PostfixQueueId = new("--postfix-queue-id") { Description = "Events linked to Postfix's queue id (policy decision, intake)" };
        public readonly Option<string?> Sender = new("--sender") { Description = "Envelope sender; @domain for all of a domain" };
        public readonly Option<string?> Recipient = new("--recipient") { Description = "Recipient; @domain for all of a domain" };
        public readonly Option<string?> Direction = new("--direction") { Description = "inbound or outbound" };
        public readonly Option<string[]> Events = new("--event")
        {
            Description = "Only these events (repeat or comma-separate): policy_reject, policy_accept, intake, attempt, deferred, delivered, bounced, expired, quarantined, released, deleted, retry, scanned, verified, verify_failed",
        };

        public readonly Option<string?> Since = new("--since") { Description = "From this time: 2026-01-31T08:00:00Z, or an age such as 30m, 2h, 7d" };

        public void AddTo(Command c)
        {
            c.Arguments.Add(Domain);
            foreach (var o in new System.CommandLine.Option[] { MessageId, PostfixQueueId, Sender, Recipient, Direction, Events, Since })
            {
                c.Options.Add(o);
            }
        }

        public IEnumerable<string> EventNames(ParseResult p) =>
            (p.GetValue(Events) ?? []).SelectMany(e => e.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    private static Command Query()
    {
        var f = new Filters();
        var until = new Option<string?>("--until") { Description = "Before this time (same forms as --since)" };
        var limit = new Option<int>("--limit") { Description = "At most this many events", DefaultValueFactory = _ => 100 };
        var order = new Option<string?>("--order") { Description = "newest (default) or oldest; with --message-id oldest, the message's story in order" };
        var query = new Command("query", "Past events of a domain, newest first, with filters") { until, limit, order };
        f.AddTo(query);
        CommandRunner.SetAction(query, async (ctx, p, ct) =>
        {
            var messageId = p.GetValue(f.MessageId);
            var oldest = (p.GetValue(order) ?? (messageId is null ? "newest" : "oldest")) switch
            {
                "oldest" => true,
                "newest" => false,
                var o => throw new CliException($"--order must be newest or oldest, not '{o}'", ExitCodes.Usage),
            };
            var max = p.GetValue(limit);
            if (max <= 0)
            {
                throw new CliException("--limit must be positive", ExitCodes.Usage);
            }

            var request = new QueryLogRequest
            {
                Domain = p.GetValue(f.Domain), MessageId = messageId ?? string.Empty, PostfixQueueId = p.GetValue(f.PostfixQueueId) ?? string.Empty,
                Sender = p.GetValue(f.Sender) ?? string.Empty, Recipient = p.GetValue(f.Recipient) ?? string.Empty,
                Direction = p.GetValue(f.Direction) ?? string.Empty, Order = oldest ? LogOrder.OldestFirst : LogOrder.NewestFirst,
                StartTime = Time(p.GetValue(f.Since), "--since"), EndTime = Time(p.GetValue(until), "--until"),
            };
            request.Events.AddRange(f.EventNames(p));

            var all = new QueryLogResponse();
            do
            {
                request.PageSize = Math.Min(1000, max - all.Events.Count);
                var page = await Client(ctx).QueryLogAsync(request, cancellationToken: ct);
                all.Events.AddRange(page.Events);
                request.PageToken = page.NextPageToken;
            }
            while (request.PageToken.Length > 0 && all.Events.Count < max);

            all.NextPageToken = request.PageToken;
            ctx.Print(all, w =>
            {
                Output.Table(w, ["TIME", "EVENT", "MESSAGE", "DIR", "SENDER", "RECIPIENT", "HOST", "REPLY / DETAIL"], all.Events.Select(Row));
                if (all.NextPageToken.Length > 0)
                {
                    w.WriteLine($"(more events: raise --limit, now {max}, or narrow the filters)");
                }
            });
        });
        return query;
    }

    private static Command Follow()
    {
        var f = new Filters();
        var count = new Option<int>("--count") { Description = "Stop after this many events (0: until interrupted), e.g. --event delivered --count 1 in a script" };
        var follow = new Command("follow", "New events of a domain as they happen, until interrupted (Ctrl+C); --json prints one JSON object per line") { count };
        f.AddTo(follow);
        CommandRunner.SetAction(follow, async (ctx, p, ct) =>
        {
            var request = new FollowLogRequest
            {
                Domain = p.GetValue(f.Domain), MessageId = p.GetValue(f.MessageId) ?? string.Empty, PostfixQueueId = p.GetValue(f.PostfixQueueId) ?? string.Empty,
                Sender = p.GetValue(f.Sender) ?? string.Empty, Recipient = p.GetValue(f.Recipient) ?? string.Empty,
                Direction = p.GetValue(f.Direction) ?? string.Empty, StartTime = Time(p.GetValue(f.Since), "--since"),
            };
            request.Events.AddRange(f.EventNames(p));
            var stopAfter = p.GetValue(count);
            if (stopAfter < 0)
            {
                throw new CliException("--count must not be negative", ExitCodes.Usage);
            }

            var seen = 0;
            try
            {
                using var call = Client(ctx).FollowLog(request, cancellationToken: ct);
                await foreach (var e in call.ResponseStream.ReadAllAsync(ct))
                {
                    if (ctx.Json)
                    {
                        ctx.PrintJson(e);
                    }
                    else
                    {
                        ctx.Out.WriteLine(string.Join("  ", Row(e)));
                    }

                    await ctx.Out.FlushAsync(ct);
                    if (++seen == stopAfter)
                    {
                        return;
                    }
                }
            }
            catch (Exception e) when (ct.IsCancellationRequested && e is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
            {
                // Ctrl+C: the normal end of following.
            }
        });
        return follow;
    }

    private static IReadOnlyList<string> Row(LogEvent e) =>
    [
        Output.Time(e.Time), e.Event, e.MessageId.Length > 0 ? e.MessageId : "-", e.Direction.Length > 0 ? e.Direction : "-",
        e.Sender.Length > 0 ? e.Sender : "<>", e.Recipient.Length > 0 ? e.Recipient : "-", e.Host.Length > 0 ? e.Host : "-",
        string.Join(" | ", new[] { e.Reply, e.Detail }.Where(s => s.Length > 0)) is { Length: > 0 } text ? text : "-",
    ];

    /// <summary>An absolute time (ISO 8601) or an age before now (<c>90s</c>, <c>30m</c>, <c>2h</c>, <c>7d</c>).</summary>
    internal static Timestamp? Time(string? text, string option)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }

        text = text.Trim();
        if (text.Length > 1 && "smhd".Contains(text[^1], StringComparison.Ordinal) &&
            int.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
        {
            var age = text[^1] switch
            {
                's' => TimeSpan.FromSeconds(n),
                'm' => TimeSpan.FromMinutes(n),
                'h' => TimeSpan.FromHours(n),
                _ => TimeSpan.FromDays(n),
            };
            return Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow - age);
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
        {
            return Timestamp.FromDateTimeOffset(t);
        }

        throw new CliException($"{option} must be a time such as 2026-01-31T08:00:00Z or an age such as 30m, 2h, 7d; '{text}' given", ExitCodes.Usage);
    }

    private static MessageLogService.MessageLogServiceClient Client(CliContext ctx) => new(ctx.Invoker);
}
