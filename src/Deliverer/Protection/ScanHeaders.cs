using System.Text;
using MimeKit;

namespace Gateway.Deliverer.Protection;

/// <summary>One field of a message's header section: where it starts, where it ends (after its CRLF) and its name's length.</summary>
public readonly record struct HeaderField(int Start, int End, int NameLength)
{
    public string Name(ReadOnlySpan<byte> message) => Encoding.ASCII.GetString(message.Slice(Start, NameLength)).TrimEnd(' ', '\t');

    /// <summary>The value, unfolded (line breaks of continuation lines removed), without the trailing CRLF.</summary>
    public string Value(ReadOnlySpan<byte> message)
    {
        var raw = Encoding.UTF8.GetString(message.Slice(Start + NameLength + 1, End - Start - NameLength - 1));
        return raw.Replace("\r\n", string.Empty, StringComparison.Ordinal).Replace("\n", string.Empty, StringComparison.Ordinal).Trim();
    }

    public bool Is(ReadOnlySpan<byte> message, string name) => string.Equals(Name(message), name, StringComparison.OrdinalIgnoreCase);
}

/// <summary>
/// The intake's header changes after a scan (requirements §9; pure functions over the received bytes): what the
/// gateway adds (<c>Authentication-Results</c>, <c>X-Spam-Score</c>, <c>X-Spam-Flag</c>, <c>X-Gateway-Unscanned</c>),
/// what it removes (RFC 8601 §5: incoming <c>Authentication-Results</c> that claim the gateway's authserv-id, and
/// incoming copies of the spam headers it writes, so a sender cannot pre-label its own mail) and the <c>[SPAM]</c>
/// subject tag. Added fields go right after the first field (the intake's own <c>Received:</c>): this hop's trace.
/// </summary>
public static class ScanHeaders
{
    public const string SpamScore = "X-Spam-Score";
    public const string SpamFlag = "X-Spam-Flag";
    public const string Unscanned = "X-Gateway-Unscanned";
    public const string SubjectTag = "[SPAM] ";

    /// <summary>Headers of these names from the sender are dropped from delivered copies: only the gateway writes them.</summary>
    private static readonly string[] OwnNames = [SpamScore, SpamFlag, Unscanned];

    /// <summary>
    /// The fields of the header section (up to the empty line, or the end of a message without a body). A line that is
    /// neither a field nor a continuation ends the section, as for a receiver that stops parsing there.
    /// </summary>
    public static List<HeaderField> Parse(ReadOnlySpan<byte> message)
    {
        var fields = new List<HeaderField>();
        var pos = 0;
        while (pos < message.Length)
        {
            var lineEnd = LineEnd(message, pos);
            var line = message[pos..lineEnd];
            if (IsBlank(line))
            {
                break;
            }

            var colon = line.IndexOf((byte)':');
            if (colon <= 0 || line[0] is (byte)' ' or (byte)'\t')
            {
                break;
            }

            var end = lineEnd;
            while (end < message.Length && message[end] is (byte)' ' or (byte)'\t')
            {
                end = LineEnd(message, end);
            }

            fields.Add(new HeaderField(pos, end, colon));
            pos = end;
        }

        return fields;
    }

    /// <summary>The authserv-id of an <c>Authentication-Results</c> value (RFC 8601 §2.2): its first token, comments skipped.</summary>
    public static string AuthServId(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var i = 0;
        while (i < value.Length)
        {
            if (char.IsWhiteSpace(value[i]))
            {
                i++;
            }
            else if (value[i] == '(')
            {
                var depth = 0;
                for (; i < value.Length; i++)
                {
                    depth += value[i] == '(' ? 1 : value[i] == ')' ? -1 : 0;
                    if (depth == 0)
                    {
                        i++;
                        break;
                    }
                }
            }
            else
            {
                break;
            }
        }

        var start = i;
        if (i < value.Length && value[i] == '"')
        {
            var close = value.IndexOf('"', i + 1);
            return close < 0 ? value[(i + 1)..] : value[(i + 1)..close];
        }

        while (i < value.Length && !char.IsWhiteSpace(value[i]) && value[i] is not ';' and not '(')
        {
            i++;
        }

        return value[start..i];
    }

    /// <summary>The domain of the first mailbox of the header From (lower case), or null when there is none or it does not parse.</summary>
    public static string? FromDomain(ReadOnlySpan<byte> message, IReadOnlyList<HeaderField> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        foreach (var f in fields)
        {
            if (f.Is(message, "From"))
            {
                return InternetAddressList.TryParse(ParserOptions.Default, f.Value(message), out var list)
                    && list.Mailboxes.FirstOrDefault() is { Domain.Length: > 0 } m
                    ? m.Domain.TrimEnd('.').ToLowerInvariant()
                    : null;
            }
        }

        return null;
    }

    /// <summary>
    /// A copy of <paramref name="message"/> with <paramref name="added"/> (complete fields, each ending in CRLF) after
    /// the first field, without the incoming fields the gateway owns (<paramref name="authServId"/>'s
    /// <c>Authentication-Results</c>, <see cref="SpamScore"/>, <see cref="SpamFlag"/>, <see cref="Unscanned"/>), and
    /// with <see cref="SubjectTag"/> before the subject when <paramref name="tagSubject"/> (a Subject is added when there was none).
    /// </summary>
    public static byte[] Rewrite(ReadOnlySpan<byte> message, IReadOnlyList<HeaderField> fields, string authServId, string added, bool tagSubject)
    {
        ArgumentNullException.ThrowIfNull(fields);
        ArgumentNullException.ThrowIfNull(added);
        var add = Encoding.UTF8.GetBytes(added);
        var output = new MemoryStream(message.Length + add.Length + 64);
        var pos = 0;
        var subjectSeen = false;
        for (var i = 0; i < fields.Count; i++)
        {
            var f = fields[i];
            output.Write(message[pos..f.Start]);
            pos = f.End;
            if (Owned(message, f, authServId))
            {
                continue;
            }

            if (tagSubject && !subjectSeen && f.Is(message, "Subject"))
            {
                subjectSeen = true;
                var value = f.Start + f.NameLength + 1;
                output.Write(message[f.Start..value]);
                var rest = message[value..f.End];
                var blanks = rest.Length - rest.TrimStart(" \t"u8).Length;
                output.Write(rest[..blanks]);
                if (blanks == 0)
                {
                    output.WriteByte((byte)' ');
                }

                output.Write(Encoding.ASCII.GetBytes(SubjectTag));
                output.Write(rest[blanks..]);
            }
            else
            {
                output.Write(message[f.Start..f.End]);
            }

            if (i == 0)
            {
                output.Write(add);
                if (tagSubject && !HasSubject(message, fields))
                {
                    output.Write(Encoding.ASCII.GetBytes("Subject: " + SubjectTag.TrimEnd() + "\r\n"));
                }
            }
        }

        if (fields.Count == 0)
        {
            output.Write(add);
        }

        output.Write(message[pos..]);
        return output.ToArray();
    }

    private static bool HasSubject(ReadOnlySpan<byte> message, IReadOnlyList<HeaderField> fields)
    {
        foreach (var f in fields)
        {
            if (f.Is(message, "Subject"))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Owned(ReadOnlySpan<byte> message, HeaderField f, string authServId)
    {
        if (f.Is(message, "Authentication-Results"))
        {
            return string.Equals(AuthServId(f.Value(message)), authServId, StringComparison.OrdinalIgnoreCase);
        }

        foreach (var n in OwnNames)
        {
            if (f.Is(message, n))
            {
                return true;
            }
        }

        return false;
    }

    private static int LineEnd(ReadOnlySpan<byte> message, int pos)
    {
        var lf = message[pos..].IndexOf((byte)'\n');
        return lf < 0 ? message.Length : pos + lf + 1;
    }

    private static bool IsBlank(ReadOnlySpan<byte> line) => line.Length == 0 || line.SequenceEqual("\r\n"u8) || line.SequenceEqual("\n"u8);
}
