using System.Buffers;
using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Connections;

namespace Gateway.PolicyDaemon.Postfix;

/// <summary>What <see cref="FramedConnectionHandler.Process"/> did with the buffered bytes.</summary>
public enum FrameStatus
{
    /// <summary>One request was answered; the buffer was advanced past it.</summary>
    Answered,

    /// <summary>No complete request is buffered.</summary>
    NeedMoreData,

    /// <summary>The request is malformed: close the connection without a reply.</summary>
    Invalid,
}

/// <summary>
/// The read loop shared by the Postfix front ends, on a Kestrel connection (the shape of
/// StackExchange.Redis' <c>RespServer.RunClientAsync</c>): read, answer every complete request in the
/// buffer, <c>AdvanceTo(consumed, examined)</c>, flush once per read. Every read has a timeout: the idle
/// timeout between requests, the shorter request timeout while a request is half received. A malformed
/// request closes the connection without a reply, which is what SMTPD_POLICY_README asks of a server "in
/// case of trouble" (Postfix then retries or applies its default action); the process goes on.
/// </summary>
public abstract partial class FramedConnectionHandler(PolicyDaemonOptions options, ILogger logger) : ConnectionHandler
{
    /// <summary>The daemon's settings.</summary>
    protected PolicyDaemonOptions Options { get; } = options;

    /// <summary>Handles one request at the start of <paramref name="buffer"/>; writes the reply to <paramref name="output"/>.</summary>
    protected abstract FrameStatus Process(ref ReadOnlySequence<byte> buffer, IBufferWriter<byte> output, ConnectionContext connection);

    /// <summary>
    /// Called after every answered request: writes a reply that <see cref="Process"/> left to I/O (recipient verification
    /// asks Redis and maybe the customer's server) before the next request is handled, so replies stay in order. Nothing by default.
    /// </summary>
    protected virtual ValueTask CompleteAsync(IBufferWriter<byte> output, ConnectionContext connection) => ValueTask.CompletedTask;

    /// <summary>A name for logs (policy, socketmap).</summary>
    protected abstract string Protocol { get; }

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var input = connection.Transport.Input;
        var output = connection.Transport.Output;
        // Kestrel asks connections to close when the host stops: answer what is complete, then close, so
        // the host stops at once instead of draining idle Postfix connections (Postfix reconnects).
        var closeRequested = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;
        var timeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed, closeRequested);
        var midRequest = false;
        try
        {
            while (true)
            {
                var limit = midRequest ? Options.RequestTimeout : Options.IdleTimeout;
                timeout.CancelAfter(limit);
                ReadResult result;
                try
                {
                    result = await input.ReadAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (closeRequested.IsCancellationRequested)
                {
                    break;
                }
                catch (OperationCanceledException) when (!connection.ConnectionClosed.IsCancellationRequested)
                {
                    LogTimeout(logger, Protocol, connection.RemoteEndPoint, midRequest ? "the rest of a request" : "a request", limit.TotalSeconds);
                    break;
                }

                // Reuse the token source for the next read; a fresh one if the timer fired just now.
                if (!timeout.TryReset())
                {
                    timeout.Dispose();
                    timeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed, closeRequested);
                }

                var buffer = result.Buffer;
                var answered = 0;
                var status = FrameStatus.NeedMoreData;
                while (!buffer.IsEmpty && (status = Process(ref buffer, output, connection)) == FrameStatus.Answered)
                {
                    answered++;
                    await CompleteAsync(output, connection).ConfigureAwait(false);
                }

                midRequest = !buffer.IsEmpty;
                input.AdvanceTo(buffer.Start, buffer.End);
                if (answered > 0)
                {
                    var flush = await output.FlushAsync(connection.ConnectionClosed).ConfigureAwait(false);
                    if (flush.IsCompleted || flush.IsCanceled)
                    {
                        break;
                    }
                }

                if (status == FrameStatus.Invalid || closeRequested.IsCancellationRequested)
                {
                    break;
                }

                if (result.IsCompleted || result.IsCanceled)
                {
                    if (midRequest)
                    {
                        LogIncomplete(logger, Protocol, connection.RemoteEndPoint);
                    }

                    break;
                }
            }
        }
        catch (ConnectionResetException)
        {
            // The peer went away (Postfix restarted, smtpd exited): expected.
        }
        catch (ConnectionAbortedException)
        {
            // Kestrel is shutting down or aborted the connection: expected.
        }
        catch (OperationCanceledException) when (connection.ConnectionClosed.IsCancellationRequested)
        {
        }
        finally
        {
            timeout.Dispose();
            await input.CompleteAsync().ConfigureAwait(false);
            await output.CompleteAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = 3010, Level = LogLevel.Information, Message = "{Protocol} connection from {Remote} closed: no {What} within {Seconds:F0} s")]
    private static partial void LogTimeout(ILogger logger, string protocol, System.Net.EndPoint? remote, string what, double seconds);

    [LoggerMessage(EventId = 3011, Level = LogLevel.Warning, Message = "{Protocol} connection from {Remote} ended in the middle of a request; nothing answered")]
    private static partial void LogIncomplete(ILogger logger, string protocol, System.Net.EndPoint? remote);
}
