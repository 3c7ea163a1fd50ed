using System.Buffers;
using System.Text;

namespace Gateway.PolicyDaemon.Protocol;

/// <summary>
/// A socketmap lookup (socketmap_table(5), "REQUEST FORMAT"): the netstring payload
/// <c>&lt;name&gt; &lt;key&gt;</c>, the map name up to the first space and the key after it (the key may
/// contain spaces). And the replies: <c>OK &lt;data&gt;</c>, <c>NOTFOUND </c>, <c>TEMP &lt;reason&gt;</c>,
/// <c>PERM &lt;reason&gt;</c>.
/// </summary>
public static class SocketmapRequest
{
    /// <summary>Splits a request; false when there is no space, the name is empty or not printable ASCII, or the key is empty or has NUL.</summary>
    public static bool TryParse(ReadOnlySequence<byte> payload, out string name, out string key)
    {
        name = key = string.Empty;
        var bytes = payload.IsSingleSegment ? payload.FirstSpan : payload.ToArray();
        var space = bytes.IndexOf((byte)' ');
        if (space <= 0 || space == bytes.Length - 1)
        {
            return false;
        }

        var nameBytes = bytes[..space];
        var keyBytes = bytes[(space + 1)..];
        if (nameBytes.IndexOfAnyExceptInRange((byte)0x21, (byte)0x7E) >= 0 || keyBytes.Contains((byte)0))
        {
            return false;
        }

        name = Encoding.ASCII.GetString(nameBytes);
        key = Encoding.UTF8.GetString(keyBytes);
        return true;
    }

    /// <summary>The reply payload (before netstring framing) for a found, missing or failed lookup.</summary>
    public static byte[] Reply(string status, string text)
    {
        ArgumentNullException.ThrowIfNull(status);
        ArgumentNullException.ThrowIfNull(text);
        return Encoding.UTF8.GetBytes(status + " " + text);
    }
}
