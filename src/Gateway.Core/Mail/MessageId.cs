using System.Security.Cryptography;

namespace Gateway.Core.Mail;

/// <summary>
/// Queue ids: 48 bits of unix milliseconds and 64 random bits in lower-case base32 (Crockford alphabet),
/// 23 characters, ordered by creation time, unique across the fleet without coordination.
/// </summary>
public static class MessageId
{
    private const string Alphabet = "0123456789abcdefghjkmnpqrstvwxyz";

    public static string New(DateTimeOffset now)
    {
        Span<byte> bytes = stackalloc byte[14];
        var ms = (ulong)now.ToUnixTimeMilliseconds();
        for (var i = 0; i < 6; i++)
        {
            bytes[i] = (byte)(ms >> (8 * (5 - i)));
        }

        RandomNumberGenerator.Fill(bytes[6..]);
        Span<char> chars = stackalloc char[23];
        var bit = 0;
        for (var i = 0; i < chars.Length; i++, bit += 5)
        {
            var value = 0;
            for (var b = 0; b < 5; b++)
            {
                var pos = bit + b;
                var v = pos < 112 ? (bytes[pos >> 3] >> (7 - (pos & 7))) & 1 : 0;
                value = (value << 1) | v;
            }

            chars[i] = Alphabet[value];
        }

        return new string(chars);
    }

    /// <summary>True for text shaped like an id (so a request cannot smuggle key syntax).</summary>
    public static bool IsValid(string? id) =>
        id is { Length: > 0 and <= 64 } && id.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'z') or '-');
}
