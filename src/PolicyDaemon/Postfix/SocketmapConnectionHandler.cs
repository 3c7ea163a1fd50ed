using System.Buffers;
using System.Text;
using Gateway.Core.Relay;
using Gateway.Core.Snapshot;
using Gateway.PolicyDaemon.Protocol;
using Microsoft.AspNetCore.Connections;

namespace Gateway.PolicyDaemon.Postfix;

/// <summary>
/// Postfix socketmap tables (socketmap_table(5)) on a Kestrel listener: <c>domains</c> for
/// <c>relay_domains</c> and <c>transport</c> for <c>transport_maps</c> (requirements §5), answered from the snapshot.
/// A framing error closes the connection; a well-framed request for an unknown map gets <c>PERM</c>.
/// </summary>
public sealed partial class SocketmapConnectionHandler(
    ConfigSnapshot snapshot,
    PolicyDaemonOptions settings,
    PolicyDaemonMetrics metrics,
    ILogger<SocketmapConnectionHandler> logger) : FramedConnectionHandler(settings, logger)
{
    public const string DomainsMap = "domains";
    public const string TransportMap = "transport";
    public const string NotLoadedReason = "gateway configuration not loaded yet";

    private static readonly byte[] NotFound = Encoding.ASCII.GetBytes("NOTFOUND ");
    private static readonly byte[] Temp = Encoding.ASCII.GetBytes("TEMP " + NotLoadedReason);
    private static readonly byte[] Malformed = Encoding.ASCII.GetBytes("PERM malformed request (expected '<map> <key>')");
    private uint _rotation;

    protected override string Protocol => "socketmap";

    protected override FrameStatus Process(ref ReadOnlySequence<byte> buffer, IBufferWriter<byte> output, ConnectionContext connection)
    {
        var status = Netstring.TryRead(ref buffer, Options.MaxSocketmapRequest, out var payload, out var error);
        if (status == OperationStatus.NeedMoreData)
        {
            return FrameStatus.NeedMoreData;
        }

        if (status != OperationStatus.Done)
        {
            metrics.Malformed(Protocol);
            LogMalformed(logger, connection.RemoteEndPoint, error);
            return FrameStatus.Invalid;
        }

        if (!SocketmapRequest.TryParse(payload, out var map, out var key))
        {
            metrics.Lookup("invalid", "perm");
            Netstring.Write(output, Malformed);
            return FrameStatus.Answered;
        }

        LookupAnswer answer;
        switch (map)
        {
            case DomainsMap:
                answer = NextHopRules.ManagedDomain(key, snapshot);
                break;
            case TransportMap:
                answer = NextHopRules.Transport(key, snapshot, Options.TransportMode, Options.DelivererNextHop, Interlocked.Increment(ref _rotation));
                break;
            default:
                metrics.Lookup("unknown", "perm");
                Netstring.Write(output, SocketmapRequest.Reply("PERM", "unknown map '" + map + "' (this server has 'domains' and 'transport')"));
                return FrameStatus.Answered;
        }

        metrics.Lookup(map, answer.Status);
        switch (answer.Status)
        {
            case LookupStatus.Found:
                Netstring.Write(output, SocketmapRequest.Reply("OK", answer.Value!));
                break;
            case LookupStatus.NotFound:
                Netstring.Write(output, NotFound);
                break;
            default:
                Netstring.Write(output, Temp);
                break;
        }

        return FrameStatus.Answered;
    }

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Malformed socketmap request from {Remote} ({Error}); connection closed without a reply")]
    private static partial void LogMalformed(ILogger logger, System.Net.EndPoint? remote, NetstringError error);
}
