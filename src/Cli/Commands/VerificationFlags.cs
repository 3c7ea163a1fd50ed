using System.CommandLine;
using System.Globalization;
using Gateway.Api.V1;

namespace Gateway.Cli.Commands;

/// <summary>
/// The flags of <c>domains create|update</c> that edit <c>Domain.recipient_verification</c> (docs/operations.md "Recipient
/// verification"), each with its update_mask path, and how the setting is printed.
/// </summary>
internal sealed class VerificationFlags
{
    private readonly Option<bool?> _enabled = new("--verify-recipients")
    {
        Description = "Verify each inbound recipient with your server at RCPT (RCPT + RSET, never DATA; cached), refusing unknown ones with 550 (true/false; default false)",
    };

    private readonly Option<string?> _positive = new("--verify-positive-ttl") { Description = "How long an accepted recipient is remembered: 1m..31d, e.g. 7d (default); 0: the default" };
    private readonly Option<string?> _negative = new("--verify-negative-ttl") { Description = "How long a refused recipient is remembered: 1m..3d, e.g. 3h (default); 0: the default" };

    public void AddTo(Command c)
    {
        ArgumentNullException.ThrowIfNull(c);
        c.Options.Add(_enabled);
        c.Options.Add(_positive);
        c.Options.Add(_negative);
    }

    /// <summary>Fills <paramref name="d"/> from the flags given and returns the update_mask paths they imply.</summary>
    public IEnumerable<string> Apply(ParseResult p, Domain d)
    {
        ArgumentNullException.ThrowIfNull(p);
        ArgumentNullException.ThrowIfNull(d);
        var paths = new List<string>();
        var v = d.RecipientVerification ??= new RecipientVerification();
        if (p.GetValue(_enabled) is { } enabled)
        {
            v.Enabled = enabled;
            paths.Add("recipient_verification.enabled");
        }

        if (p.GetValue(_positive) is { } positive)
        {
            v.PositiveTtlSeconds = Seconds(positive, "--verify-positive-ttl");
            paths.Add("recipient_verification.positive_ttl_seconds");
        }

        if (p.GetValue(_negative) is { } negative)
        {
            v.NegativeTtlSeconds = Seconds(negative, "--verify-negative-ttl");
            paths.Add("recipient_verification.negative_ttl_seconds");
        }

        return paths;
    }

    /// <summary><c>90</c>, <c>90s</c>, <c>30m</c>, <c>3h</c>, <c>7d</c> in seconds (the server checks the range).</summary>
    public static uint Seconds(string text, string flag)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim().ToLowerInvariant();
        var unit = t.Length > 0 && char.IsAsciiLetter(t[^1]) ? t[^1] : 's';
        var number = char.IsAsciiLetter(unit) && t.Length > 0 && char.IsAsciiLetter(t[^1]) ? t[..^1] : t;
        var factor = unit switch { 's' => 1u, 'm' => 60u, 'h' => 3600u, 'd' => 86400u, _ => 0u };
        if (factor == 0 || !uint.TryParse(number, NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n > uint.MaxValue / factor)
        {
            throw new CliException($"{flag}: '{text}' is not a duration such as 90s, 30m, 3h or 7d");
        }

        return n * factor;
    }

    public static IEnumerable<(string Name, string Value)> Describe(RecipientVerification? v)
    {
        v ??= new RecipientVerification();
        yield return ("recipient verification", v.Enabled
            ? $"on: unknown recipients refused at RCPT after asking your server (accepted kept {Text(v.PositiveTtlSeconds, 7 * 86400)}, refused kept {Text(v.NegativeTtlSeconds, 3 * 3600)})"
            : "off (recipients are checked against the inbound server rows only)");
    }

    /// <summary>For <c>setup</c>: the setting in force and how to change it.</summary>
    public static void WriteSummary(TextWriter w, Domain d)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(d);
        foreach (var (name, value) in Describe(d.RecipientVerification))
        {
            w.WriteLine($"{char.ToUpperInvariant(name[0])}{name[1..]}: {value}.");
        }

        if (d.RecipientVerification?.Enabled != true)
        {
            w.WriteLine($"Turn it on with: gatewayctl domains update {d.Name} --verify-recipients true (docs/operations.md \"Recipient verification\")");
        }
    }

    private static string Text(uint seconds, uint fallback)
    {
        var s = seconds == 0 ? fallback : seconds;
        return s % 86400 == 0 ? $"{s / 86400} d" : s % 3600 == 0 ? $"{s / 3600} h" : s % 60 == 0 ? $"{s / 60} min" : $"{s} s";
    }
}
