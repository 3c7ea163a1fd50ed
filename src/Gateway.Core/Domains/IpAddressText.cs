using System.Net;
using System.Net.Sockets;

namespace Gateway.Core.Domains;

/// <summary>
/// Strict parsing of single IP addresses as operators type them. <see cref="IPAddress.TryParse(string?, out IPAddress?)"/>
/// alone accepts "10.1", "0x7f.1" or "1": forms nobody means as a mail server's address.
/// </summary>
public static class IpAddressText
{
    /// <summary>
    /// Parses one IPv4 (four decimal octets, no leading zeros) or IPv6 address; IPv4-mapped IPv6
    /// becomes IPv4. Says why not when it is a range, a CIDR block, a zone-scoped or malformed address.
    /// </summary>
    public static bool TryParseSingle(string? input, out IPAddress address, out string error)
    {
        address = IPAddress.None;
        var s = input?.Trim() ?? string.Empty;
        if (s.Length == 0)
        {
            error = "an IP address is required";
            return false;
        }

        if (s.Contains('/', StringComparison.Ordinal))
        {
            error = $"'{s}' is a CIDR block; enter single addresses one by one (ranges are not accepted)";
            return false;
        }

        if (s.Contains('-', StringComparison.Ordinal) || s.Contains('*', StringComparison.Ordinal) || s.Contains(' ', StringComparison.Ordinal))
        {
            error = $"'{s}' is a range; enter single addresses one by one";
            return false;
        }

        if (s.Contains('%', StringComparison.Ordinal))
        {
            error = $"'{s}' has a zone index; enter a global address";
            return false;
        }

        if (s.Contains(':', StringComparison.Ordinal))
        {
            if (!IPAddress.TryParse(s, out var v6) || v6.AddressFamily != AddressFamily.InterNetworkV6)
            {
                error = $"'{s}' is not a valid IPv6 address";
                return false;
            }

            address = v6.IsIPv4MappedToIPv6 ? v6.MapToIPv4() : v6;
            error = string.Empty;
            return true;
        }

        if (!IsDottedQuad(s) || !IPAddress.TryParse(s, out var v4))
        {
            error = $"'{s}' is not a valid IPv4 address (four numbers 0-255 separated by dots)";
            return false;
        }

        address = v4;
        error = string.Empty;
        return true;
    }

    /// <summary>True for four decimal octets 0-255 without leading zeros.</summary>
    public static bool IsDottedQuad(ReadOnlySpan<char> s)
    {
        var parts = 0;
        while (true)
        {
            var dot = s.IndexOf('.');
            var part = dot < 0 ? s : s[..dot];
            if (part.Length is 0 or > 3 || (part.Length > 1 && part[0] == '0'))
            {
                return false;
            }

            var value = 0;
            foreach (var c in part)
            {
                if (!char.IsAsciiDigit(c))
                {
                    return false;
                }

                value = (value * 10) + (c - '0');
            }

            if (value > 255)
            {
                return false;
            }

            parts++;
            if (dot < 0)
            {
                return parts == 4;
            }

            s = s[(dot + 1)..];
        }
    }

    /// <summary>The canonical text of an address (IPv6 compressed, lower case).</summary>
    public static string Canonical(IPAddress address) => address.ToString();

    /// <summary>Addresses no mail may be delivered to: unspecified, multicast, broadcast.</summary>
    public static bool IsNeverDeliverable(IPAddress a) =>
        a.Equals(IPAddress.Any) || a.Equals(IPAddress.IPv6Any) || a.Equals(IPAddress.Broadcast) ||
        a.IsIPv6Multicast || (a.AddressFamily == AddressFamily.InterNetwork && a.GetAddressBytes()[0] >= 224);

    /// <summary>
    /// Parses the client address an MTA reports. IPv4-mapped IPv6 becomes IPv4 and a zone index is dropped,
    /// so it compares equal to the stored custom IPs (stored the same way).
    /// </summary>
    public static bool TryParseClient(string? text, out IPAddress address)
    {
        address = IPAddress.None;
        if (string.IsNullOrEmpty(text) || !IPAddress.TryParse(text, out var parsed))
        {
            return false;
        }

        if (parsed.IsIPv4MappedToIPv6)
        {
            parsed = parsed.MapToIPv4();
        }
        else if (parsed.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 && parsed.ScopeId != 0)
        {
            parsed = new IPAddress(parsed.GetAddressBytes());
        }

        address = parsed;
        return true;
    }
}
