using System.CommandLine;
using System.Globalization;
using Gateway.Api.V1;
using Google.Protobuf.WellKnownTypes;

namespace Gateway.Cli.Commands;

/// <summary>quarantine …: QuarantineService (requirements §7): messages held by a QUARANTINE rule.</summary>
internal static class QuarantineCommands
{
    public static Command Quarantine()
    {
        var quarantine = new Command("quarantine", "Messages held by policy rules: list, release, delete");
        quarantine.Subcommands.Add(List());
        quarantine.Subcommands.Add(Release());
        quarantine.Subcommands.Add(Delete());
        return quarantine;
    }

    private static Command List()
    {
        var domain = new Argument<string>("domain");
        var sender = new Option<string?>("--sender") { Description = "Only from senders matching this pattern (a@x.org, *@x.org, x.org, <>)" };
        var recipient = new Option<string?>("--recipient") { Description = "Only to recipients matching this pattern" };
        var since = new Option<DateTimeOffset?>("--since") { Description = "Quarantined at or after this time (ISO 8601)" };
        var until = new Option<DateTimeOffset?>("--until") { Description = "Quarantined before this time (ISO 8601)" };
        var limit = new Option<int>("--limit") { Description = "At most this many messages, newest first", DefaultValueFactory = _ => 100 };
        var list = new Command("list", "Held messages, newest first") { domain, sender, recipient, since, until, limit };
        CommandRunner.SetAction(list, async (ctx, p, ct) =>
        {
            var all = new ListQuarantineResponse();
            var request = new ListQuarantineRequest
            {
                Domain = p.GetValue(domain),
                Sender = p.GetValue(sender) ?? string.Empty,
                Recipient = p.GetValue(recipient) ?? string.Empty,
                StartTime = p.GetValue(since) is { } s ? Timestamp.FromDateTimeOffset(s) : null,
                EndTime = p.GetValue(until) is { } u ? Timestamp.FromDateTimeOffset(u) : null,
            };
            var max = Math.Max(1, p.GetValue(limit));
            do
            {
                request.PageSize = Math.Min(1000, max - all.Messages.Count);
                var page = await Client(ctx).ListQuarantineAsync(request, cancellationToken: ct);
                all.Messages.AddRange(page.Messages);
                request.PageToken = page.NextPageToken;
            }
            while (request.PageToken.Length > 0 && all.Messages.Count < max);

            all.NextPageToken = request.PageToken;
            ctx.Print(all, w => Output.Table(w, ["ID", "QUARANTINED", "DIRECTION", "SENDER", "RECIPIENTS", "SUBJECT", "RULE"],
                all.Messages.Select(m => (IReadOnlyList<string>)
                [
                    m.MessageId, Output.Time(m.QuarantineTime), m.Direction, m.Sender.Length > 0 ? m.Sender : "<>", string.Join(",", m.Recipients),
                    m.Subject.Length > 40 ? m.Subject[..39] + "…" : m.Subject, m.RuleId,
                ])));
        });
        return list;
    }

    private static Command Release()
    {
        var (domain, id) = Ids();
        var release = new Command("release", "Deliver the message now through the domain's current route") { domain, id };
        CommandRunner.SetAction(release, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).ReleaseMessageAsync(new ReleaseMessageRequest { Domain = p.GetValue(domain), MessageId = p.GetValue(id) }, cancellationToken: ct);
            ctx.Print(r, w => w.WriteLine(
                $"Released {r.Message.MessageId}: queued for delivery to {r.Message.Recipients.Count.ToString(CultureInfo.InvariantCulture)} recipient(s); follow it with `gatewayctl queue get {r.Message.Domain} {r.QueueMessageId}`."));
        });
        return release;
    }

    private static Command Delete()
    {
        var (domain, id) = Ids();
        var delete = new Command("delete", "Delete the message without delivering it") { domain, id };
        CommandRunner.SetAction(delete, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).DeleteQuarantinedAsync(new DeleteQuarantinedRequest { Domain = p.GetValue(domain), MessageId = p.GetValue(id) }, cancellationToken: ct);
            ctx.Print(r, w => w.WriteLine($"Deleted {r.Message.MessageId} from the quarantine."));
        });
        return delete;
    }

    private static (Argument<string> Domain, Argument<string> Id) Ids() =>
        (new Argument<string>("domain"), new Argument<string>("message-id") { Description = "The message id, as `quarantine list` shows it" });

    private static QuarantineService.QuarantineServiceClient Client(CliContext ctx) => new(ctx.Invoker);
}
