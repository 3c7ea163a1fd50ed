using System.Net;
using System.Net.Sockets;

namespace Gateway.Testing;

/// <summary>Free TCP ports on loopback for servers that cannot bind port 0 themselves (redis-server, Postfix).</summary>
public static class FreePort
{
    private static int _next = 20000 + (Environment.ProcessId % 20000);

    /// <summary>
    /// A port that is free on <paramref name="address"/> now. Ports are handed out from a moving
    /// counter so parallel tests in this process never get the same one.
    /// </summary>
    public static int Get(IPAddress? address = null)
    {
        address ??= IPAddress.Loopback;
        for (var i = 0; i < 20000; i++)
        {
            var port = Interlocked.Increment(ref _next);
            if (port > 60000)
            {
                Interlocked.Exchange(ref _next, 20000);
                continue;
            }

            try
            {
                using var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                listener.Bind(new IPEndPoint(address, port));
                return port;
            }
            catch (SocketException)
            {
            }
        }

        throw new InvalidOperationException("no free port");
    }
}
