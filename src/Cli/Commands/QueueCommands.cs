using System.CommandLine;
using System.Globalization;
using Gateway.Api.V1;

namespace Gateway.Cli.Commands;

/// <summary>queue …: QueueService (requirements §6 "Operators can list the queue per domain, … retry now, bounce or delete").</summary>
internal static class QueueCommands
{
    public static Command Queue()
    {
        var queue = new Command("queue", "Messages waiting for delivery: list, show, retry now, bounce, delete");
        queue.Subcommands.Add(List());
        queue.Subcommands.Add(Get());
        queue.Subcommands.Add(Retry());
        queue.Subcommands.Add(Bounce());
        queue.Subcommands.Add(Delete());
        return queue;
    }

    private static Command List()
    {
        var domain = new Argument<string>("domain");
        var pageSize = new Option<int>("--page-size") { Description = "Messages per request (all pages are read)", DefaultValueFactory = _ => 200 };
        var list = new Command("list", "The domain's queued messages, by next attempt") { domain, pageSize };
        CommandRunner.SetAction(list, async (ctx, p, ct) =>
        {
            var all = new ListQueueResponse();
            var token = string.Empty;
            do
            {
                var page = await Client(ctx).ListQueueAsync(new ListQueueRequest { Domain = p.GetValue(domain), PageSize = p.GetValue(pageSize), PageToken = token },
                    cancellationToken: ct);
                all.Messages.AddRange(page.Messages);
                token = page.NextPageToken;
            }
            while (token.Length > 0);

            ctx.Print(all, w => Output.Table(w, ["ID", "DIRECTION", "SENDER", "PENDING", "ATTEMPTS", "NEXT ATTEMPT", "LAST ERROR"],
                all.Messages.Select(m => (IReadOnlyList<string>)
                [
                    m.MessageId, m.Direction, Sender(m), $"{m.Recipients.Count(r => r.State == RecipientState.Pending)}/{m.Recipients.Count}",
                    m.Attempts.ToString(CultureInfo.InvariantCulture), Output.Time(m.NextAttemptTime), Shorten(m.LastError, 60),
                ])));
        });
        return list;
    }

    private static Command Get()
    {
        var (domain, id) = Ids();
        var get = new Command("get", "One queued message: recipients, their last reply, next attempt") { domain, id };
        CommandRunner.SetAction(get, async (ctx, p, ct) =>
        {
            var m = await Client(ctx).GetQueuedMessageAsync(new GetQueuedMessageRequest { Domain = p.GetValue(domain), MessageId = p.GetValue(id) }, cancellationToken: ct);
            ctx.Print(m, w => PrintMessage(w, m));
        });
        return get;
    }

    private static Command Retry()
    {
        var (domain, id) = Ids();
        var retry = new Command("retry", "Attempt the message now") { domain, id };
        CommandRunner.SetAction(retry, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).RetryNowAsync(new RetryNowRequest { Domain = p.GetValue(domain), MessageId = p.GetValue(id) }, cancellationToken: ct);
            ctx.Print(r, w => w.WriteLine(r.InFlight
                ? $"{r.Message.MessageId} is being attempted right now."
                : $"{r.Message.MessageId} is due now; a Deliverer attempts it within moments."));
        });
        return retry;
    }

    private static Command Bounce()
    {
        var (domain, id) = Ids();
        var reason = new Option<string?>("--reason") { Description = "Said in the delivery status notification (default: bounced by the gateway operator)" };
        var bounce = new Command("bounce", "Remove the message and tell its sender (a DSN for every recipient not yet delivered)") { domain, id, reason };
        CommandRunner.SetAction(bounce, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).BounceMessageAsync(new BounceMessageRequest { Domain = p.GetValue(domain), MessageId = p.GetValue(id), Reason = p.GetValue(reason) ?? string.Empty },
                cancellationToken: ct);
            ctx.Print(r, w => w.WriteLine(r.DsnMessageId.Length > 0
                ? $"Bounced {r.Message.MessageId}; DSN {r.DsnMessageId} queued for {Sender(r.Message)}."
                : $"Bounced {r.Message.MessageId}; no DSN (null sender, or the sender asked for none)."));
        });
        return bounce;
    }

    private static Command Delete()
    {
        var (domain, id) = Ids();
        var delete = new Command("delete", "Remove the message without telling anyone") { domain, id };
        CommandRunner.SetAction(delete, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).DeleteMessageAsync(new DeleteMessageRequest { Domain = p.GetValue(domain), MessageId = p.GetValue(id) }, cancellationToken: ct);
            ctx.Print(r, w => w.WriteLine($"Deleted {r.Message.MessageId}."));
        });
        return delete;
    }

    internal static void PrintMessage(TextWriter w, QueuedMessage m)
    {
        Output.Fields(w,
        [
            ("message", m.MessageId),
            ("domain", m.Domain),
            ("direction", m.Direction),
            ("sender", Sender(m)),
            ("size", $"{m.SizeBytes} bytes"),
            ("created", Output.Time(m.CreateTime)),
            ("attempts", m.Attempts.ToString(CultureInfo.InvariantCulture)),
            ("next attempt", Output.Time(m.NextAttemptTime)),
            ("expires", Output.Time(m.ExpireTime)),
            ("last error", m.LastError.Length > 0 ? m.LastError : "-"),
        ]);
        w.WriteLine();
        Output.Table(w, ["RECIPIENT", "STATE", "LAST HOST", "LAST REPLY"], m.Recipients.Select(r => (IReadOnlyList<string>)
            [r.Address, State(r.State), r.LastHost.Length > 0 ? r.LastHost : "-", r.LastReply.Length > 0 ? r.LastReply : "-"]));
    }

    internal static string State(RecipientState s) => s switch
    {
        RecipientState.Pending => "pending",
        RecipientState.Delivered => "delivered",
        RecipientState.Failed => "failed",
        _ => "-",
    };

    private static string Sender(QueuedMessage m) => m.Sender.Length > 0 ? m.Sender : "<>";

    private static string Shorten(string s, int max) => s.Length <= max ? s : s[..(max - 1)] + "…";

    private static (Argument<string> Domain, Argument<string> Id) Ids() =>
        (new Argument<string>("domain"), new Argument<string>("message-id") { Description = "The message id, as `queue list` shows it" });

    private static QueueService.QueueServiceClient Client(CliContext ctx) => new(ctx.Invoker);
}
