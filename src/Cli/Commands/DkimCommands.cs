using System.CommandLine;
using Gateway.Api.V1;

namespace Gateway.Cli.Commands;

/// <summary>domains dkim …: DKIM signing of a domain's outbound mail (EnableDkim, RotateDkimKey, DisableDkim; docs/outbound.md).</summary>
internal static class DkimCommands
{
    public static Command Dkim()
    {
        var dkim = new Command("dkim", "DKIM signing of the domain's outbound mail: enable, rotate, disable, show");
        dkim.Subcommands.Add(Enable());
        dkim.Subcommands.Add(Rotate());
        dkim.Subcommands.Add(Disable());
        dkim.Subcommands.Add(Show());
        return dkim;
    }

    private static Option<string?> AlgorithmOption(string description) => new("--algorithm") { Description = description };

    private static Command Enable()
    {
        var name = new Argument<string>("domain");
        var algorithm = AlgorithmOption("rsa (RSA-2048, the default) or ed25519");
        var selector = new Option<string?>("--selector") { Description = "The selector (default: gw<yyyymmdd>)" };
        var enable = new Command("enable", "Generate a DKIM key; signing starts once its TXT record is published and seen") { name, algorithm, selector };
        CommandRunner.SetAction(enable, async (ctx, p, ct) =>
        {
            var d = await Client(ctx).EnableDkimAsync(new EnableDkimRequest
            {
                Name = p.GetValue(name), Algorithm = ParseAlgorithm(p.GetValue(algorithm)), Selector = p.GetValue(selector) ?? string.Empty,
            }, cancellationToken: ct);
            ctx.Print(d, w => PrintRecords(w, d));
        });
        return enable;
    }

    private static Command Rotate()
    {
        var name = new Argument<string>("domain");
        var algorithm = AlgorithmOption("rsa or ed25519 (default: as the current key)");
        var selector = new Option<string?>("--selector") { Description = "The new selector (default: gw<yyyymmdd>)" };
        var rotate = new Command("rotate", "Start a key rotation: a new key signs once its record is seen; the old record stays until it retires")
        {
            name, algorithm, selector,
        };
        CommandRunner.SetAction(rotate, async (ctx, p, ct) =>
        {
            var d = await Client(ctx).RotateDkimKeyAsync(new RotateDkimKeyRequest
            {
                Name = p.GetValue(name), Algorithm = ParseAlgorithm(p.GetValue(algorithm)), Selector = p.GetValue(selector) ?? string.Empty,
            }, cancellationToken: ct);
            ctx.Print(d, w => PrintRecords(w, d));
        });
        return rotate;
    }

    private static Command Disable()
    {
        var name = new Argument<string>("domain");
        var disable = new Command("disable", "Stop signing and delete the domain's DKIM keys") { name };
        CommandRunner.SetAction(disable, async (ctx, p, ct) =>
        {
            var d = await Client(ctx).DisableDkimAsync(new DisableDkimRequest { Name = p.GetValue(name) }, cancellationToken: ct);
            ctx.Print(d, w => w.WriteLine($"DKIM is off for {d.Name}; its keys are deleted. Remove its *._domainkey TXT records when no mail signed with them is on its way."));
        });
        return disable;
    }

    private static Command Show()
    {
        var name = new Argument<string>("domain");
        var show = new Command("show", "The DKIM state and the TXT records to publish") { name };
        CommandRunner.SetAction(show, async (ctx, p, ct) =>
        {
            var d = await Client(ctx).GetDomainAsync(new GetDomainRequest { Name = p.GetValue(name) }, cancellationToken: ct);
            ctx.Print(d.Dkim ?? new DkimSettings(), w => PrintRecords(w, d));
        });
        return show;
    }

    /// <summary>What the customer must publish, and what the gateway does meanwhile.</summary>
    internal static void PrintRecords(TextWriter w, Domain d)
    {
        if (d.Dkim is not { Enabled: true } k)
        {
            w.WriteLine($"DKIM is off for {d.Name} (gatewayctl domains dkim enable {d.Name}).");
            return;
        }

        w.WriteLine($"{d.Name}: DKIM {Summary(k)}");
        w.WriteLine();
        w.WriteLine("Publish (and keep) these TXT records:");
        Record(w, k.Current.Record);
        if (k.Next is { } next)
        {
            Record(w, next.Record);
        }

        if (k.Retired is { } retired)
        {
            w.WriteLine();
            w.WriteLine($"Keep the retired key's record until {Output.Time(k.RetiredUntil)}, then remove it:");
            Record(w, retired.Record);
        }

        w.WriteLine();
        w.WriteLine(k.State switch
        {
            DkimState.PendingDns => $"Signing starts once the gateway sees the record: gatewayctl domains check {d.Name}",
            DkimState.Rotating => $"The gateway switches to selector {k.Next.Selector} once it sees its record: gatewayctl domains check {d.Name}",
            _ => $"Outbound mail is signed (d={d.Name}, s={k.Selector}; headers: {string.Join(", ", k.SignedHeaders.Distinct())}).",
        });
    }

    internal static string Summary(DkimSettings? k) => k is not { Enabled: true } ? "off" : k.State switch
    {
        DkimState.PendingDns => $"pending_dns (selector {k.Selector}: publish its record)",
        DkimState.Active => $"active (selector {k.Selector})",
        DkimState.Rotating => $"rotating (signing with {k.Selector}, waiting for {k.Next?.Selector})",
        _ => "unknown",
    };

    internal static string TlsText(TlsMode mode) => mode switch
    {
        TlsMode.Required => "required",
        TlsMode.Verify => "verify",
        _ => "opportunistic",
    };

    internal static TlsMode? ParseTls(string text) => text.ToLowerInvariant() switch
    {
        "opportunistic" or "" => TlsMode.Opportunistic,
        "required" => TlsMode.Required,
        "verify" => TlsMode.Verify,
        _ => null,
    };

    private static DkimAlgorithm ParseAlgorithm(string? text) => text?.ToLowerInvariant() switch
    {
        null or "" => DkimAlgorithm.Unspecified,
        "rsa" or "rsa-2048" or "rsa-sha256" => DkimAlgorithm.Rsa,
        "ed25519" or "ed25519-sha256" => DkimAlgorithm.Ed25519,
        _ => throw new CliException($"--algorithm '{text}': rsa or ed25519"),
    };

    private static void Record(TextWriter w, DnsRecord r) => w.WriteLine($"    {r.Name}.  IN TXT  \"{r.Value}\"");

    private static DomainService.DomainServiceClient Client(CliContext ctx) => new(ctx.Invoker);
}
