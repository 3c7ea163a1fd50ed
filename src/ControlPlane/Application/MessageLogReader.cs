using System.Globalization;
using System.Runtime.CompilerServices;
using Gateway.Core.Storage;
using StackExchange.Redis;
using Gateway.Core.MessageLog;
using Gateway.Core.Mail;

namespace Gateway.ControlPlane.Application;

/// <summary>What a query or a follower wants to see; every set field must match (events: any of them).</summary>
public sealed record MessageLogFilter
{
    public Direction? Direction { get; init; }

    /// <summary>Exact address, case-insensitive; <c>@domain</c> matches the whole domain.</summary>
    public string? Sender { get; init; }

    /// <summary>Exact address, case-insensitive; <c>@domain</c> matches the whole domain.</summary>
    public string? Recipient { get; init; }

    public string? MessageId { get; init; }

    public string? PostfixQueueId { get; init; }

    public IReadOnlySet<string>? Events { get; init; }

    /// <summary>Logged at or after (inclusive).</summary>
    public DateTimeOffset? Start { get; init; }

    /// <summary>Logged before (exclusive).</summary>
    public DateTimeOffset? End { get; init; }

    public bool Matches(MessageLogEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        return (Direction is null || e.Direction == Direction) &&
               (MessageId is null || string.Equals(e.MessageId, MessageId, StringComparison.Ordinal)) &&
               (PostfixQueueId is null || string.Equals(e.PostfixQueueId, PostfixQueueId, StringComparison.Ordinal)) &&
               (Events is null || Events.Count == 0 || Events.Contains(e.Event)) &&
               AddressMatches(e.Sender, Sender) &&
               AddressMatches(e.Recipient, Recipient);
    }

    private static bool AddressMatches(string? value, string? wanted) =>
        wanted is null ||
        (value is not null && (wanted.StartsWith('@')
            ? value.EndsWith(wanted, StringComparison.OrdinalIgnoreCase)
            : string.Equals(value, wanted, StringComparison.OrdinalIgnoreCase)));
}

/// <summary>
/// Reads a domain's log stream: pages by stream id (XRANGE / XREVRANGE with exclusive bounds, so a page
/// token is the last id looked at and nothing is seen twice or skipped), filtering on the server side in
/// chunks with a bounded number of entries scanned per page; and following by polling.
/// </summary>
public sealed class MessageLogReader(IConnectionMultiplexer redis, TimeProvider clock)
{
    private const int Chunk = 500;

    /// <summary>
    /// Up to <paramref name="limit"/> matching events after the entry <paramref name="after"/> (exclusive) in the
    /// given order, scanning at most <paramref name="scanBudget"/> entries. <c>ContinueAfter</c> is the last entry
    /// looked at when more may follow (the next page's <paramref name="after"/>), null at the end of the range.
    /// </summary>
    public async Task<(IReadOnlyList<MessageLogEvent> Events, string? ContinueAfter)> ReadPageAsync(string domain, MessageLogFilter filter,
        bool newestFirst, string? after, int limit, int scanBudget, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var db = redis.GetDatabase();
        var key = RedisKeys.DomainLog(domain);
        RedisValue low = filter.Start is { } s ? $"{s.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}-0" : "-";
        RedisValue high = filter.End is { } e ? $"({e.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}-0" : "+";
        if (after is not null)
        {
            if (newestFirst)
            {
                high = "(" + after;
            }
            else
            {
                low = "(" + after;
            }
        }

        var found = new List<MessageLogEvent>(Math.Min(limit, 1000));
        var scanned = 0;
        string? last = null;
        while (scanned < scanBudget)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var count = Math.Min(Chunk, scanBudget - scanned);
            var entries = await db.StreamRangeAsync(key, low, high, count, newestFirst ? Order.Descending : Order.Ascending).ConfigureAwait(false);
            for (var i = 0; i < entries.Length; i++)
            {
                scanned++;
                last = entries[i].Id.ToString();
                var ev = MessageLogFields.Parse(domain, entries[i]);
                if (filter.Matches(ev))
                {
                    found.Add(ev);
                    if (found.Count == limit)
                    {
                        // More may follow unless this was the range's very last entry.
                        var endOfRange = i == entries.Length - 1 && entries.Length < count;
                        return (found, endOfRange ? null : last);
                    }
                }
            }

            if (entries.Length < count)
            {
                return (found, null);
            }

            if (newestFirst)
            {
                high = "(" + last;
            }
            else
            {
                low = "(" + last;
            }
        }

        return (found, last);
    }

    /// <summary>
    /// Events of a domain as they are written, oldest first: from <paramref name="since"/> if given, else only those
    /// written from now on; until <paramref name="cancellationToken"/> is cancelled.
    /// <para>
    /// Polls with non-blocking XRANGE on the shared multiplexer every <paramref name="pollInterval"/> (and at once
    /// while a read comes back full). A blocking <c>XREAD BLOCK</c> would stall every other command pipelined on the
    /// same connection (StackExchange.Redis multiplexes; it offers no blocking commands), and a connection per
    /// follower would grow without bound with the number of followers. A poll is one cheap command per follower
    /// per interval, and the stream ids make it exact: nothing is missed or repeated.
    /// </para>
    /// </summary>
    /// <param name="owner">When given, each poll first checks in the same script that the domain still belongs to this
    /// company, and the stream ends with NOT_FOUND when it does not: a follower never reads a single event of a domain
    /// that was deleted and registered by another tenant meanwhile (security review M1).</param>
    public async IAsyncEnumerable<MessageLogEvent> FollowAsync(string domain, MessageLogFilter filter, DateTimeOffset? since, TimeSpan pollInterval,
        string? owner = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var db = redis.GetDatabase();
        var key = RedisKeys.DomainLog(domain);
        RedisValue low;
        if (since is { } t)
        {
            low = $"{t.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}-0";
        }
        else
        {
            var newest = await db.StreamRangeAsync(key, "-", "+", 1, Order.Descending).ConfigureAwait(false);
            low = newest.Length > 0 ? "(" + newest[0].Id : "(0-0";
        }

        while (!cancellationToken.IsCancellationRequested)
        {
            var entries = owner is null
                ? await db.StreamRangeAsync(key, low, "+", Chunk, Order.Ascending).ConfigureAwait(false)
                : await OwnedRangeAsync(db, domain, owner, low).ConfigureAwait(false);
            foreach (var entry in entries)
            {
                var ev = MessageLogFields.Parse(domain, entry);
                if (filter.Matches(ev))
                {
                    yield return ev;
                }
            }

            if (entries.Length > 0)
            {
                low = "(" + entries[^1].Id;
            }

            if (entries.Length < Chunk)
            {
                try
                {
                    await Task.Delay(pollInterval, clock, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    yield break;
                }
            }
        }
    }

    // KEYS: domain config, log. ARGV: company, low id (exclusive form allowed), count. False when the domain is not the company's.
    private const string OwnedRangeScript = """
        if redis.call('HGET', KEYS[1], 'company') ~= ARGV[1] then return false end
        return redis.call('XRANGE', KEYS[2], ARGV[2], '+', 'COUNT', ARGV[3])
        """;

    private static async Task<StreamEntry[]> OwnedRangeAsync(IDatabase db, string domain, string owner, RedisValue low)
    {
        var result = await db.ScriptEvaluateAsync(OwnedRangeScript, [RedisKeys.Domain(domain), RedisKeys.DomainLog(domain)], [owner, low, Chunk])
            .ConfigureAwait(false);
        if (result.IsNull)
        {
            throw new Gateway.Core.Errors.GatewayException(Gateway.Core.Errors.ErrorKind.NotFound, $"Domain '{domain}' no longer belongs to this tenant (deleted or moved); the stream ends.");
        }

        var items = (RedisResult[])result!;
        var entries = new StreamEntry[items.Length];
        for (var i = 0; i < items.Length; i++)
        {
            var entry = (RedisResult[])items[i]!;
            var fields = (RedisValue[])entry[1]!;
            var values = new NameValueEntry[fields.Length / 2];
            for (var f = 0; f < values.Length; f++)
            {
                values[f] = new NameValueEntry(fields[2 * f], fields[2 * f + 1]);
            }

            entries[i] = new StreamEntry((RedisValue)entry[0], values);
        }

        return entries;
    }
}
