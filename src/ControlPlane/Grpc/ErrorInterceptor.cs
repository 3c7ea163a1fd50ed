using Gateway.Core.Errors;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;
using StackExchange.Redis;

namespace Gateway.ControlPlane.Grpc;

/// <summary>
/// Turns domain-layer errors into gRPC statuses with the rich error model (google.rpc.Status with
/// BadRequest field violations). Store outages become UNAVAILABLE; anything unexpected INTERNAL
/// with the detail only in the log (and in the reply in Development).
/// </summary>
public sealed partial class ErrorInterceptor(ILogger<ErrorInterceptor> logger, IHostEnvironment environment) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not RpcException)
        {
            throw Map(e, context.Method);
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not RpcException && !(e is OperationCanceledException && context.CancellationToken.IsCancellationRequested))
        {
            throw Map(e, context.Method);
        }
    }

    private RpcException Map(Exception e, string method)
    {
        switch (e)
        {
            case GatewayException g:
                var status = new Google.Rpc.Status { Code = (int)ToCode(g.Kind), Message = g.Message };
                if (g.Kind == ErrorKind.ResourceExhausted)
                {
                    // google.rpc.QuotaFailure names the limit (the setting), as the error model prescribes for this code.
                    var quota = new QuotaFailure();
                    quota.Violations.AddRange(g.Violations.Select(v => new QuotaFailure.Types.Violation { Subject = v.Field, Description = v.Description }));
                    status.Details.Add(Any.Pack(quota));
                }
                else if (g.Violations.Count > 0)
                {
                    var bad = new BadRequest();
                    bad.FieldViolations.AddRange(g.Violations.Select(v => new BadRequest.Types.FieldViolation { Field = v.Field, Description = v.Description }));
                    status.Details.Add(Any.Pack(bad));
                }

                if (g.Reason is not null)
                {
                    var info = new ErrorInfo { Reason = g.Reason, Domain = "gateway" };
                    foreach (var (key, value) in g.Info)
                    {
                        info.Metadata[key] = value;
                    }
                    status.Details.Add(Any.Pack(info));
                }

                return status.ToRpcException();
            case RedisException or RedisTimeoutException or RedisConnectionException:
                LogStoreUnavailable(logger, method, e);
                return new RpcException(new global::Grpc.Core.Status(StatusCode.Unavailable, "The configuration store is unavailable; retry shortly."));
            default:
                LogUnexpected(logger, method, e);
                return new RpcException(new global::Grpc.Core.Status(StatusCode.Internal,
                    environment.IsDevelopment() ? e.ToString() : "Internal error; see the ControlPlane log."));
        }
    }

    private static Code ToCode(ErrorKind kind) => kind switch
    {
        ErrorKind.InvalidArgument => Code.InvalidArgument,
        ErrorKind.NotFound => Code.NotFound,
        ErrorKind.AlreadyExists => Code.AlreadyExists,
        ErrorKind.Aborted => Code.Aborted,
        ErrorKind.FailedPrecondition => Code.FailedPrecondition,
        ErrorKind.PermissionDenied => Code.PermissionDenied,
        ErrorKind.Unauthenticated => Code.Unauthenticated,
        ErrorKind.Unavailable => Code.Unavailable,
        ErrorKind.ResourceExhausted => Code.ResourceExhausted,
        _ => Code.Internal,
    };

    [LoggerMessage(EventId = 200, Level = LogLevel.Warning, Message = "{Method}: store unavailable")]
    private static partial void LogStoreUnavailable(ILogger logger, string method, Exception exception);

    [LoggerMessage(EventId = 201, Level = LogLevel.Error, Message = "{Method}: unexpected error")]
    private static partial void LogUnexpected(ILogger logger, string method, Exception exception);
}
