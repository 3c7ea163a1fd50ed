using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Gateway.Core.Telemetry;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Gateway.ControlPlane.Grpc;

/// <summary>
/// The ControlPlane's instruments (meter <c>Gateway.ControlPlane</c>, docs/telemetry.md): every RPC, by method and
/// gRPC status code, whether it came as gRPC or as HTTP/JSON (transcoded calls run through the same interceptors).
/// </summary>
public sealed class ControlPlaneMetrics : IGatewayInstruments
{
    public const string MeterName = "Gateway.ControlPlane";

    // Tag values: canonical gRPC code names (OK, NOT_FOUND, …), made once.
    private static readonly Dictionary<StatusCode, string> Codes = Enum.GetValues<StatusCode>().ToDictionary(c => c, c =>
        c == StatusCode.OK ? "OK" : string.Concat(c.ToString().Select((ch, i) => i > 0 && char.IsUpper(ch) ? "_" + ch : char.ToUpperInvariant(ch).ToString())));

    private readonly Counter<long> _requests;
    private readonly Histogram<double> _duration;

    public ControlPlaneMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(MeterName);
        _requests = meter.CreateCounter<long>("gateway.controlplane.requests", "{request}",
            "API calls answered (gRPC and HTTP/JSON), by method (/package.Service/Method) and gRPC status code.");
        _duration = meter.CreateHistogram("gateway.controlplane.request.duration", "s", "Time to answer an API call, by method.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });
    }

    public void Request(string method, StatusCode code, TimeSpan elapsed)
    {
        var m = new KeyValuePair<string, object?>("method", method);
        _requests.Add(1, m, new KeyValuePair<string, object?>("code", Codes.GetValueOrDefault(code, "UNKNOWN")));
        _duration.Record(elapsed.TotalSeconds, m);
    }
}

/// <summary>Counts and times every call; outermost, so it sees the status the error interceptor chose.</summary>
public sealed class MetricsInterceptor(ControlPlaneMetrics metrics) : Interceptor
{
    // context.Method strings are per call; keep one instance per method so tags compare by reference.
    private static readonly ConcurrentDictionary<string, string> Methods = new(StringComparer.Ordinal);

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        ArgumentNullException.ThrowIfNull(context);
        var started = Stopwatch.GetTimestamp();
        var code = StatusCode.Unknown;
        try
        {
            var response = await continuation(request, context).ConfigureAwait(false);
            code = context.Status.StatusCode;
            return response;
        }
        catch (RpcException e)
        {
            code = e.StatusCode;
            throw;
        }
        finally
        {
            metrics.Request(Methods.GetOrAdd(context.Method, m => m), code, Stopwatch.GetElapsedTime(started));
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        ArgumentNullException.ThrowIfNull(context);
        var started = Stopwatch.GetTimestamp();
        var code = StatusCode.Unknown;
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
            code = context.Status.StatusCode;
        }
        catch (RpcException e)
        {
            code = e.StatusCode;
            throw;
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            code = StatusCode.Cancelled;
            throw;
        }
        finally
        {
            metrics.Request(Methods.GetOrAdd(context.Method, m => m), code, Stopwatch.GetElapsedTime(started));
        }
    }
}
