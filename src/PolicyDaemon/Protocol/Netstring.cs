using System.Buffers;
using System.Buffers.Text;

namespace Gateway.PolicyDaemon.Protocol;

public enum NetstringError
{
    None = 0,

    /// <summary>The length is not a decimal number (empty, a non-digit, or a leading zero).</summary>
    BadLength,

    /// <summary>The announced length is above the caller's limit.</summary>
    TooLong,

    /// <summary>The payload is not followed by ','.</summary>
    MissingComma,
}

/// <summary>
/// Netstrings (D. J. Bernstein, http://cr.yp.to/proto/netstrings.txt), the framing of Postfix socketmap
/// requests and replies (socketmap_table(5)): <c>&lt;length&gt;:&lt;payload&gt;,</c> with the length in
/// decimal ASCII without leading zeros. Pure functions over bytes.
/// </summary>
public static class Netstring
{
    /// <summary>Enough digits for any length this side of 2 GB.</summary>
    private const int MaxDigits = 10;

    /// <summary>
    /// Reads one netstring. <see cref="OperationStatus.Done"/>: <paramref name="payload"/> is set and
    /// <paramref name="buffer"/> advanced past it. The announced length is checked against
    /// <paramref name="maxLength"/> as soon as the colon arrives, so a caller never buffers an oversize payload.
    /// </summary>
    public static OperationStatus TryRead(ref ReadOnlySequence<byte> buffer, int maxLength, out ReadOnlySequence<byte> payload, out NetstringError error)
    {
        payload = default;
        error = NetstringError.None;
        var reader = new SequenceReader<byte>(buffer);
        long length = 0;
        var digits = 0;
        while (true)
        {
            if (!reader.TryRead(out var b))
            {
                return OperationStatus.NeedMoreData;
            }

            if (b == (byte)':')
            {
                break;
            }

            if (b is < (byte)'0' or > (byte)'9' || (digits == 1 && length == 0) || ++digits > MaxDigits)
            {
                error = NetstringError.BadLength;
                return OperationStatus.InvalidData;
            }

            length = (length * 10) + (b - '0');
            if (length > maxLength)
            {
                error = NetstringError.TooLong;
                return OperationStatus.InvalidData;
            }
        }

        if (digits == 0)
        {
            error = NetstringError.BadLength;
            return OperationStatus.InvalidData;
        }

        if (reader.Remaining < length + 1)
        {
            return OperationStatus.NeedMoreData;
        }

        payload = reader.UnreadSequence.Slice(0, length);
        reader.Advance(length);
        reader.TryRead(out var comma);
        if (comma != (byte)',')
        {
            payload = default;
            error = NetstringError.MissingComma;
            return OperationStatus.InvalidData;
        }

        buffer = buffer.Slice(reader.Position);
        return OperationStatus.Done;
    }

    /// <summary>Writes <paramref name="payload"/> as one netstring.</summary>
    public static void Write(IBufferWriter<byte> writer, ReadOnlySpan<byte> payload)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var span = writer.GetSpan(payload.Length + MaxDigits + 2);
        Utf8Formatter.TryFormat(payload.Length, span, out var n);
        span[n++] = (byte)':';
        payload.CopyTo(span[n..]);
        n += payload.Length;
        span[n++] = (byte)',';
        writer.Advance(n);
    }
}
