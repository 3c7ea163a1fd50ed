namespace Gateway.Core.Mail;

/// <summary>Loop protection (RFC 5321 §6.3): counts the <c>Received:</c> headers of a message.</summary>
public static class HopCounter
{
    /// <summary>
    /// The number of <c>Received:</c> header fields in the header section of <paramref name="message"/>
    /// (up to the first empty line). Postfix's <c>hopcount_limit</c> defaults to 50.
    /// </summary>
    public static int CountReceived(ReadOnlySpan<byte> message)
    {
        var count = 0;
        var lineStart = true;
        for (var i = 0; i < message.Length; i++)
        {
            if (lineStart)
            {
                var rest = message[i..];
                if (rest.StartsWith("\r\n"u8) || rest.StartsWith("\n"u8))
                {
                    break;
                }

                if (rest.Length >= 9 && System.Text.Ascii.EqualsIgnoreCase(rest[..9], "Received:"u8))
                {
                    count++;
                }
            }

            lineStart = message[i] == (byte)'\n';
        }

        return count;
    }
}
