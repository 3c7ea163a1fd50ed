using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Numerics;

namespace Gateway.Core.Domains;

/// <summary>
/// An immutable set of IPv4 and IPv6 networks (CIDR blocks) answering "is this address inside?" in
/// O(log n): the networks are merged into sorted, disjoint intervals and searched by binary search.
/// IPv4-mapped IPv6 addresses (<c>::ffff:192.0.2.1</c>) are looked up as IPv4.
/// </summary>
public sealed class IpRangeSet
{
    public static readonly IpRangeSet Empty = new([], [], [], [], []);

    private readonly uint[] _v4Start;
    private readonly uint[] _v4End;
    private readonly UInt128[] _v6Start;
    private readonly UInt128[] _v6End;

    private IpRangeSet(uint[] v4Start, uint[] v4End, UInt128[] v6Start, UInt128[] v6End, IReadOnlyList<string> networks)
    {
        _v4Start = v4Start;
        _v4End = v4End;
        _v6Start = v6Start;
        _v6End = v6End;
        Networks = networks;
    }

    /// <summary>The networks the set was built from, canonical (<c>192.0.2.0/24</c>), sorted and distinct.</summary>
    public IReadOnlyList<string> Networks { get; }

    public bool IsEmpty => _v4Start.Length == 0 && _v6Start.Length == 0;

    /// <summary>
    /// Parses one network: <c>address/prefix</c> or a single address (<c>/32</c>, <c>/128</c>). Bits beyond the
    /// prefix are cleared, as RFC 7208 §5.6 evaluates <c>ip4:192.0.2.7/24</c> (the network 192.0.2.0/24).
    /// </summary>
    public static bool TryParseNetwork(string? text, out IPNetwork network)
    {
        network = default;
        var s = text.AsSpan().Trim();
        if (s.IsEmpty || s.Contains('%'))
        {
            return false;
        }

        var slash = s.IndexOf('/');
        var addressPart = slash < 0 ? s : s[..slash];
        if (!IPAddress.TryParse(addressPart, out var address))
        {
            return false;
        }

        // IPAddress.TryParse takes "10.1" or "0x7f.1" (inet_aton); a network text must be a dotted quad.
        if (address.AddressFamily == AddressFamily.InterNetwork && addressPart.Count('.') != 3)
        {
            return false;
        }

        var max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var prefix = max;
        if (slash >= 0)
        {
            var prefixPart = s[(slash + 1)..];
            if (prefixPart.IsEmpty || prefixPart.Length > 3 || prefixPart.ContainsAnyExceptInRange('0', '9') ||
                !int.TryParse(prefixPart, NumberStyles.None, CultureInfo.InvariantCulture, out prefix) || prefix > max)
            {
                return false;
            }
        }

        network = new IPNetwork(Mask(address, prefix), prefix);
        return true;
    }

    /// <summary>Builds a set; throws <see cref="FormatException"/> naming the first text that is not a network.</summary>
    public static IpRangeSet Parse(IEnumerable<string> networks)
    {
        ArgumentNullException.ThrowIfNull(networks);
        var parsed = new List<IPNetwork>();
        foreach (var text in networks)
        {
            if (!TryParseNetwork(text, out var n))
            {
                throw new FormatException($"'{text}' is not an IPv4 or IPv6 network (address/prefix)");
            }

            parsed.Add(n);
        }

        return Create(parsed);
    }

    public static IpRangeSet Create(IEnumerable<IPNetwork> networks)
    {
        ArgumentNullException.ThrowIfNull(networks);
        var v4 = new List<(uint Start, uint End)>();
        var v6 = new List<(UInt128 Start, UInt128 End)>();
        var texts = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var n in networks)
        {
            texts.Add(n.ToString());
            if (n.BaseAddress.AddressFamily == AddressFamily.InterNetwork)
            {
                var start = ToUInt32(n.BaseAddress);
                var hostBits = 32 - n.PrefixLength;
                var end = hostBits == 32 ? uint.MaxValue : start | ((1u << hostBits) - 1);
                v4.Add((start, end));
            }
            else
            {
                var start = ToUInt128(n.BaseAddress);
                var hostBits = 128 - n.PrefixLength;
                var end = hostBits == 128 ? UInt128.MaxValue : start | ((UInt128.One << hostBits) - 1);
                v6.Add((start, end));
            }
        }

        var (v4s, v4e) = Merge(v4);
        var (v6s, v6e) = Merge(v6);
        return new IpRangeSet(v4s, v4e, v6s, v6e, texts.ToArray());
    }

    public bool Contains(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }

        return address.AddressFamily == AddressFamily.InterNetwork
            ? Find(_v4Start, _v4End, ToUInt32(address))
            : address.AddressFamily == AddressFamily.InterNetworkV6 && Find(_v6Start, _v6End, ToUInt128(address));
    }

    private static bool Find<T>(T[] starts, T[] ends, T value)
        where T : IComparable<T>
    {
        // The last interval starting at or before the value is the only one that can hold it (intervals are disjoint).
        var i = Array.BinarySearch(starts, value);
        if (i >= 0)
        {
            return true;
        }

        i = ~i - 1;
        return i >= 0 && value.CompareTo(ends[i]) <= 0;
    }

    private static (T[] Starts, T[] Ends) Merge<T>(List<(T Start, T End)> ranges)
        where T : IComparable<T>, INumberBase<T>, IMinMaxValue<T>
    {
        ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
        var starts = new List<T>(ranges.Count);
        var ends = new List<T>(ranges.Count);
        foreach (var (start, end) in ranges)
        {
            // Overlapping or adjacent: extend the previous interval.
            if (ends.Count > 0 && (ends[^1].CompareTo(T.MaxValue) == 0 || start.CompareTo(ends[^1] + T.One) <= 0))
            {
                if (end.CompareTo(ends[^1]) > 0)
                {
                    ends[^1] = end;
                }

                continue;
            }

            starts.Add(start);
            ends.Add(end);
        }

        return (starts.ToArray(), ends.ToArray());
    }

    private static IPAddress Mask(IPAddress address, int prefix)
    {
        var bytes = address.GetAddressBytes();
        for (var i = 0; i < bytes.Length; i++)
        {
            var bitsHere = Math.Clamp(prefix - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - bitsHere));
        }

        return new IPAddress(bytes);
    }

    private static uint ToUInt32(IPAddress address)
    {
        Span<byte> b = stackalloc byte[4];
        address.TryWriteBytes(b, out _);
        return BinaryPrimitives.ReadUInt32BigEndian(b);
    }

    private static UInt128 ToUInt128(IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out _);
        return BinaryPrimitives.ReadUInt128BigEndian(b);
    }
}
