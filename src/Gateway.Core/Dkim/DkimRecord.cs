using Gateway.Core.Domains;

namespace Gateway.Core.Dkim;

/// <summary>How a published DKIM key record compares with the key the gateway holds.</summary>
public enum DkimRecordMatch
{
    /// <summary>No TXT record at the selector's name.</summary>
    Missing,

    /// <summary>Records are there but none carries this key (another key, a typo, a revoked <c>p=</c>).</summary>
    Different,

    /// <summary>A record with exactly this key (and key type) is published.</summary>
    Matches,
}

/// <summary>
/// DKIM key records (RFC 6376 §3.6.1) as pure functions: the text the gateway asks the customer to publish, and
/// whether a published text carries the same key. Tag lists are parsed per RFC 6376 §3.2 (whitespace around tags and
/// inside base64 values is ignored, as DNS tools often split or fold long values).
/// </summary>
public static class DkimRecord
{
    /// <summary>The tags of a tag=value list; null when it is not one (a tag without '=', a repeated tag).</summary>
    public static IReadOnlyDictionary<string, string>? ParseTags(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tags = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in text.Split(';'))
        {
            var item = part.Trim();
            if (item.Length == 0)
            {
                continue; // a trailing ';' is allowed
            }

            var eq = item.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                return null;
            }

            var name = item[..eq].Trim();
            if (!tags.TryAdd(name, item[(eq + 1)..].Trim()))
            {
                return null; // RFC 6376 §3.2: duplicate tags make the list invalid
            }
        }

        return tags;
    }

    /// <summary>Whether one published TXT text is a DKIM key record carrying <paramref name="publicKey"/> of <paramref name="algorithm"/>.</summary>
    public static bool Carries(string published, DkimKeyAlgorithm algorithm, string publicKey)
    {
        ArgumentNullException.ThrowIfNull(publicKey);
        var tags = ParseTags(published ?? string.Empty);
        if (tags is null || !tags.TryGetValue("p", out var p))
        {
            return false;
        }

        // RFC 6376 §3.6.1: v= is optional but must be first and DKIM1 when present; k= defaults to rsa.
        if (tags.TryGetValue("v", out var v) && v != "DKIM1")
        {
            return false;
        }

        var k = tags.TryGetValue("k", out var kv) ? kv : "rsa";
        return string.Equals(k, DkimKey.KeyType(algorithm), StringComparison.OrdinalIgnoreCase) &&
               string.Equals(StripWhitespace(p), publicKey, StringComparison.Ordinal);
    }

    /// <summary>Compares the TXT texts found at the selector's name with the key.</summary>
    public static DkimRecordMatch Compare(IReadOnlyList<string> published, DkimKey key)
    {
        ArgumentNullException.ThrowIfNull(published);
        ArgumentNullException.ThrowIfNull(key);
        if (published.Count == 0)
        {
            return DkimRecordMatch.Missing;
        }

        return published.Any(t => Carries(t, key.Algorithm, key.PublicKey)) ? DkimRecordMatch.Matches : DkimRecordMatch.Different;
    }

    private static string StripWhitespace(string s) => string.Concat(s.Where(c => !char.IsWhiteSpace(c)));
}
