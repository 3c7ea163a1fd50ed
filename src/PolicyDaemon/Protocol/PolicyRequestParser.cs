using System.Buffers;
using System.Text;

namespace Gateway.PolicyDaemon.Protocol;

/// <summary>Why a policy request was refused by the parser.</summary>
public enum PolicyParseError
{
    None = 0,

    /// <summary>A line is longer than <see cref="PolicyLimits.MaxLineLength"/> (or would be, once complete).</summary>
    LineTooLong,

    /// <summary>The request is longer than <see cref="PolicyLimits.MaxRequestBytes"/> (or would be).</summary>
    RequestTooLarge,

    /// <summary>More than <see cref="PolicyLimits.MaxAttributes"/> attribute lines.</summary>
    TooManyAttributes,

    /// <summary>A non-empty line without '='.</summary>
    MissingEquals,

    /// <summary>A line starting with '='.</summary>
    EmptyName,

    /// <summary>A name with a control character, space or non-ASCII byte.</summary>
    InvalidName,

    /// <summary>A NUL byte in a value (the protocol forbids NUL in names and values).</summary>
    NulInValue,

    /// <summary>An attribute the gateway decides on was sent twice.</summary>
    RepeatedAttribute,

    /// <summary>An empty line with no attribute before it.</summary>
    EmptyRequest,

    /// <summary>No <c>request=</c> attribute (the protocol requires it).</summary>
    MissingRequestType,

    /// <summary>A <c>request=</c> other than <c>smtpd_access_policy</c>.</summary>
    UnsupportedRequestType,
}

/// <summary>Hard limits the parser enforces before buffering more input.</summary>
public readonly record struct PolicyLimits(int MaxLineLength, int MaxAttributes, int MaxRequestBytes)
{
    /// <summary>
    /// Postfix 3.7 sends about 30 attributes in some 700 bytes; its SMTP server caps a command line at
    /// 2048 bytes (<c>line_length_limit</c>), so no attribute it forwards comes near 4096.
    /// </summary>
    public static readonly PolicyLimits Default = new(4096, 100, 65536);
}

/// <summary>
/// Parses the Postfix policy delegation protocol (SMTPD_POLICY_README): <c>name=value</c> lines ended by
/// LF, the request ended by an empty line. A pure function over bytes: it never reads a socket, it consumes
/// a request only when it is complete, and it answers <see cref="OperationStatus.InvalidData"/> as soon as
/// the buffered bytes break a limit or the grammar, so a caller never buffers more than the limits.
/// </summary>
/// <remarks>
/// A trailing CR before LF is tolerated (people test with telnet); Postfix sends bare LF. When an
/// attribute the gateway decides on (request, protocol_state, sender, recipient, client_address,
/// policy_context …) is repeated the request is refused: the protocol lets a server keep either value, and
/// a server that could pick the one that relays must not guess. Repeated unknown attributes are ignored.
/// </remarks>
public static class PolicyRequestParser
{
    private const int StackLineLimit = 1024;

    public static OperationStatus TryParse(ref ReadOnlySequence<byte> buffer, PolicyLimits limits, out PolicyRequest? request, out PolicyParseError error)
    {
        request = null;
        error = PolicyParseError.None;
        var reader = new SequenceReader<byte>(buffer);
        var parsed = new PolicyRequest();
        while (true)
        {
            if (!reader.TryReadTo(out ReadOnlySequence<byte> line, (byte)'\n', advancePastDelimiter: true))
            {
                // Incomplete: refuse now if what is buffered already breaks a limit.
                error = reader.Remaining > limits.MaxLineLength ? PolicyParseError.LineTooLong
                    : buffer.Length > limits.MaxRequestBytes ? PolicyParseError.RequestTooLarge
                    : PolicyParseError.None;
                return error == PolicyParseError.None ? OperationStatus.NeedMoreData : OperationStatus.InvalidData;
            }

            if (line.Length > limits.MaxLineLength + 1)
            {
                error = PolicyParseError.LineTooLong;
                return OperationStatus.InvalidData;
            }

            if (reader.Consumed > limits.MaxRequestBytes)
            {
                error = PolicyParseError.RequestTooLarge;
                return OperationStatus.InvalidData;
            }

            error = line.IsSingleSegment ? ParseLine(line.FirstSpan, parsed, limits) : ParseCopied(line, parsed, limits);
            if (error == PolicyParseError.None)
            {
                continue;
            }

            if (error != EndOfRequest)
            {
                return OperationStatus.InvalidData;
            }

            error = Validate(parsed);
            if (error != PolicyParseError.None)
            {
                return OperationStatus.InvalidData;
            }

            buffer = buffer.Slice(reader.Position);
            request = parsed;
            return OperationStatus.Done;
        }
    }

    /// <summary>Internal marker: the empty line that ends a request.</summary>
    private const PolicyParseError EndOfRequest = (PolicyParseError)(-1);

    private static PolicyParseError ParseCopied(ReadOnlySequence<byte> line, PolicyRequest parsed, PolicyLimits limits)
    {
        var length = (int)line.Length;
        byte[]? rented = null;
        var copy = length <= StackLineLimit ? stackalloc byte[StackLineLimit] : (rented = ArrayPool<byte>.Shared.Rent(length));
        try
        {
            line.CopyTo(copy);
            return ParseLine(copy[..length], parsed, limits);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    private static PolicyParseError ParseLine(ReadOnlySpan<byte> line, PolicyRequest parsed, PolicyLimits limits)
    {
        if (line.Length > 0 && line[^1] == (byte)'\r')
        {
            line = line[..^1];
        }

        if (line.Length > limits.MaxLineLength)
        {
            return PolicyParseError.LineTooLong;
        }

        if (line.IsEmpty)
        {
            return parsed.AttributeCount == 0 ? PolicyParseError.EmptyRequest : EndOfRequest;
        }

        if (++parsed.AttributeCount > limits.MaxAttributes)
        {
            return PolicyParseError.TooManyAttributes;
        }

        var eq = line.IndexOf((byte)'=');
        if (eq < 0)
        {
            return PolicyParseError.MissingEquals;
        }

        if (eq == 0)
        {
            return PolicyParseError.EmptyName;
        }

        var name = line[..eq];
        var value = line[(eq + 1)..];
        if (name.IndexOfAnyExceptInRange((byte)0x21, (byte)0x7E) >= 0)
        {
            return PolicyParseError.InvalidName;
        }

        if (value.Contains((byte)0))
        {
            return PolicyParseError.NulInValue;
        }

        return Store(name, value, parsed) ? PolicyParseError.None : PolicyParseError.RepeatedAttribute;
    }

    /// <summary>Keeps the attributes the gateway uses; false when one of them was already set.</summary>
    private static bool Store(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value, PolicyRequest r)
    {
        var index = (int)Identify(name);
        if (index == (int)PolicyAttribute.Count)
        {
            return true;
        }

        if (r.Values[index] is not null)
        {
            return false;
        }

        r.Values[index] = Decode(value);
        return true;
    }

    private static PolicyAttribute Identify(ReadOnlySpan<byte> name) => name.Length switch
    {
        4 when name.SequenceEqual("size"u8) => PolicyAttribute.Size,
        6 when name.SequenceEqual("sender"u8) => PolicyAttribute.Sender,
        7 when name.SequenceEqual("request"u8) => PolicyAttribute.Request,
        8 when name.SequenceEqual("queue_id"u8) => PolicyAttribute.QueueId,
        9 when name.SequenceEqual("recipient"u8) => PolicyAttribute.Recipient,
        9 when name.SequenceEqual("helo_name"u8) => PolicyAttribute.HeloName,
        11 when name.SequenceEqual("client_name"u8) => PolicyAttribute.ClientName,
        14 when name.SequenceEqual("protocol_state"u8) => PolicyAttribute.ProtocolState,
        14 when name.SequenceEqual("client_address"u8) => PolicyAttribute.ClientAddress,
        14 when name.SequenceEqual("policy_context"u8) => PolicyAttribute.PolicyContext,
        _ => PolicyAttribute.Count,
    };

    /// <summary>UTF-8 (SMTPUTF8 addresses); the values every request repeats without allocating.</summary>
    private static string Decode(ReadOnlySpan<byte> value) => value switch
    {
        [] => string.Empty,
        [(byte)'0'] => "0",
        _ when value.SequenceEqual("RCPT"u8) => "RCPT",
        _ when value.SequenceEqual("unknown"u8) => "unknown",
        _ when value.SequenceEqual(PolicyRequest.SmtpdAccessPolicyUtf8) => PolicyRequest.SmtpdAccessPolicy,
        _ => Encoding.UTF8.GetString(value),
    };

    private static PolicyParseError Validate(PolicyRequest r) =>
        r.Request is null ? PolicyParseError.MissingRequestType
        : r.Request != PolicyRequest.SmtpdAccessPolicy ? PolicyParseError.UnsupportedRequestType
        : PolicyParseError.None;
}
