namespace Gateway.Core.Dkim;

/// <summary>
/// The header fields a gateway signature covers (docs/outbound.md "What is signed"): those of RFC 6376 §5.4.1's list that
/// a receiver shows or acts on, each signed when present; <c>From</c> is listed once more than it occurs ("oversigned",
/// RFC 6376 §8.15), so a second From added on the way breaks the signature instead of being shown to the reader.
/// Received, Return-Path and other trace fields are never signed (they change on the way).
/// </summary>
public static class DkimHeaders
{
    /// <summary>In the order they go into <c>h=</c>.</summary>
    public static readonly IReadOnlyList<string> Fields =
    [
        "From", "Sender", "Reply-To", "Subject", "Date", "Message-ID", "To", "Cc", "MIME-Version", "Content-Type",
        "Content-Transfer-Encoding", "Content-ID", "Content-Description", "Resent-Date", "Resent-From", "Resent-Sender",
        "Resent-To", "Resent-Cc", "Resent-Message-ID", "In-Reply-To", "References", "List-Id", "List-Help", "List-Unsubscribe",
        "List-Unsubscribe-Post", "List-Subscribe", "List-Post", "List-Owner", "List-Archive",
    ];

    /// <summary>The <c>h=</c> list for a message: each field of <see cref="Fields"/> as often as it occurs, and From once more.</summary>
    /// <param name="count">How many times a field name occurs in the message's header (case-insensitive).</param>
    public static IReadOnlyList<string> For(Func<string, int> count)
    {
        ArgumentNullException.ThrowIfNull(count);
        var list = new List<string>();
        foreach (var name in Fields)
        {
            var n = count(name);
            if (name == "From")
            {
                n++; // oversigned
            }

            for (var i = 0; i < n; i++)
            {
                list.Add(name);
            }
        }

        return list;
    }
}
