using System.CommandLine;
using System.Globalization;
using Gateway.Api.V1;
using Google.Protobuf.WellKnownTypes;

namespace Gateway.Cli.Commands;

/// <summary>rules …: PolicyRuleService (requirements §7, docs/rules.md): a domain's ordered rules.</summary>
internal static class RuleCommands
{
    public static Command Rules()
    {
        var rules = new Command("rules", "A domain's ordered policy rules: list, add, get, update, delete, move");
        rules.Subcommands.Add(List());
        rules.Subcommands.Add(Add());
        rules.Subcommands.Add(Get());
        rules.Subcommands.Add(Update());
        rules.Subcommands.Add(Delete());
        rules.Subcommands.Add(Move());
        return rules;
    }

    /// <summary>The flags that describe a rule, shared by add and update.</summary>
    private sealed class RuleFlags
    {
        public readonly Option<string[]> Senders = new("--sender") { Description = "Envelope sender pattern: bad@x.org, *@x.org, x.org, *.spam.example, <>; repeat for more (any matches)" };
        public readonly Option<string[]> Recipients = new("--recipient") { Description = "Envelope recipient pattern, as --sender; repeat for more" };
        public readonly Option<string[]> ClientIps = new("--client-ip") { Description = "Client IP address or CIDR (IPv4/IPv6); repeat for more" };
        public readonly Option<long?> SizeAbove = new("--size-above") { Description = "Messages larger than this many bytes (0: no size condition)" };
        public readonly Option<string?> Subject = new("--subject-contains") { Description = "Case-insensitive text in the Subject header" };
        public readonly Option<string[]> Attachments = new("--attachment") { Description = "Attachment file name pattern, e.g. '*.exe'; repeat for more" };
        public readonly Option<string?> Action = new("--action") { Description = "reject, quarantine or deliver" };
        public readonly Option<string?> Text = new("--reject-text") { Description = "What a REJECT tells the SMTP client (one line)" };
        public readonly Option<string?> Direction = new("--direction") { Description = "both (default), inbound or outbound" };
        public readonly Option<string?> Description = new("--description") { Description = "A note for people" };
        public readonly Option<bool?> Disabled = new("--disabled") { Description = "Keep the rule but skip it (true/false)" };

        public void AddTo(Command c)
        {
            foreach (var o in new System.CommandLine.Option[] { Senders, Recipients, ClientIps, SizeAbove, Subject, Attachments, Action, Text, Direction, Description, Disabled })
            {
                c.Options.Add(o);
            }
        }

        /// <summary>Fills <paramref name="r"/> from the flags given and returns the update_mask paths they imply.</summary>
        public List<string> Apply(ParseResult p, PolicyRule r)
        {
            var paths = new List<string>();
            void List(Option<string[]> o, Google.Protobuf.Collections.RepeatedField<string> field, string path)
            {
                if (p.GetResult(o) is not null)
                {
                    field.Clear();
                    field.AddRange((p.GetValue(o) ?? []).Where(v => v.Length > 0));
                    paths.Add(path);
                }
            }

            List(Senders, r.Senders, "senders");
            List(Recipients, r.Recipients, "recipients");
            List(ClientIps, r.ClientIps, "client_ips");
            List(Attachments, r.AttachmentNames, "attachment_names");
            if (p.GetValue(SizeAbove) is { } size)
            {
                r.SizeAbove = size;
                paths.Add("size_above");
            }

            if (p.GetValue(Subject) is { } subject)
            {
                r.SubjectContains = subject;
                paths.Add("subject_contains");
            }

            if (p.GetValue(Action) is { } action)
            {
                r.Action = ParseAction(action);
                paths.Add("action");
            }

            if (p.GetValue(Text) is { } text)
            {
                r.RejectText = text;
                paths.Add("reject_text");
            }

            if (p.GetValue(Direction) is { } direction)
            {
                r.Direction = direction.ToLowerInvariant() switch
                {
                    "both" => RuleDirection.Both,
                    "inbound" => RuleDirection.Inbound,
                    "outbound" => RuleDirection.Outbound,
                    _ => throw new CliException($"--direction must be both, inbound or outbound, not '{direction}'"),
                };
                paths.Add("direction");
            }

            if (p.GetValue(Description) is { } description)
            {
                r.Description = description;
                paths.Add("description");
            }

            if (p.GetValue(Disabled) is { } disabled)
            {
                r.Disabled = disabled;
                paths.Add("disabled");
            }

            return paths;
        }
    }

    private static RuleAction ParseAction(string action) => action.ToLowerInvariant() switch
    {
        "reject" => RuleAction.Reject,
        "quarantine" => RuleAction.Quarantine,
        "deliver" => RuleAction.Deliver,
        _ => throw new CliException($"--action must be reject, quarantine or deliver, not '{action}'"),
    };

    private static Command List()
    {
        var domain = new Argument<string>("domain");
        var list = new Command("list", "The domain's rules in evaluation order (the first that matches decides)") { domain };
        CommandRunner.SetAction(list, async (ctx, p, ct) =>
        {
            var all = new ListRulesResponse();
            var token = string.Empty;
            do
            {
                var page = await Client(ctx).ListRulesAsync(new ListRulesRequest { Domain = p.GetValue(domain), PageSize = 1000, PageToken = token }, cancellationToken: ct);
                all.Rules.AddRange(page.Rules);
                token = page.NextPageToken;
            }
            while (token.Length > 0);

            ctx.Print(all, w => Output.Table(w, ["#", "ID", "ACTION", "DIRECTION", "CONDITIONS", "STATE"],
                all.Rules.Select(r => (IReadOnlyList<string>)
                [
                    r.Position.ToString(CultureInfo.InvariantCulture), r.Id, ActionText(r), DirectionText(r.Direction), Conditions(r), r.Disabled ? "disabled" : "enabled",
                ])));
        });
        return list;
    }

    private static Command Add()
    {
        var domain = new Argument<string>("domain");
        var position = new Option<int>("--position") { Description = "1-based position (1 is evaluated first); default: last" };
        var flags = new RuleFlags();
        var add = new Command("add", "Add a rule: conditions (all must match) and an --action") { domain, position };
        flags.AddTo(add);
        CommandRunner.SetAction(add, async (ctx, p, ct) =>
        {
            var rule = new PolicyRule();
            flags.Apply(p, rule);
            var created = await Client(ctx).CreateRuleAsync(new CreateRuleRequest { Domain = p.GetValue(domain), Rule = rule, Position = p.GetValue(position) }, cancellationToken: ct);
            ctx.Print(created, w => PrintRule(w, created));
        });
        return add;
    }

    private static Command Get()
    {
        var (domain, id) = Ids();
        var get = new Command("get", "One rule") { domain, id };
        CommandRunner.SetAction(get, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).GetRuleAsync(new GetRuleRequest { Domain = p.GetValue(domain), RuleId = p.GetValue(id) }, cancellationToken: ct);
            ctx.Print(r, w => PrintRule(w, r));
        });
        return get;
    }

    private static Command Update()
    {
        var (domain, id) = Ids();
        var etag = new Option<string?>("--etag") { Description = "Refuse the change if the rule changed since this etag" };
        var flags = new RuleFlags();
        var update = new Command("update", "Change the fields given by flags; others stay as they are (an empty list flag clears it)") { domain, id, etag };
        flags.AddTo(update);
        CommandRunner.SetAction(update, async (ctx, p, ct) =>
        {
            var rule = new PolicyRule { Id = p.GetValue(id), Etag = p.GetValue(etag) ?? string.Empty };
            var paths = flags.Apply(p, rule);
            if (paths.Count == 0)
            {
                throw new CliException("nothing to change: give a condition, --action, --reject-text, --direction, --description or --disabled");
            }

            var mask = new FieldMask();
            mask.Paths.AddRange(paths);
            var updated = await Client(ctx).UpdateRuleAsync(new UpdateRuleRequest { Domain = p.GetValue(domain), Rule = rule, UpdateMask = mask }, cancellationToken: ct);
            ctx.Print(updated, w => PrintRule(w, updated));
        });
        return update;
    }

    private static Command Delete()
    {
        var (domain, id) = Ids();
        var etag = new Option<string?>("--etag") { Description = "Refuse if the rule changed since this etag" };
        var delete = new Command("delete", "Remove a rule") { domain, id, etag };
        CommandRunner.SetAction(delete, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).DeleteRuleAsync(new DeleteRuleRequest { Domain = p.GetValue(domain), RuleId = p.GetValue(id), Etag = p.GetValue(etag) ?? string.Empty },
                cancellationToken: ct);
            ctx.Print(r, w => w.WriteLine($"Deleted rule {r.Rule.Id}."));
        });
        return delete;
    }

    private static Command Move()
    {
        var (domain, id) = Ids();
        var position = new Argument<int>("position") { Description = "New 1-based position (1 is evaluated first)" };
        var move = new Command("move", "Move a rule in the evaluation order") { domain, id, position };
        CommandRunner.SetAction(move, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).MoveRuleAsync(new MoveRuleRequest { Domain = p.GetValue(domain), RuleId = p.GetValue(id), Position = p.GetValue(position) }, cancellationToken: ct);
            ctx.Print(r, w => w.WriteLine($"Rule {r.Id} is now number {r.Position}."));
        });
        return move;
    }

    internal static void PrintRule(TextWriter w, PolicyRule r) => Output.Fields(w,
    [
        ("rule", r.Id),
        ("position", r.Position.ToString(CultureInfo.InvariantCulture)),
        ("action", ActionText(r)),
        ("direction", DirectionText(r.Direction)),
        ("conditions", Conditions(r)),
        ("decided at", r.ContentRule ? "intake (needs the message)" : "RCPT (envelope)"),
        ("state", r.Disabled ? "disabled" : "enabled"),
        ("description", r.Description.Length > 0 ? r.Description : "-"),
        ("etag", r.Etag),
        ("updated", Output.Time(r.UpdateTime)),
    ]);

    private static string ActionText(PolicyRule r) => r.Action switch
    {
        RuleAction.Reject => r.RejectText.Length > 0 ? $"reject \"{r.RejectText}\"" : "reject",
        RuleAction.Quarantine => "quarantine",
        RuleAction.Deliver => "deliver",
        _ => "-",
    };

    private static string DirectionText(RuleDirection d) => d switch
    {
        RuleDirection.Inbound => "inbound",
        RuleDirection.Outbound => "outbound",
        _ => "both",
    };

    private static string Conditions(PolicyRule r)
    {
        var parts = new List<string>();
        if (r.Senders.Count > 0) parts.Add("sender " + string.Join("|", r.Senders));
        if (r.Recipients.Count > 0) parts.Add("recipient " + string.Join("|", r.Recipients));
        if (r.ClientIps.Count > 0) parts.Add("client " + string.Join("|", r.ClientIps));
        if (r.SizeAbove > 0) parts.Add($"size > {r.SizeAbove.ToString(CultureInfo.InvariantCulture)}");
        if (r.SubjectContains.Length > 0) parts.Add($"subject ~ \"{r.SubjectContains}\"");
        if (r.AttachmentNames.Count > 0) parts.Add("attachment " + string.Join("|", r.AttachmentNames));
        return parts.Count > 0 ? string.Join(" and ", parts) : "-";
    }

    private static (Argument<string> Domain, Argument<string> Id) Ids() =>
        (new Argument<string>("domain"), new Argument<string>("rule-id") { Description = "The rule id, as `rules list` shows it" });

    private static PolicyRuleService.PolicyRuleServiceClient Client(CliContext ctx) => new(ctx.Invoker);
}
