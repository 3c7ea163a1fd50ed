using Gateway.Core.Errors;
using Gateway.Core.Relay;
using Gateway.Core.Rules;
using Gateway.Core.Domains;

namespace Gateway.ControlPlane.Application;

/// <summary>
/// Validates and normalises a rule as a client sent it: trims, lower-cases patterns (matching is
/// case-insensitive anyway), canonicalises networks, and reports each bad field by its path.
/// </summary>
public static class RuleValidator
{
    public const int MaxText = 200;
    private const int MaxPattern = 254;

    /// <summary>The update mask paths of a rule (empty or <c>*</c>: all of them).</summary>
    public static readonly IReadOnlyList<string> MaskPaths =
        ["description", "disabled", "direction", "senders", "recipients", "client_ips", "size_above", "subject_contains", "attachment_names", "action", "reject_text"];

    public static PolicyRule Normalize(PolicyRule rule, string prefix, List<FieldViolation> violations)
    {
        ArgumentNullException.ThrowIfNull(rule);
        ArgumentNullException.ThrowIfNull(violations);
        var description = rule.Description.Trim();
        if (description.Length > MaxText || description.Any(char.IsControl))
        {
            violations.Add(new($"{prefix}.description", $"description must be one line of at most {MaxText} characters"));
        }

        var senders = Patterns(rule.Senders, $"{prefix}.senders", allowNullSender: true, violations);
        var recipients = Patterns(rule.Recipients, $"{prefix}.recipients", allowNullSender: false, violations);
        var ips = Networks(rule.ClientIps, $"{prefix}.client_ips", violations);
        if (rule.SizeAbove < 0)
        {
            violations.Add(new($"{prefix}.size_above", "size_above must not be negative (0: no size condition)"));
        }

        var subject = rule.SubjectContains.Trim();
        if (subject.Length > MaxText || subject.Any(char.IsControl))
        {
            violations.Add(new($"{prefix}.subject_contains", $"subject_contains must be one line of at most {MaxText} characters (no CR, LF or control characters)"));
        }

        var attachments = List(rule.AttachmentNames, $"{prefix}.attachment_names", violations, (text, field) =>
        {
            if (text.Length > 255 || text.Any(c => char.IsControl(c) || c is '/' or '\\'))
            {
                violations.Add(new(field, $"'{Shown(text)}' is not a file name pattern (a name or glob like *.exe, no path, at most 255 characters)"));
                return null;
            }

            return text.ToLowerInvariant();
        });

        if (!Enum.IsDefined(rule.Action))
        {
            violations.Add(new($"{prefix}.action", "action must be REJECT, QUARANTINE or DELIVER"));
        }

        if (!Enum.IsDefined(rule.Direction))
        {
            violations.Add(new($"{prefix}.direction", "direction must be BOTH, INBOUND or OUTBOUND"));
        }

        var text = rule.RejectText.Trim();
        if (text.Length > 0)
        {
            if (rule.Action != RuleAction.Reject)
            {
                violations.Add(new($"{prefix}.reject_text", "reject_text is only for the REJECT action"));
            }
            else if (text.Contains('\r', StringComparison.Ordinal) || text.Contains('\n', StringComparison.Ordinal))
            {
                violations.Add(new($"{prefix}.reject_text", "reject_text must be one line: it is sent as the SMTP reply (no CR or LF)"));
            }
            else if (text.Length > MaxText || text.Any(c => c is < ' ' or > '~'))
            {
                violations.Add(new($"{prefix}.reject_text", $"reject_text must be printable ASCII (an SMTP reply), at most {MaxText} characters"));
            }
        }

        var normalized = rule with
        {
            Description = description,
            Senders = senders,
            Recipients = recipients,
            ClientIps = ips,
            SubjectContains = subject,
            AttachmentNames = attachments,
            RejectText = text,
        };
        if (senders.Count == 0 && recipients.Count == 0 && ips.Count == 0 && rule.SizeAbove <= 0 && subject.Length == 0 && attachments.Count == 0 &&
            rule.Senders.Count == 0 && rule.Recipients.Count == 0 && rule.ClientIps.Count == 0 && rule.AttachmentNames.Count == 0)
        {
            violations.Add(new(prefix, "a rule needs at least one condition: senders, recipients, client_ips, size_above, subject_contains or attachment_names"));
        }

        return normalized;
    }

    private static List<string> Patterns(IReadOnlyList<string> patterns, string field, bool allowNullSender, List<FieldViolation> violations) =>
        List(patterns, field, violations, (text, f) =>
        {
            if (allowNullSender && text == AddressPattern.NullSender)
            {
                return text;
            }

            if (PatternError(text) is { } error)
            {
                violations.Add(new(f, $"'{Shown(text)}' is not an address pattern: {error}. Examples: bad@example.org, *@example.com, *.spam.example"
                    + (allowNullSender ? ", <> (the null sender)" : string.Empty)));
                return null;
            }

            return text.ToLowerInvariant();
        });

    private static string? PatternError(string text)
    {
        if (text.Length > MaxPattern)
        {
            return $"longer than {MaxPattern} characters";
        }

        if (text.Any(c => char.IsWhiteSpace(c) || char.IsControl(c) || c is '<' or '>' or '"' or ',' or ';'))
        {
            return "spaces, control characters, quotes, <, >, ',' and ';' are not allowed";
        }

        var at = text.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0 && text.IndexOf('@', at + 1) >= 0)
        {
            return "more than one '@'";
        }

        if (at == 0)
        {
            return "nothing before '@' (use *@domain for every address of a domain)";
        }

        var domain = at < 0 ? text : text[(at + 1)..];
        if (domain.Length == 0)
        {
            return "nothing after '@'";
        }

        if (!domain.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '*' or '?'))
        {
            return "the domain part may hold only letters, digits, '.', '-', '_' and the wildcards * and ? (IDN as A-label, xn--…)";
        }

        if (domain.Contains("..", StringComparison.Ordinal))
        {
            return "empty label ('..') in the domain part";
        }

        return null;
    }

    private static List<string> Networks(IReadOnlyList<string> networks, string field, List<FieldViolation> violations) =>
        List(networks, field, violations, (text, f) =>
        {
            if (!IpRangeSet.TryParseNetwork(text, out var network))
            {
                violations.Add(new(f, $"'{Shown(text)}' is not an IPv4/IPv6 address or CIDR network (e.g. 192.0.2.7, 198.51.100.0/24, 2001:db8::/32)"));
                return null;
            }

            var single = !text.Contains('/', StringComparison.Ordinal);
            // A single IPv4-mapped IPv6 address is stored as IPv4, as clients are compared (IpAddressText.TryParseClient).
            return !single ? network.ToString()
                : network.BaseAddress.IsIPv4MappedToIPv6 ? network.BaseAddress.MapToIPv4().ToString() : network.BaseAddress.ToString();
        });

    private static List<string> List(IReadOnlyList<string> items, string field, List<FieldViolation> violations, Func<string, string, string?> one)
    {
        var result = new List<string>(items.Count);
        if (items.Count > RuleDefaults.MaxEntriesPerCondition)
        {
            violations.Add(new(field, $"at most {RuleDefaults.MaxEntriesPerCondition} entries; {items.Count} given"));
            return result;
        }

        for (var i = 0; i < items.Count; i++)
        {
            var text = (items[i] ?? string.Empty).Trim();
            if (text.Length == 0)
            {
                violations.Add(new($"{field}[{i}]", "must not be empty"));
                continue;
            }

            if (one(text, $"{field}[{i}]") is { } ok && !result.Contains(ok, StringComparer.Ordinal))
            {
                result.Add(ok);
            }
        }

        return result;
    }

    private static string Shown(string text) => text.Length > 60 ? text[..60] + "…" : text;
}
