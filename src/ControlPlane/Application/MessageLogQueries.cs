using Gateway.Core.Mail;
using Gateway.Core.Delivery;
using Gateway.Core.Domains;
using Gateway.Core.Errors;
using Gateway.Core;
using Gateway.Core.MessageLog;

namespace Gateway.ControlPlane.Application;

/// <summary>The filters of QueryLog and FollowLog as given by the caller (not yet validated).</summary>
public sealed record LogQuery
{
    public string? Domain { get; init; }

    public string? Direction { get; init; }

    public string? Sender { get; init; }

    public string? Recipient { get; init; }

    public string? MessageId { get; init; }

    public string? PostfixQueueId { get; init; }

    public IReadOnlyList<string> Events { get; init; } = [];

    public DateTimeOffset? Start { get; init; }

    public DateTimeOffset? End { get; init; }

    public int PageSize { get; init; }

    public string? PageToken { get; init; }

    public bool OldestFirst { get; init; }
}

/// <summary>
/// MessageLogService use cases (requirements §7): validation, tenant scoping (another tenant's domain is NOT_FOUND,
/// through <see cref="DomainManager.GetAsync"/>), and the mapping of page tokens to stream positions.
/// </summary>
public sealed class MessageLogQueries(DomainManager domains, MessageLogReader reader, GatewayOptions options)
{
    /// <summary>At most this many entries are looked at for one page; a sparse filter returns a token to continue.</summary>
    public const int ScanBudget = 10_000;

    private const int MaxAddress = 320;

    public async Task<(IReadOnlyList<MessageLogEvent> Events, string NextPageToken)> QueryAsync(string companyId, LogQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var violations = new List<FieldViolation>();
        var filter = Validate(query, violations, allowEnd: true);
        var size = Paging.ResolvePageSize(query.PageSize, violations);
        var after = DecodeToken(Paging.Decode(query.PageToken, violations), query.OldestFirst, violations);
        if (violations.Count > 0)
        {
            GatewayException.ThrowInvalid(violations);
        }

        var owned = await domains.GetAsync(companyId, query.Domain).ConfigureAwait(false);
        var (events, last) = await reader.ReadPageAsync(owned.Name, filter, !query.OldestFirst, after, size, ScanBudget, cancellationToken).ConfigureAwait(false);
        return (events, Paging.Encode(last is null ? null : (query.OldestFirst ? "o|" : "n|") + last));
    }

    /// <summary>Validates a follow request and returns the stream of matching events (live until cancelled).</summary>
    public async Task<IAsyncEnumerable<MessageLogEvent>> FollowAsync(string companyId, LogQuery query, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        var violations = new List<FieldViolation>();
        var filter = Validate(query, violations, allowEnd: false);
        if (violations.Count > 0)
        {
            GatewayException.ThrowInvalid(violations);
        }

        var owned = await domains.GetAsync(companyId, query.Domain).ConfigureAwait(false);
        return reader.FollowAsync(owned.Name, filter with { Start = null }, query.Start, options.MessageLogFollowPollInterval, owned.CompanyId, cancellationToken);
    }

    private static MessageLogFilter Validate(LogQuery q, List<FieldViolation> violations, bool allowEnd)
    {
        var directionText = Trimmed(q.Direction);
        Direction? direction = null;
        if (directionText is not null && !DirectionText.TryParse(directionText, out direction))
        {
            violations.Add(new FieldViolation("direction", $"direction must be \"inbound\" or \"outbound\"; \"{directionText}\" given"));
        }

        var sender = Address(q.Sender, "sender", violations);
        var recipient = Address(q.Recipient, "recipient", violations);
        var messageId = Trimmed(q.MessageId);
        if (messageId is not null && !MessageId.IsValid(messageId))
        {
            violations.Add(new FieldViolation("message_id", "message_id must be a gateway message id (lower-case letters, digits and '-', at most 64)"));
        }

        var postfixId = Trimmed(q.PostfixQueueId);
        if (postfixId is not null && (postfixId.Length > 64 || !postfixId.All(char.IsAsciiLetterOrDigit)))
        {
            violations.Add(new FieldViolation("postfix_queue_id", "postfix_queue_id must be a Postfix queue id (letters and digits, at most 64)"));
        }

        var events = new HashSet<string>(StringComparer.Ordinal);
        foreach (var raw in q.Events)
        {
            var name = raw.Trim().ToLowerInvariant();
            if (!MessageLogEvents.All.Contains(name))
            {
                violations.Add(new FieldViolation("events", $"unknown event \"{raw}\"; known: {string.Join(", ", MessageLogEvents.All.Order(StringComparer.Ordinal))}"));
            }
            else
            {
                events.Add(name);
            }
        }

        if (!allowEnd && q.End is not null)
        {
            violations.Add(new FieldViolation("end_time", "a follower has no end time"));
        }

        if (q.Start is { } s && q.End is { } e && e <= s)
        {
            violations.Add(new FieldViolation("end_time", "end_time must be after start_time"));
        }

        return new MessageLogFilter
        {
            Direction = direction, Sender = sender, Recipient = recipient, MessageId = messageId, PostfixQueueId = postfixId,
            Events = events.Count > 0 ? events : null, Start = q.Start, End = q.End,
        };
    }

    private static string? Address(string? value, string field, List<FieldViolation> violations)
    {
        var v = Trimmed(value);
        if (v is not null && (v.Length > MaxAddress || v.Any(char.IsControl) || v.Contains(' ', StringComparison.Ordinal)))
        {
            violations.Add(new FieldViolation(field, $"{field} must be an address (or @domain) of at most {MaxAddress} characters without spaces"));
        }

        return v;
    }

    private static string? Trimmed(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();

    private static string? DecodeToken(string? key, bool oldestFirst, List<FieldViolation> violations)
    {
        if (key is null)
        {
            return null;
        }

        if (key.Length > 2 && key[1] == '|' && MessageLogFields.IsStreamId(key[2..]))
        {
            if (key[0] == (oldestFirst ? 'o' : 'n'))
            {
                return key[2..];
            }

            violations.Add(new FieldViolation("page_token", "page_token belongs to a query in the other order"));
            return null;
        }

        violations.Add(new FieldViolation("page_token", "page_token is not one this server returned"));
        return null;
    }
}
