using System.Buffers;
using System.Globalization;
using System.Text;

namespace Gateway.Deliverer.Smtp;

/// <summary>SMTP commands the intake knows (RFC 5321 §4.1, RFC 1869, RFC 3030 for BDAT which it refuses).</summary>
public enum SmtpVerb
{
    Unknown,
    Helo,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    Rset,
    Noop,
    Quit,
    Vrfy,
    Expn,
    Help,
    StartTls,
    Auth,
    Bdat,

    /// <summary>Postfix's XFORWARD (XFORWARD_README): the original client and Postfix's queue id.</summary>
    Xforward,
}

/// <summary>One command line: its verb and the text after it (UTF-8 decoded; null when the bytes are not valid UTF-8).</summary>
public readonly record struct SmtpCommand(SmtpVerb Verb, string? Argument);

/// <summary>A parsed MAIL FROM / RCPT TO: the address (empty for <c>&lt;&gt;</c>) and its ESMTP parameters.</summary>
public sealed record SmtpPath(string Address, IReadOnlyList<KeyValuePair<string, string?>> Parameters)
{
    public string? Parameter(string name) =>
        Parameters.FirstOrDefault(p => string.Equals(p.Key, name, StringComparison.OrdinalIgnoreCase)).Value;

    public bool HasParameter(string name) => Parameters.Any(p => string.Equals(p.Key, name, StringComparison.OrdinalIgnoreCase));
}

/// <summary>
/// The intake's SMTP parsing as pure functions over bytes (STYLE "Protocols"): lines, commands, paths
/// and the DATA stream. No I/O; sizes are capped inside, so a peer cannot make the server buffer
/// without bound.
/// </summary>
public static class SmtpParser
{
    /// <summary>RFC 5321 §4.5.3.1.4 allows 512 octets per command line; Postfix takes up to 2048 (line_length_limit). So does this.</summary>
    public const int MaxCommandLine = 2048;

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    /// <summary>
    /// The next command line of <paramref name="buffer"/> without its line end (CRLF; a bare LF is taken
    /// too, as Postfix does). <see cref="OperationStatus.InvalidData"/> when no line end comes within
    /// <paramref name="maxLength"/> bytes: the caller answers "line too long" and skips to the next LF.
    /// </summary>
    public static OperationStatus TryReadLine(ref ReadOnlySequence<byte> buffer, int maxLength, out ReadOnlySequence<byte> line)
    {
        var reader = new SequenceReader<byte>(buffer);
        if (!reader.TryReadTo(out line, (byte)'\n', advancePastDelimiter: true))
        {
            line = default;
            return buffer.Length > maxLength ? OperationStatus.InvalidData : OperationStatus.NeedMoreData;
        }

        if (line.Length > maxLength)
        {
            buffer = buffer.Slice(reader.Position);
            line = default;
            return OperationStatus.InvalidData;
        }

        if (line.Length > 0 && EndsWithCr(line))
        {
            line = line.Slice(0, line.Length - 1);
        }

        buffer = buffer.Slice(reader.Position);
        return OperationStatus.Done;
    }

    /// <summary>Drops bytes up to and including the next LF (after an over-long line). True when the LF was found.</summary>
    public static bool SkipLine(ref ReadOnlySequence<byte> buffer)
    {
        var lf = buffer.PositionOf((byte)'\n');
        if (lf is null)
        {
            buffer = buffer.Slice(buffer.End);
            return false;
        }

        buffer = buffer.Slice(buffer.GetPosition(1, lf.Value));
        return true;
    }

    public static SmtpCommand ParseCommand(ReadOnlySpan<byte> line)
    {
        var space = line.IndexOf((byte)' ');
        var verbBytes = space < 0 ? line : line[..space];
        var verb = verbBytes.Length switch
        {
            4 when Is(verbBytes, "HELO"u8) => SmtpVerb.Helo,
            4 when Is(verbBytes, "EHLO"u8) => SmtpVerb.Ehlo,
            4 when Is(verbBytes, "MAIL"u8) => SmtpVerb.Mail,
            4 when Is(verbBytes, "RCPT"u8) => SmtpVerb.Rcpt,
            4 when Is(verbBytes, "DATA"u8) => SmtpVerb.Data,
            4 when Is(verbBytes, "RSET"u8) => SmtpVerb.Rset,
            4 when Is(verbBytes, "NOOP"u8) => SmtpVerb.Noop,
            4 when Is(verbBytes, "QUIT"u8) => SmtpVerb.Quit,
            4 when Is(verbBytes, "VRFY"u8) => SmtpVerb.Vrfy,
            4 when Is(verbBytes, "EXPN"u8) => SmtpVerb.Expn,
            4 when Is(verbBytes, "HELP"u8) => SmtpVerb.Help,
            4 when Is(verbBytes, "AUTH"u8) => SmtpVerb.Auth,
            4 when Is(verbBytes, "BDAT"u8) => SmtpVerb.Bdat,
            8 when Is(verbBytes, "STARTTLS"u8) => SmtpVerb.StartTls,
            8 when Is(verbBytes, "XFORWARD"u8) => SmtpVerb.Xforward,
            _ => SmtpVerb.Unknown,
        };
        var rest = space < 0 ? ReadOnlySpan<byte>.Empty : line[(space + 1)..];
        string? argument;
        try
        {
            argument = StrictUtf8.GetString(rest).Trim();
        }
        catch (DecoderFallbackException)
        {
            argument = null;
        }

        return new SmtpCommand(verb, argument);
    }

    /// <summary>The XFORWARD attributes the intake announces and keeps (Postfix XFORWARD_README).</summary>
    public static readonly IReadOnlyList<string> XforwardAttributes = ["NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE"];

    /// <summary>
    /// Parses the argument of XFORWARD: <c>1*( SP name "=" xtext )</c>, names case-insensitive, values xtext
    /// (RFC 3461 §4: <c>+XX</c> hex escapes), <c>[UNAVAILABLE]</c> meaning unknown (returned as null).
    /// False with an error for an unknown name, bad xtext or more than 255 characters in a value.
    /// </summary>
    public static bool TryParseXforward(string argument, out IReadOnlyList<KeyValuePair<string, string?>> attributes, out string error)
    {
        ArgumentNullException.ThrowIfNull(argument);
        var list = new List<KeyValuePair<string, string?>>();
        attributes = list;
        error = string.Empty;
        var parts = argument.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0)
        {
            error = "Syntax: XFORWARD attribute=value...";
            return false;
        }

        foreach (var part in parts)
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var name = eq < 0 ? part : part[..eq].ToUpperInvariant();
            if (eq <= 0 || !XforwardAttributes.Contains(name))
            {
                error = "Bad XFORWARD attribute name: " + (eq < 0 ? part : part[..eq]);
                return false;
            }

            if (!TryDecodeXtext(part.AsSpan(eq + 1), out var value) || value.Length > 255)
            {
                error = "Bad XFORWARD attribute value for " + name;
                return false;
            }

            list.Add(new(name, value == "[UNAVAILABLE]" ? null : value));
        }

        return true;
    }

    /// <summary>RFC 3461 §4 xtext: printable ASCII except '+' and '=', which travel as <c>+XX</c>.</summary>
    /// <param name="text">The encoded value.</param>
    /// <param name="value">The decoded value.</param>
    /// <param name="allowSpace">Whether <c>+20</c> (a space) may be encoded: ENVID and ORCPT values are printable ASCII including space (RFC 3461 §4.2, §4.4).</param>
    public static bool TryDecodeXtext(ReadOnlySpan<char> text, out string value, bool allowSpace = false)
    {
        var sb = new StringBuilder(text.Length);
        value = string.Empty;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '+')
            {
                if (i + 2 >= text.Length)
                {
                    return false;
                }

                if (!byte.TryParse(text.Slice(i + 1, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b) || b > 126 || b < (allowSpace ? 32 : 33))
                {
                    return false;
                }

                sb.Append((char)b);
                i += 2;
            }
            else if (c is < '!' or > '~' or '=')
            {
                return false;
            }
            else
            {
                sb.Append(c);
            }
        }

        value = sb.ToString();
        return true;
    }

    /// <summary>RFC 3461 §4.3 RET: <c>FULL</c> or <c>HDRS</c> (case-insensitive), returned upper-case.</summary>
    public static bool TryParseDsnRet(string? value, out string ret)
    {
        ret = value?.ToUpperInvariant() ?? string.Empty;
        return ret is "FULL" or "HDRS";
    }

    /// <summary>RFC 3461 §4.4 ENVID: xtext of at most 100 characters, decoded to printable ASCII.</summary>
    public static bool TryParseDsnEnvelopeId(string? value, out string envelopeId)
    {
        envelopeId = string.Empty;
        return value is { Length: > 0 and <= 100 } && TryDecodeXtext(value, out envelopeId, allowSpace: true);
    }

    /// <summary>
    /// RFC 3461 §4.1 NOTIFY: <c>NEVER</c>, or a comma-separated list of <c>SUCCESS</c>, <c>FAILURE</c>, <c>DELAY</c>
    /// (case-insensitive, each once), returned upper-case in that order.
    /// </summary>
    public static bool TryParseDsnNotify(string? value, out string notify)
    {
        notify = string.Empty;
        if (string.IsNullOrEmpty(value))
        {
            return false;
        }

        var words = value.ToUpperInvariant().Split(',');
        if (words is ["NEVER"])
        {
            notify = "NEVER";
            return true;
        }

        string[] known = ["SUCCESS", "FAILURE", "DELAY"];
        if (words.Any(w => !known.Contains(w)) || words.Distinct().Count() != words.Length)
        {
            return false;
        }

        notify = string.Join(',', known.Where(words.Contains));
        return true;
    }

    /// <summary>
    /// RFC 3461 §4.2 ORCPT: <c>addr-type ";" xtext</c> (an atom such as <c>rfc822</c>, then the original recipient),
    /// at most 500 characters, returned as <c>addr-type;decoded-address</c>.
    /// </summary>
    public static bool TryParseDsnOriginalRecipient(string? value, out string originalRecipient)
    {
        originalRecipient = string.Empty;
        var semicolon = value?.IndexOf(';', StringComparison.Ordinal) ?? -1;
        if (value is null || value.Length > 500 || semicolon <= 0 || semicolon == value.Length - 1)
        {
            return false;
        }

        var type = value[..semicolon];
        if (!type.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            return false;
        }

        if (!TryDecodeXtext(value.AsSpan(semicolon + 1), out var address, allowSpace: true))
        {
            return false;
        }

        originalRecipient = type + ";" + address;
        return true;
    }

    /// <summary>
    /// Parses the argument of MAIL (<paramref name="keyword"/> <c>FROM:</c>) or RCPT (<c>TO:</c>):
    /// <c>&lt;path&gt; [param[=value] ...]</c> (RFC 5321 §4.1.2). A source route (<c>@a,@b:</c>) is dropped
    /// (§4.1.1.3 says to ignore it); a quoted local part keeps its quotes. Spaces after the colon are
    /// tolerated as Postfix tolerates them.
    /// </summary>
    public static bool TryParsePath(string argument, string keyword, bool allowEmpty, out SmtpPath path, out string error)
    {
        ArgumentNullException.ThrowIfNull(argument);
        ArgumentNullException.ThrowIfNull(keyword);
        path = new SmtpPath(string.Empty, []);
        if (!argument.StartsWith(keyword, StringComparison.OrdinalIgnoreCase))
        {
            error = $"Syntax: {keyword}<address>";
            return false;
        }

        var s = argument.AsSpan(keyword.Length).TrimStart(' ');
        if (s.Length == 0 || s[0] != '<')
        {
            error = "Syntax: the address must be in angle brackets";
            return false;
        }

        var end = -1;
        var quoted = false;
        for (var i = 1; i < s.Length; i++)
        {
            var c = s[i];
            if (quoted && c == '\\')
            {
                i++;
                continue;
            }

            if (c == '"')
            {
                quoted = !quoted;
            }
            else if (c == '>' && !quoted)
            {
                end = i;
                break;
            }
        }

        if (end < 0)
        {
            error = "Syntax: missing '>'";
            return false;
        }

        var address = s[1..end].ToString();
        if (address.StartsWith('@'))
        {
            var colon = address.IndexOf(':', StringComparison.Ordinal);
            address = colon < 0 ? string.Empty : address[(colon + 1)..];
        }

        if (address.Length == 0)
        {
            if (!allowEmpty)
            {
                error = "Syntax: an address is required";
                return false;
            }
        }
        else if (!IsMailbox(address, out error))
        {
            return false;
        }

        var parameters = new List<KeyValuePair<string, string?>>();
        foreach (var token in s[(end + 1)..].ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = token.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? token : token[..eq];
            if (key.Length == 0 || !key.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'))
            {
                error = $"Syntax: bad parameter '{token}'";
                return false;
            }

            parameters.Add(new(key, eq < 0 ? null : token[(eq + 1)..]));
            if (parameters.Count > 16)
            {
                error = "Syntax: too many parameters";
                return false;
            }
        }

        path = new SmtpPath(address, parameters);
        error = string.Empty;
        return true;
    }

    /// <summary>
    /// A mailbox as RFC 5321 §4.1.2 writes it (dot-string or quoted-string local part, domain or address literal), by the
    /// one address grammar of the gateway (<see cref="Gateway.Core.Mail.EnvelopeAddress.TryParse"/>).
    /// </summary>
    public static bool IsMailbox(string address, out string error)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (Gateway.Core.Mail.EnvelopeAddress.TryParse(address, out _, out error))
        {
            return true;
        }

        error = "Syntax: " + error;
        return false;
    }

    private static bool Is(ReadOnlySpan<byte> verb, ReadOnlySpan<byte> name) => Ascii.EqualsIgnoreCase(verb, name);

    private static bool EndsWithCr(ReadOnlySequence<byte> line)
    {
        if (line.IsSingleSegment)
        {
            return line.FirstSpan[^1] == (byte)'\r';
        }

        return line.Slice(line.Length - 1).FirstSpan[0] == (byte)'\r';
    }
}

/// <summary>Progress through one DATA section.</summary>
public struct DataState
{
    public DataState()
    {
    }

    /// <summary>The next byte begins a line on the wire (after CRLF), where a dot means stuffing or the end.</summary>
    public bool AtLineStart { get; set; } = true;

    /// <summary>Bytes of message content so far (after removing dot-stuffing, with line ends as stored).</summary>
    public long Size { get; set; }

    /// <summary>The content passed the size limit: the rest is read and dropped, then 552 is answered.</summary>
    public bool TooBig { get; set; }

    /// <summary>Bare CR or bare LF line ends the reader turned into CRLF (requirements §11.8; for the log).</summary>
    public int BareLineEnds { get; set; }

    /// <summary>BDAT: the last chunk so far ended in CR, whose LF may start the next chunk.</summary>
    public bool PendingCr { get; set; }
}

/// <summary>
/// The DATA stream (RFC 5321 §4.1.1.4 and §4.5.2) read so that no smuggling sequence can end it (requirements §11.8):
/// a line ends on the wire only with CRLF, so the end of the data is recognised only at <c>CRLF . CRLF</c>, and a dot
/// is un-stuffed only at the start of such a line. A bare LF or a bare CR anywhere else (<c>\n.\n</c>,
/// <c>\n.\r\n</c>, <c>\r.\r\n</c>, <c>\r\n.\r</c>) is message content: it is stored as CRLF, the only line end the
/// stored message has, as Postfix stores lines and as its <c>smtpd_forbid_bare_newline = normalize</c> reads them. No
/// dot line can hide there: the end was decided on the wire before normalising, and every SMTP hop after the intake
/// (MailKit) dot-stuffs the stored lines again. Lines longer than the buffer are passed through in pieces, so memory
/// is bounded by the size limit.
/// </summary>
public static class DataReader
{
    public static OperationStatus TryRead(ref ReadOnlySequence<byte> buffer, ref DataState state, IBufferWriter<byte> output, long maxSize)
    {
        ArgumentNullException.ThrowIfNull(output);
        while (buffer.Length > 0)
        {
            if (state.AtLineStart && First(buffer) == (byte)'.')
            {
                if (buffer.Length < 3 && (buffer.Length < 2 || At(buffer, 1) == (byte)'\r'))
                {
                    return OperationStatus.NeedMoreData;
                }

                if (At(buffer, 1) == (byte)'\r' && At(buffer, 2) == (byte)'\n')
                {
                    buffer = buffer.Slice(3);
                    return OperationStatus.Done;
                }

                // Dot-stuffing: the first dot of a line that is not the terminator is removed.
                buffer = buffer.Slice(1);
                state.AtLineStart = false;
                continue;
            }

            var reader = new SequenceReader<byte>(buffer);
            if (!reader.TryReadToAny(out ReadOnlySequence<byte> content, "\r\n"u8, advancePastDelimiter: false))
            {
                // No line end yet: pass the part line on.
                Write(buffer, ref state, output, maxSize);
                buffer = buffer.Slice(buffer.End);
                state.AtLineStart = false;
                return OperationStatus.NeedMoreData;
            }

            Write(content, ref state, output, maxSize);
            if (content.Length > 0)
            {
                state.AtLineStart = false;
            }

            reader.TryRead(out var end);
            if (end == (byte)'\r')
            {
                if (!reader.TryPeek(out var next))
                {
                    // A CR last in the buffer: its LF may come with the next read. Keep the CR.
                    buffer = buffer.Slice(content.End);
                    return OperationStatus.NeedMoreData;
                }

                if (next == (byte)'\n')
                {
                    reader.Advance(1);
                    Write(Crlf, ref state, output, maxSize);
                    buffer = buffer.Slice(reader.Position);
                    state.AtLineStart = true;
                    continue;
                }
            }

            // A bare CR or a bare LF: content, stored as a line end; not the start of a line on the wire.
            state.BareLineEnds++;
            Write(Crlf, ref state, output, maxSize);
            buffer = buffer.Slice(reader.Position);
            state.AtLineStart = false;
        }

        return OperationStatus.NeedMoreData;
    }

    private static readonly ReadOnlySequence<byte> Crlf = new("\r\n"u8.ToArray());

    /// <summary>
    /// BDAT octets (RFC 3030: no dot-stuffing, no terminator) stored as <see cref="TryRead"/> stores DATA: a bare CR or
    /// bare LF becomes CRLF, also when a CR ends one chunk and the next begins with LF. Call <see cref="EndChunks"/>
    /// after the last chunk.
    /// </summary>
    public static void WriteChunk(ReadOnlySequence<byte> octets, ref DataState state, IBufferWriter<byte> output, long maxSize)
    {
        ArgumentNullException.ThrowIfNull(output);
        var reader = new SequenceReader<byte>(octets);
        while (!reader.End)
        {
            if (state.PendingCr)
            {
                state.PendingCr = false;
                if (reader.IsNext((byte)'\n', advancePast: true))
                {
                    Write(Crlf, ref state, output, maxSize);
                    continue;
                }

                state.BareLineEnds++;
                Write(Crlf, ref state, output, maxSize);
            }

            if (!reader.TryReadToAny(out ReadOnlySequence<byte> content, "\r\n"u8, advancePastDelimiter: false))
            {
                Write(reader.UnreadSequence, ref state, output, maxSize);
                return;
            }

            Write(content, ref state, output, maxSize);
            reader.TryRead(out var end);
            if (end == (byte)'\r')
            {
                state.PendingCr = true;
                continue;
            }

            state.BareLineEnds++;
            Write(Crlf, ref state, output, maxSize);
        }
    }

    /// <summary>After the last BDAT chunk: a CR it ended with is a bare CR, stored as CRLF.</summary>
    public static void EndChunks(ref DataState state, IBufferWriter<byte> output, long maxSize)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (state.PendingCr)
        {
            state.PendingCr = false;
            state.BareLineEnds++;
            Write(Crlf, ref state, output, maxSize);
        }
    }

    private static void Write(ReadOnlySequence<byte> bytes, ref DataState state, IBufferWriter<byte> output, long maxSize)
    {
        state.Size += bytes.Length;
        if (state.TooBig || state.Size > maxSize)
        {
            state.TooBig = true;
            return;
        }

        foreach (var segment in bytes)
        {
            output.Write(segment.Span);
        }
    }

    private static byte First(ReadOnlySequence<byte> b) => b.FirstSpan[0];

    private static byte At(ReadOnlySequence<byte> b, long index) => b.Slice(index, 1).FirstSpan[0];
}
