using Gateway.Core.Rules;
using Gateway.Core.Snapshot;
using MimeKit;

namespace Gateway.Deliverer.Intake;

/// <summary>What the rules decided for one accepted recipient at intake (null action: deliver).</summary>
public sealed record IntakeVerdict(IntakeRecipient Recipient, RuleAction? Action, PolicyRule? Rule);

/// <summary>Subject and attachment file names, parsed once per message and only when some rule looks at them.</summary>
public sealed record MessageContent(string Subject, IReadOnlyList<string> AttachmentNames)
{
    public static readonly MessageContent None = new(string.Empty, []);

    /// <summary>
    /// Parses the MIME structure with MimeKit in persistent mode (part contents stay slices of the buffer, nothing
    /// is decoded or copied). A message MimeKit cannot parse has no subject and no attachments.
    /// </summary>
    public static MessageContent Parse(byte[] message)
    {
        ArgumentNullException.ThrowIfNull(message);
        try
        {
            using var stream = new MemoryStream(message, writable: false);
            var parser = new MimeParser(stream, MimeFormat.Entity, persistent: true);
            using var parsed = parser.ParseMessage();
            var names = new List<string>();
            CollectNames(parsed, names, 0);
            return new MessageContent(parsed.Subject ?? string.Empty, names);
        }
        catch (FormatException)
        {
            return None;
        }
    }

    /// <summary><see cref="Parse(byte[])"/> over a stream (a message received in pieces, read back block by block from Redis).</summary>
    public static async Task<MessageContent> ParseAsync(Stream stream, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        try
        {
            var parser = new MimeParser(stream, MimeFormat.Entity, persistent: true);
            using var parsed = await parser.ParseMessageAsync(cancellationToken).ConfigureAwait(false);
            var names = new List<string>();
            CollectNames(parsed, names, 0);
            return new MessageContent(parsed.Subject ?? string.Empty, names);
        }
        catch (FormatException)
        {
            return None;
        }
    }

    /// <summary>How deep attached messages are opened (a forward of a forward of …), and how many names are kept.</summary>
    public const int MaxNestedMessages = 8, MaxAttachmentNames = 1000;

    // Attachment names of the message and of every attached message (message/rfc822) inside it, so that a rule on
    // "*.exe" is not escaped by forwarding the file as an attachment of an attached message (security review L3).
    private static void CollectNames(MimeMessage message, List<string> names, int depth)
    {
        foreach (var part in message.BodyParts)
        {
            if (names.Count >= MaxAttachmentNames)
            {
                return;
            }

            var name = part switch
            {
                MimePart p => p.FileName,
                MessagePart m => m.ContentDisposition?.FileName ?? m.ContentType.Name,
                _ => null,
            };
            if (!string.IsNullOrEmpty(name))
            {
                names.Add(name);
            }

            if (part is MessagePart { Message: { } inner } && depth < MaxNestedMessages)
            {
                CollectNames(inner, names, depth + 1);
            }
        }
    }
}

/// <summary>
/// The policy rules at intake (requirements §7): every recipient is evaluated with the rules of the domain that owns its
/// copy (inbound: the recipient's domain; outbound: the sender's), knowing everything — the real size, and the
/// subject and attachment names when a rule needs them. Envelope rules are evaluated again here (defence in
/// depth, and QUARANTINE, which the PolicyDaemon accepts at RCPT). The same <see cref="RuleEvaluator"/> as at RCPT.
/// </summary>
public static class IntakeRules
{
    /// <summary>Whether some recipient's domain has a rule on the subject or attachment names (the MIME structure is parsed then).</summary>
    public static bool NeedsMime(ConfigSnapshot snapshot, IReadOnlyList<IntakeRecipient> recipients)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(recipients);
        return recipients.Any(r => snapshot.Find(r.Domain)?.Rules is { NeedsMime: true });
    }

    /// <summary>The verdict per recipient, or null when no recipient's domain has rules (nothing parsed, nothing allocated per recipient).</summary>
    /// <param name="size">The message's size when <paramref name="body"/> is only its head (a message received in pieces).</param>
    /// <param name="content">The content parsed already (from the pieces in Redis), instead of parsing <paramref name="body"/>.</param>
    public static IReadOnlyList<IntakeVerdict>? Evaluate(ConfigSnapshot snapshot, string sender, IReadOnlyList<IntakeRecipient> recipients, string client, byte[] body,
        long? size = null, MessageContent? content = null)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(recipients);
        ArgumentNullException.ThrowIfNull(body);
        CompiledRuleSet?[]? sets = null;
        var needsMime = false;
        for (var i = 0; i < recipients.Count; i++)
        {
            if (snapshot.Find(recipients[i].Domain)?.Rules is { } set)
            {
                sets ??= new CompiledRuleSet?[recipients.Count];
                sets[i] = set;
                needsMime |= set.NeedsMime;
            }
        }

        if (sets is null)
        {
            return null;
        }

        content = needsMime ? content ?? MessageContent.Parse(body) : MessageContent.None;
        var verdicts = new IntakeVerdict[recipients.Count];
        for (var i = 0; i < recipients.Count; i++)
        {
            var r = recipients[i];
            var outcome = RuleEvaluator.Evaluate(sets[i], new RuleFacts
            {
                Direction = r.Direction,
                Sender = sender,
                Recipient = r.Address,
                ClientAddress = client,
                Size = size ?? body.LongLength,
                SizeIsFinal = true,
                ContentKnown = true,
                Subject = content.Subject,
                AttachmentNames = content.AttachmentNames,
            });
            verdicts[i] = outcome.Verdict == RuleVerdict.Matched
                ? new IntakeVerdict(r, outcome.Rule!.Rule.Action, outcome.Rule.Rule)
                : new IntakeVerdict(r, null, null);
        }

        return verdicts;
    }
}
