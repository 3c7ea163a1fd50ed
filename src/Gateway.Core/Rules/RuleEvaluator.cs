using System.Net;
using Gateway.Core.Domains;
using Gateway.Core.MessageLog;
using Gateway.Core.Relay;
using Gateway.Core.Mail;

namespace Gateway.Core.Rules;

/// <summary>
/// What is known about a message when rules are evaluated. At RCPT (PolicyDaemon) only the envelope, the
/// client and perhaps the size the client announced (<c>SIZE=</c>); at intake (Deliverer) everything.
/// </summary>
public readonly record struct RuleFacts
{
    /// <summary>Relative to the domain whose rules run.</summary>
    public required Direction Direction { get; init; }

    /// <summary>Envelope sender; empty for the null sender.</summary>
    public required string Sender { get; init; }

    public required string Recipient { get; init; }

    /// <summary>The SMTP client that sent the message to the gateway, as text; not an address: client conditions do not match.</summary>
    public string? ClientAddress { get; init; }

    /// <summary>The message size: the real one at intake, the announced one at RCPT (null or 0: not announced).</summary>
    public long? Size { get; init; }

    /// <summary>True when <see cref="Size"/> is the real size (intake) rather than the client's announcement.</summary>
    public bool SizeIsFinal { get; init; }

    /// <summary>True at intake: <see cref="Subject"/> and <see cref="AttachmentNames"/> are known.</summary>
    public bool ContentKnown { get; init; }

    /// <summary>The decoded Subject header (empty when none).</summary>
    public string? Subject { get; init; }

    public IReadOnlyList<string>? AttachmentNames { get; init; }
}

public enum RuleVerdict
{
    /// <summary>No rule matched: deliver.</summary>
    NoMatch,

    /// <summary><see cref="RuleOutcome.Rule"/> matched; its action applies.</summary>
    Matched,

    /// <summary>
    /// A rule needs facts not known yet (content at RCPT): nothing after it may be applied now, since it might
    /// match first (a DELIVER stops evaluation). The stage that knows more (intake) decides.
    /// </summary>
    Undecided,
}

public readonly record struct RuleOutcome(RuleVerdict Verdict, CompiledRule? Rule)
{
    public static readonly RuleOutcome None = new(RuleVerdict.NoMatch, null);
}

/// <summary>
/// The one evaluation of a domain's rules for both stages (requirements §7): first rule whose conditions all match
/// wins; disabled rules and rules of the other direction are skipped; facts not known at this stage make
/// the outcome <see cref="RuleVerdict.Undecided"/> at the first rule that needs them. Pure, no I/O. Time is linear
/// in the length of the addresses whatever the patterns (<see cref="GlobSet"/>, docs/requirements.md §11).
/// </summary>
public static class RuleEvaluator
{
    private const int StackWords = 64;

    public static RuleOutcome Evaluate(CompiledRuleSet? rules, in RuleFacts facts)
    {
        if (rules is null || rules.Rules.Length == 0)
        {
            return RuleOutcome.None;
        }

        // Every pattern of every rule is matched in one linear pass per address (GlobSet), before the walk.
        var words = GlobSet.WordsFor(rules.Rules.Length);
        ulong[]? rented = null;
        var hits = words * 3 <= StackWords ? stackalloc ulong[words * 3] : (rented = System.Buffers.ArrayPool<ulong>.Shared.Rent(words * 3)).AsSpan(0, words * 3);
        hits.Clear();
        try
        {
            var senders = hits[..words];
            var recipients = hits.Slice(words, words);
            var attachments = hits.Slice(words * 2, words);
            rules.Senders.Match(facts.Sender, senders);
            rules.Recipients.Match(facts.Recipient, recipients);
            if (facts.ContentKnown && rules.Attachments.Count > 0 && facts.AttachmentNames is { } names)
            {
                foreach (var name in names)
                {
                    rules.MatchAttachment(name, attachments);
                }
            }

            return Walk(rules, facts, senders, recipients, attachments);
        }
        finally
        {
            if (rented is not null)
            {
                System.Buffers.ArrayPool<ulong>.Shared.Return(rented);
            }
        }
    }

    private static RuleOutcome Walk(CompiledRuleSet rules, in RuleFacts facts, ReadOnlySpan<ulong> senders, ReadOnlySpan<ulong> recipients, ReadOnlySpan<ulong> attachments)
    {
        var inbound = facts.Direction == Direction.Inbound;
        IPAddress? client = null;
        var clientParsed = false;
        for (var i = 0; i < rules.Rules.Length; i++)
        {
            var rule = rules.Rules[i];
            if (rule.Direction != RuleDirection.Both && (rule.Direction == RuleDirection.Inbound) != inbound)
            {
                continue;
            }

            if (rule.Ips is not null && !clientParsed)
            {
                clientParsed = true;
                client = IpAddressText.TryParseClient(facts.ClientAddress, out var parsed) ? parsed : null;
            }

            switch (rule.Match(facts, client, GlobSet.IsSet(senders, i), GlobSet.IsSet(recipients, i), GlobSet.IsSet(attachments, i)))
            {
                case Tri.Yes:
                    return new RuleOutcome(RuleVerdict.Matched, rule);
                case Tri.Unknown:
                    return new RuleOutcome(RuleVerdict.Undecided, rule);
            }
        }

        return RuleOutcome.None;
    }
}

internal enum Tri
{
    No,
    Yes,
    Unknown,
}

/// <summary>A rule with its networks compiled once per snapshot load; its patterns are compiled with the whole set (<see cref="CompiledRuleSet"/>).</summary>
public sealed class CompiledRule
{
    public CompiledRule(PolicyRule rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        Rule = rule;
        // Validation keeps bad networks out; one that slipped into storage matches nothing rather than failing the load.
        Ips = rule.ClientIps.Count == 0 ? null
            : IpRangeSet.Create(rule.ClientIps.Select(t => IpRangeSet.TryParseNetwork(t, out var n) ? (System.Net.IPNetwork?)n : null).OfType<System.Net.IPNetwork>());
    }

    public PolicyRule Rule { get; }

    public RuleDirection Direction => Rule.Direction;

    internal IpRangeSet? Ips { get; }

    /// <summary>The Deliverer must parse the message (subject, attachments) for this rule.</summary>
    public bool NeedsMime => Rule.HasContentConditions;

    /// <param name="senderHit">One of the rule's sender patterns matches (computed for all rules at once).</param>
    /// <param name="recipientHit">One of its recipient patterns matches.</param>
    /// <param name="attachmentHit">One of its attachment patterns matches one of the message's attachment names.</param>
    internal Tri Match(in RuleFacts facts, IPAddress? client, bool senderHit, bool recipientHit, bool attachmentHit)
    {
        // Known conditions first: any that fails settles it, whatever is unknown.
        if (Rule.Senders.Count > 0 && !senderHit)
        {
            return Tri.No;
        }

        if (Rule.Recipients.Count > 0 && !recipientHit)
        {
            return Tri.No;
        }

        if (Ips is not null && (client is null || !Ips.Contains(client)))
        {
            return Tri.No;
        }

        var unknown = false;
        if (Rule.SizeAbove > 0)
        {
            if (facts.Size is > 0 and var size && size > Rule.SizeAbove)
            {
                // Bigger than the limit (announced or real): matches.
            }
            else if (facts.SizeIsFinal)
            {
                return Tri.No;
            }
            else
            {
                unknown = true; // not announced, or announced small: the real size may still be bigger
            }
        }

        if (Rule.SubjectContains.Length > 0)
        {
            if (!facts.ContentKnown)
            {
                unknown = true;
            }
            else if (facts.Subject is null || !facts.Subject.Contains(Rule.SubjectContains, StringComparison.OrdinalIgnoreCase))
            {
                return Tri.No;
            }
        }

        if (Rule.AttachmentNames.Count > 0)
        {
            if (!facts.ContentKnown)
            {
                unknown = true;
            }
            else if (!attachmentHit)
            {
                return Tri.No;
            }
        }

        return unknown ? Tri.Unknown : Tri.Yes;
    }
}

/// <summary>A domain's enabled rules, compiled, in order; null on a <see cref="Snapshot.DomainEntry"/> when there are none.</summary>
public sealed class CompiledRuleSet
{
    private readonly GlobSet _attachments;
    private readonly int[] _attachmentOwner;

    private CompiledRuleSet(CompiledRule[] rules)
    {
        Rules = rules;
        NeedsMime = rules.Any(r => r.NeedsMime);
        Senders = new AddressPatternSet(rules.SelectMany((r, i) => r.Rule.Senders.Select(p => (p, i))), rules.Length);
        Recipients = new AddressPatternSet(rules.SelectMany((r, i) => r.Rule.Recipients.Select(p => (p, i))), rules.Length);
        var attachments = rules.SelectMany((r, i) => r.Rule.AttachmentNames.Select(p => (p, i))).ToArray();
        _attachments = new GlobSet(attachments.Select(a => a.p).ToArray());
        _attachmentOwner = attachments.Select(a => a.i).ToArray();
    }

    public CompiledRule[] Rules { get; }

    /// <summary>Some rule looks at the subject or the attachments: the intake parses the message's MIME structure.</summary>
    public bool NeedsMime { get; }

    /// <summary>Every rule's sender patterns; a match sets the bit of the rule's position.</summary>
    public AddressPatternSet Senders { get; }

    /// <summary>Every rule's recipient patterns.</summary>
    public AddressPatternSet Recipients { get; }

    /// <summary>Every rule's attachment name patterns.</summary>
    public GlobSet Attachments => _attachments;

    /// <summary>Sets the bit of every rule with an attachment pattern matching <paramref name="name"/>.</summary>
    public void MatchAttachment(string name, Span<ulong> owners)
    {
        ArgumentNullException.ThrowIfNull(name);
        AddressPatternSet.Collect(_attachments, name, _attachmentOwner, owners);
    }

    /// <summary>Compiles the enabled rules; null when there are none (the hot paths then only test for null).</summary>
    public static CompiledRuleSet? Compile(RuleList? list)
    {
        if (list is null || list.Rules.Count == 0)
        {
            return null;
        }

        var enabled = list.Rules.Where(r => r.Enabled).Select(r => new CompiledRule(r)).ToArray();
        return enabled.Length == 0 ? null : new CompiledRuleSet(enabled);
    }
}
