using Gateway.ControlPlane.Application;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Gateway.ControlPlane.Grpc;

/// <summary>
/// requirements §2: every RPC needs <c>authorization: Bearer &lt;key&gt;</c>. Health checks and server
/// reflection stay open so probes and tools such as grpcurl work without a key.
/// </summary>
public sealed class AuthInterceptor(TenantManager tenants) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        await AuthenticateAsync(context).ConfigureAwait(false);
        return await continuation(request, context).ConfigureAwait(false);
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        await AuthenticateAsync(context).ConfigureAwait(false);
        await continuation(request, responseStream, context).ConfigureAwait(false);
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        await AuthenticateAsync(context).ConfigureAwait(false);
        return await continuation(requestStream, context).ConfigureAwait(false);
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        ArgumentNullException.ThrowIfNull(continuation);
        await AuthenticateAsync(context).ConfigureAwait(false);
        await continuation(requestStream, responseStream, context).ConfigureAwait(false);
    }

    private async Task AuthenticateAsync(ServerCallContext context)
    {
        if (IsOpen(context.Method))
        {
            return;
        }

        var header = context.RequestHeaders.GetValue("authorization");
        const string Scheme = "Bearer ";
        string? key = null;
        if (header is not null && header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            key = header[Scheme.Length..].Trim();
        }

        var principal = await tenants.AuthenticateAsync(key).ConfigureAwait(false)
            ?? throw new RpcException(new Status(StatusCode.Unauthenticated,
                key is null ? "Missing API key: send 'authorization: Bearer <key>'." : "Invalid API key."));
        Caller.Set(context, principal);
    }

    private static bool IsOpen(string method) =>
        method.StartsWith("/grpc.health.v1.", StringComparison.Ordinal) ||
        method.StartsWith("/grpc.reflection.", StringComparison.Ordinal);
}
