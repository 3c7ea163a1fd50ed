using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Gateway.Core.Domains;

/// <summary>
/// Which addresses the gateway connects to on a tenant's behalf (delivery, TestConnection, the background health
/// checks), decided after name resolution so a host name cannot lead where an address literal may not
/// (security review M6, issue 15, docs/reliability.md "Hostile tenant"). Never: unspecified (0.0.0.0/8, ::),
/// link-local (169.254/16, fe80::/10), multicast (224/4, ff00::/8), reserved and broadcast (240/4), and this host's own
/// addresses. Loopback (127/8, ::1) only with <see cref="GatewayOptions.AllowLoopbackDestinations"/> (off; the tests and
/// the demo turn it on); private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) unless
/// <see cref="GatewayOptions.AllowPrivateDestinations"/> is turned off. IPv4-mapped (<c>::ffff:a.b.c.d</c>),
/// IPv4-compatible (<c>::a.b.c.d</c>) and NAT64 (<c>64:ff9b::/96</c>) forms are judged by the IPv4 address they carry.
/// </summary>
public sealed class DestinationFilter
{
    private static readonly TimeSpan OwnAddressesLifetime = TimeSpan.FromMinutes(1);

    private readonly bool _allowLoopback;
    private readonly bool _allowPrivate;
    private readonly Func<IReadOnlyCollection<IPAddress>> _ownAddresses;
    private volatile OwnAddresses? _own;

    public DestinationFilter(GatewayOptions options, Func<IReadOnlyCollection<IPAddress>>? ownAddresses = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _allowLoopback = options.AllowLoopbackDestinations;
        _allowPrivate = options.AllowPrivateDestinations;
        _ownAddresses = ownAddresses ?? InterfaceAddresses;
    }

    /// <summary>Why the gateway must not connect to <paramref name="address"/>, or null when it may.</summary>
    public string? Refusal(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var a = Normalize(address);
        var kind = Classify(a);
        switch (kind)
        {
            case "loopback" when _allowLoopback:
                return null;
            case "loopback":
                return "a loopback address (Gateway:AllowLoopbackDestinations is off)";
            case "private" when !_allowPrivate:
                return "a private address (Gateway:AllowPrivateDestinations is off)";
            case "private" or null:
                break;
            default:
                return $"a {kind} address";
        }

        return IsOwn(a) ? "an address of this gateway host" : null;
    }

    /// <summary>The IPv4 address an IPv4-mapped, IPv4-compatible or NAT64 IPv6 address carries; others unchanged (scope dropped).</summary>
    public static IPAddress Normalize(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address;
        }

        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }

        var b = address.GetAddressBytes();
        var compatible = b.AsSpan(0, 12).IndexOfAnyExcept((byte)0) < 0 && (b[12] | b[13] | b[14]) != 0;
        var nat64 = b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b.AsSpan(4, 8).IndexOfAnyExcept((byte)0) < 0;
        return compatible || nat64 ? new IPAddress(b.AsSpan(12, 4)) : address.ScopeId != 0 ? new IPAddress(b) : address;
    }

    /// <summary>The category of a normalized address: unspecified, loopback, link-local, multicast, reserved, private, or null (public).</summary>
    public static string? Classify(IPAddress a)
    {
        ArgumentNullException.ThrowIfNull(a);
        var b = a.GetAddressBytes();
        if (a.AddressFamily == AddressFamily.InterNetwork)
        {
            return b[0] switch
            {
                0 => "unspecified",
                127 => "loopback",
                10 => "private",
                >= 240 => "reserved",
                >= 224 => "multicast",
                169 when b[1] == 254 => "link-local",
                172 when (b[1] & 0xF0) == 16 => "private",
                192 when b[1] == 168 => "private",
                100 when (b[1] & 0xC0) == 64 => "private",
                _ => null,
            };
        }

        if (a.Equals(IPAddress.IPv6None))
        {
            return "unspecified";
        }

        if (a.Equals(IPAddress.IPv6Loopback))
        {
            return "loopback";
        }

        return b[0] switch
        {
            0xFF => "multicast",
            0xFE when (b[1] & 0xC0) == 0x80 => "link-local",
            0xFE when (b[1] & 0xC0) == 0xC0 => "private", // deprecated site-local
            0xFC or 0xFD => "private",
            _ => null,
        };
    }

    private bool IsOwn(IPAddress a)
    {
        var own = _own;
        var now = Environment.TickCount64;
        if (own is null || now - own.Taken > OwnAddressesLifetime.TotalMilliseconds)
        {
            own = new OwnAddresses(now, _ownAddresses().Select(Normalize).ToHashSet());
            _own = own;
        }

        return own.Set.Contains(a);
    }

    private static IReadOnlyCollection<IPAddress> InterfaceAddresses()
    {
        try
        {
            return NetworkInterface.GetAllNetworkInterfaces()
                .SelectMany(n => n.GetIPProperties().UnicastAddresses.Select(u => u.Address))
                .Where(a => !IPAddress.IsLoopback(a))
                .ToList();
        }
        catch (NetworkInformationException)
        {
            return [];
        }
    }

    private sealed record OwnAddresses(long Taken, HashSet<IPAddress> Set);
}
