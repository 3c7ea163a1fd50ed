using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Connections;

namespace PolicyBench;

/// <summary>
/// The ceiling: the same host and read loop shape as the PolicyDaemon (Kestrel, UseConnectionHandler,
/// PipeReader), answering every request (everything up to an empty line) with <c>action=DUNNO</c> and
/// doing nothing else. What it reaches is what the generator and the machine allow.
/// </summary>
internal static class TrivialServer
{
    public static async Task<int> RunAsync(Options o)
    {
        var listen = IPEndPoint.Parse(o["listen"]);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k => k.Listen(listen, l => l.UseConnectionHandler<DunnoHandler>()));
        await builder.Build().RunAsync();
        return 0;
    }

    private sealed class DunnoHandler : ConnectionHandler
    {
        private static readonly byte[] Reply = "action=DUNNO\n\n"u8.ToArray();

        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            var input = connection.Transport.Input;
            var output = connection.Transport.Output;
            try
            {
                while (true)
                {
                    var result = await input.ReadAsync(connection.ConnectionClosed);
                    var buffer = result.Buffer;
                    var answered = 0;
                    while (TryTakeRequest(ref buffer))
                    {
                        output.Write(Reply);
                        answered++;
                    }

                    input.AdvanceTo(buffer.Start, buffer.End);
                    if (answered > 0)
                    {
                        await output.FlushAsync(connection.ConnectionClosed);
                    }

                    if (result.IsCompleted)
                    {
                        break;
                    }
                }
            }
            catch (ConnectionResetException)
            {
            }
            catch (OperationCanceledException)
            {
            }
        }

        private static bool TryTakeRequest(ref ReadOnlySequence<byte> buffer)
        {
            var reader = new SequenceReader<byte>(buffer);
            if (!reader.TryReadTo(out ReadOnlySequence<byte> _, "\n\n"u8, advancePastDelimiter: true))
            {
                return false;
            }

            buffer = buffer.Slice(reader.Position);
            return true;
        }
    }
}
