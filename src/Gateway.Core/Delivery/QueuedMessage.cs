using System.Text.Json.Serialization;
using Gateway.Core.Mail;

namespace Gateway.Core.Delivery;

/// <summary>Where a recipient stands.</summary>
public enum RecipientState
{
    /// <summary>Still to be delivered (never tried, or deferred).</summary>
    Pending,

    /// <summary>A server accepted it.</summary>
    Delivered,

    /// <summary>Failed for good (5xx, expired, bounced or deleted by an operator); a DSN went to the sender.</summary>
    Failed,
}

/// <summary>One envelope recipient of a queued message and its own state: only pending ones are retried.</summary>
public sealed record QueuedRecipient
{
    public required string Address { get; init; }

    public RecipientState State { get; init; }

    /// <summary>The last SMTP reply (or local error) for this recipient.</summary>
    public string? LastReply { get; init; }

    /// <summary>The host (<c>host:port</c>) of the last reply.</summary>
    public string? LastHost { get; init; }

    /// <summary>RFC 3461 NOTIFY as the client gave it (<c>NEVER</c>, or some of <c>SUCCESS,FAILURE,DELAY</c>); null: not given.</summary>
    public string? Notify { get; init; }

    /// <summary>RFC 3461 ORCPT, xtext-decoded (<c>rfc822;user@example.com</c>); reported as Original-Recipient.</summary>
    public string? OriginalRecipient { get; init; }
}

/// <summary>A recipient's RFC 3461 RCPT parameters (see <see cref="QueuedRecipient.Notify"/>).</summary>
public sealed record RecipientDsn(string? Notify, string? OriginalRecipient);

/// <summary>RFC 3461 NOTIFY semantics: which DSNs the sender asked for about one recipient.</summary>
public static class DsnNotify
{
    /// <summary>A failure DSN is due unless NOTIFY was given without FAILURE (e.g. NEVER, or only SUCCESS).</summary>
    public static bool WantsFailure(string? notify) => notify is null || Has(notify, "FAILURE");

    /// <summary>A success ("relayed" or "delivered") DSN is due only when NOTIFY names SUCCESS.</summary>
    public static bool WantsSuccess(string? notify) => notify is not null && Has(notify, "SUCCESS");

    /// <summary>
    /// The NOTIFY an inbound copy keeps (requirements §11; docs/reliability.md "Hostile sender"). Inbound mail comes from
    /// unauthenticated internet clients, and one message to N managed domains becomes N copies: were SUCCESS and DELAY honoured
    /// in each, one message would return N notices to a sender address that may be forged (amplified backscatter). So only the
    /// first inbound copy of a message keeps them (<paramref name="firstInboundCopy"/>); the others keep FAILURE alone, or
    /// NEVER when FAILURE was not asked for. Outbound copies (the customer's own servers) keep NOTIFY as given.
    /// </summary>
    public static string? ForInboundCopy(string? notify, bool firstInboundCopy)
    {
        if (notify is null || firstInboundCopy)
        {
            return notify;
        }

        var kept = notify.Split(',').Select(k => k.Trim())
            .Where(k => !string.Equals(k, "SUCCESS", StringComparison.OrdinalIgnoreCase) && !string.Equals(k, "DELAY", StringComparison.OrdinalIgnoreCase))
            .ToList();
        return kept.Count == 0 ? "NEVER" : string.Join(',', kept);
    }

    private static bool Has(string notify, string keyword) =>
        notify.Split(',').Any(k => string.Equals(k.Trim(), keyword, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// A message in the delivery queue: envelope, per-recipient state and schedule. Stored as JSON in the
/// owning managed domain's slot (<see cref="Storage.RedisKeys.QueueMessage"/>), beside the raw body.
/// </summary>
public sealed record QueuedMessage
{
    /// <summary>The gateway's id (time-ordered, unique across the fleet).</summary>
    public required string Id { get; init; }

    /// <summary>The managed domain the message belongs to: its slot, its queue index and its message log.</summary>
    public required string Domain { get; init; }

    /// <summary>Inbound (route of the recipient's domain) or outbound (recipient's MX).</summary>
    public required Direction Direction { get; init; }

    /// <summary>The envelope sender; empty for the null sender <c>&lt;&gt;</c> (no DSN is ever sent for it).</summary>
    public required string Sender { get; init; }

    public required IReadOnlyList<QueuedRecipient> Recipients { get; init; }

    public required DateTimeOffset CreateTime { get; init; }

    /// <summary>When the next attempt is due.</summary>
    public required DateTimeOffset NextAttempt { get; init; }

    /// <summary>Delivery attempts made so far (one per worker run over the pending recipients).</summary>
    public int Attempts { get; init; }

    /// <summary>When the first attempt failed for some recipient; the retry schedule counts from it.</summary>
    public DateTimeOffset? FirstFailure { get; init; }

    /// <summary>The last error seen, for operators (requirements §6).</summary>
    public string? LastError { get; init; }

    /// <summary>Size of the raw body in bytes.</summary>
    public long Size { get; init; }

    /// <summary>The SMTP client that handed the message in (intake), for the log and the DSN.</summary>
    public string? ClientAddress { get; init; }

    /// <summary>The envelope needs SMTPUTF8 (RFC 6531) from the next hop.</summary>
    public bool Utf8 { get; init; }

    /// <summary>A delivery status notification generated by the gateway (never answered by another DSN).</summary>
    public bool IsDsn { get; init; }

    /// <summary>
    /// The id of the body this entry shares with the message's other copies (<see cref="Storage.SharedBodies"/>); null when the
    /// entry holds its own body.
    /// </summary>
    public string? BodyRef { get; init; }

    /// <summary>
    /// Where this copy's content starts in the shared body (docs/architecture.md "Bodies in pieces"): 0 for the whole body; the
    /// end of the original header section when <see cref="BodyPrefix"/> holds a rewritten one (a scanned copy of a big message).
    /// </summary>
    public long BodyFrom { get; init; }

    /// <summary>
    /// The bytes this copy puts in front of its shared body (its own header fields: the scan's result headers, a DKIM-Signature),
    /// stored in the entry's <c>body</c> field next to <c>bodyref</c>; null or empty for none. Not in the JSON.
    /// </summary>
    [JsonIgnore]
    public byte[]? BodyPrefix { get; init; }

    /// <summary>RFC 3461 RET: <c>FULL</c> returns the whole message in a failure DSN, <c>HDRS</c> (and by default) its header.</summary>
    public string? DsnRet { get; init; }

    /// <summary>
    /// The id that groups the queue copies of one message to several managed domains (the intake id; null for a message of one
    /// copy): their failures make one DSN (<see cref="FailureDsnRecords"/>, requirements §11).
    /// </summary>
    public string? DsnGroup { get; init; }

    /// <summary>How many queue copies share <see cref="DsnGroup"/>: when all are done, the combined DSN goes at once.</summary>
    public int DsnGroupSize { get; init; }

    /// <summary>RFC 3461 ENVID, xtext-decoded; reported as Original-Envelope-Id.</summary>
    public string? DsnEnvelopeId { get; init; }

    /// <summary>
    /// The claim this copy was read under (security review L1, <see cref="MessageQueue.LoadForAttemptAsync"/>): its state is saved
    /// only while the stored message still carries this claim, so a worker whose lease expired cannot overwrite the outcome
    /// of the worker that took the message after it. Empty: stored by this process and not taken since (the intake's
    /// fast path); null: not fenced. Not stored in the JSON (the message hash has its own field).
    /// </summary>
    [JsonIgnore]
    public string? Claim { get; init; }

    [JsonIgnore]
    public bool IsNullSender => Sender.Length == 0;

    [JsonIgnore]
    public IEnumerable<QueuedRecipient> Pending => Recipients.Where(r => r.State == RecipientState.Pending);

    /// <summary>The recipients by envelope address (the first, should one repeat), for lookups over many recipients.</summary>
    public Dictionary<string, QueuedRecipient> RecipientsByAddress()
    {
        var map = new Dictionary<string, QueuedRecipient>(Recipients.Count, StringComparer.Ordinal);
        foreach (var r in Recipients)
        {
            map.TryAdd(r.Address, r);
        }

        return map;
    }
}

/// <summary>What a caller hands to <see cref="MessageQueue.EnqueueAsync"/>: the envelope of one message for one managed domain.</summary>
/// <param name="Domain">The managed domain the message belongs to (its slot and log).</param>
/// <param name="Direction">Inbound: delivered by the recipient domain's inbound route; outbound: by MX.</param>
/// <param name="Sender">Envelope sender, empty for the null sender.</param>
/// <param name="Recipients">Envelope recipients.</param>
public sealed record QueueEnvelope(string Domain, Direction Direction, string Sender, IReadOnlyList<string> Recipients)
{
    public string? ClientAddress { get; init; }

    public bool Utf8 { get; init; }

    public bool IsDsn { get; init; }

    /// <summary>The id to use (the intake names it in the Received header first); null: a new one.</summary>
    public string? Id { get; init; }

    /// <summary>RFC 3461 RET of the message (see <see cref="QueuedMessage.DsnRet"/>).</summary>
    public string? DsnRet { get; init; }

    /// <summary>RFC 3461 ENVID of the message, decoded.</summary>
    public string? DsnEnvelopeId { get; init; }

    /// <summary>RFC 3461 NOTIFY/ORCPT per recipient address, for recipients that had any.</summary>
    public IReadOnlyDictionary<string, RecipientDsn>? RecipientDsn { get; init; }

    /// <inheritdoc cref="QueuedMessage.DsnGroup"/>
    public string? DsnGroup { get; init; }

    /// <inheritdoc cref="QueuedMessage.DsnGroupSize"/>
    public int DsnGroupSize { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault)]
[JsonSerializable(typeof(QueuedMessage))]
internal sealed partial class QueueJson : JsonSerializerContext
{
    public static string Serialize(QueuedMessage m) => System.Text.Json.JsonSerializer.Serialize(m, Default.QueuedMessage);

    public static QueuedMessage Deserialize(string json) =>
        System.Text.Json.JsonSerializer.Deserialize(json, Default.QueuedMessage) ?? throw new System.Text.Json.JsonException("empty queued message");
}
