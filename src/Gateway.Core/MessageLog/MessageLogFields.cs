using System.Globalization;
using Gateway.Core.Mail;
using StackExchange.Redis;

namespace Gateway.Core.MessageLog;

/// <summary>The field names of a log entry in its stream, both ways (docs/message-log.md "Fields").</summary>
public static class MessageLogFields
{
    /// <summary>The most UTF-8 bytes a field keeps (requirements §11.9: senders and remote servers choose them).</summary>
    public const int MaxFieldBytes = 512;

    /// <summary>What a shortened field ends with, so a reader knows the value is not whole.</summary>
    public const string TruncatedMark = "…[truncated]";

    /// <summary>
    /// The stored fields of an event; empty (null) ones are left out. Every value is cut to <see cref="MaxFieldBytes"/>
    /// bytes and marked with <see cref="TruncatedMark"/>: a 2,000-character sender of a refused RCPT costs a bounded
    /// amount of the customer's log, not whatever the sender chose.
    /// </summary>
    public static IEnumerable<(string Name, string Value)> Of(MessageLogEvent e)
    {
        ArgumentNullException.ThrowIfNull(e);
        foreach (var (name, value) in Raw(e))
        {
            yield return (name, Bounded(value));
        }
    }

    /// <summary><paramref name="value"/>, or its first bytes (on a character boundary) and <see cref="TruncatedMark"/> when it is longer than <see cref="MaxFieldBytes"/>.</summary>
    public static string Bounded(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length <= MaxFieldBytes / 3 || System.Text.Encoding.UTF8.GetByteCount(value) <= MaxFieldBytes)
        {
            return value;
        }

        var budget = MaxFieldBytes - System.Text.Encoding.UTF8.GetByteCount(TruncatedMark);
        var used = 0;
        var end = 0;
        foreach (var rune in value.EnumerateRunes())
        {
            if (used + rune.Utf8SequenceLength > budget)
            {
                break;
            }

            used += rune.Utf8SequenceLength;
            end += rune.Utf16SequenceLength;
        }

        return string.Concat(value.AsSpan(0, end), TruncatedMark);
    }

    private static IEnumerable<(string Name, string Value)> Raw(MessageLogEvent e)
    {
        yield return ("event", e.Event);
        yield return ("time", e.Time.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        foreach (var (name, value) in new[]
                 {
                     ("message_id", e.MessageId), ("direction", DirectionText.Of(e.Direction)), ("sender", e.Sender), ("recipient", e.Recipient),
                     ("client_address", e.ClientAddress), ("host", e.Host), ("reply", e.Reply), ("detail", e.Detail),
                     ("program", e.Program), ("postfix_queue_id", e.PostfixQueueId), ("tls", e.Tls),
                 })
        {
            if (value is not null)
            {
                yield return (name, value);
            }
        }
    }

    /// <summary>An entry read back from the domain's stream.</summary>
    public static MessageLogEvent Parse(string domain, StreamEntry entry)
    {
        string? Get(string name)
        {
            var v = entry[name];
            return v.IsNull ? null : v.ToString();
        }

        var id = entry.Id.ToString();
        var time = long.TryParse(Get("time"), NumberStyles.None, CultureInfo.InvariantCulture, out var ms) ? ms : IdMilliseconds(id);
        return new MessageLogEvent
        {
            Domain = domain,
            Event = Get("event") ?? string.Empty,
            Id = id,
            Time = DateTimeOffset.FromUnixTimeMilliseconds(time),
            MessageId = Get("message_id"),
            Direction = DirectionText.TryParse(Get("direction"), out var direction) ? direction : null,
            Sender = Get("sender"),
            Recipient = Get("recipient"),
            ClientAddress = Get("client_address"),
            Host = Get("host"),
            Reply = Get("reply"),
            Detail = Get("detail"),
            Program = Get("program"),
            PostfixQueueId = Get("postfix_queue_id"),
            Tls = Get("tls"),
        };
    }

    /// <summary>The milliseconds part of a stream id (<c>&lt;ms&gt;-&lt;seq&gt;</c>).</summary>
    public static long IdMilliseconds(string id)
    {
        ArgumentNullException.ThrowIfNull(id);
        var dash = id.IndexOf('-', StringComparison.Ordinal);
        return long.TryParse(dash < 0 ? id : id[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var ms) ? ms : 0;
    }

    /// <summary>True for text shaped like a stream id, <c>&lt;ms&gt;-&lt;seq&gt;</c> (page tokens carry one).</summary>
    public static bool IsStreamId(string? id)
    {
        if (id is null)
        {
            return false;
        }

        var dash = id.IndexOf('-', StringComparison.Ordinal);
        return dash > 0 && ulong.TryParse(id.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out _) &&
               ulong.TryParse(id.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out _);
    }
}
