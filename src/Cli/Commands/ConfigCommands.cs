using System.CommandLine;
using System.Globalization;
using Gateway.Api.V1;

namespace Gateway.Cli.Commands;

/// <summary>config …: ConfigStateService (operator key): the stored configuration after suspected Redis data loss.</summary>
internal static class ConfigCommands
{
    public static Command Config()
    {
        var config = new Command("config", "The stored configuration as a whole: status, and accepting it after Redis lost data (operator key)");

        var status = new Command("status", "Show the stored config version, domain count, last acceptance and programs holding their last good snapshot");
        CommandRunner.SetAction(status, async (ctx, p, ct) =>
        {
            var s = await Client(ctx).GetConfigStateAsync(new GetConfigStateRequest(), cancellationToken: ct);
            ctx.Print(s, w => Print(w, s));
        });

        var reason = new Option<string>("--reason") { Description = "Why the stored state is accepted (kept with the acceptance)", Required = true };
        var accept = new Command("accept",
            "Accept the configuration as stored now: every PolicyDaemon and Deliverer reloads it, and those holding their last good snapshot let go of it") { reason };
        CommandRunner.SetAction(accept, async (ctx, p, ct) =>
        {
            var s = await Client(ctx).AcceptConfigStateAsync(new AcceptConfigStateRequest { Reason = p.GetValue(reason) ?? string.Empty }, cancellationToken: ct);
            ctx.Print(s, w =>
            {
                w.WriteLine($"Accepted config version {s.Version.ToString(CultureInfo.InvariantCulture)} with {s.DomainCount.ToString(CultureInfo.InvariantCulture)} domains.");
                Print(w, s);
            });
        });

        config.Subcommands.Add(status);
        config.Subcommands.Add(accept);
        return config;
    }

    private static ConfigStateService.ConfigStateServiceClient Client(CliContext ctx) => new(ctx.Invoker);

    private static void Print(TextWriter w, ConfigState s)
    {
        Output.Fields(w,
        [
            ("version", s.Version.ToString(CultureInfo.InvariantCulture)),
            ("lineage", s.Epoch),
            ("domains", s.DomainCount.ToString(CultureInfo.InvariantCulture)),
            ("last accepted", s.LastAcceptance is { } a
                ? $"{Output.Time(a.AcceptTime)} by {a.AcceptedBy} at version {a.Version.ToString(CultureInfo.InvariantCulture)}: {a.Reason}"
                : "never"),
            ("held", s.Held.Count.ToString(CultureInfo.InvariantCulture)),
        ]);
        if (s.Held.Count > 0)
        {
            Output.Table(w, ["HELD BY", "SINCE", "REASON"], s.Held.Select(h => (IReadOnlyList<string>)[h.Instance, Output.Time(h.Since), h.Reason]));
        }
    }
}
