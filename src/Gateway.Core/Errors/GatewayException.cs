using System.Diagnostics.CodeAnalysis;

namespace Gateway.Core.Errors;

/// <summary>The outcome classes of the domain layer; the ControlPlane maps them to gRPC status codes.</summary>
public enum ErrorKind
{
    InvalidArgument,
    NotFound,
    AlreadyExists,
    Aborted,
    FailedPrecondition,
    PermissionDenied,
    Unauthenticated,
    Unavailable,

    /// <summary>A tenant limit was reached (Gateway:Limits, the ControlPlane's TenantLimits); the violations name the setting.</summary>
    ResourceExhausted,
}

/// <summary>One invalid field, named by its path in the request (e.g. <c>domain.inbound_servers[2].port</c>).</summary>
public sealed record FieldViolation(string Field, string Description);

/// <summary>
/// An error the caller can act on. <see cref="Exception.Message"/> is what the caller is told;
/// never put secrets or internal detail in it.
/// </summary>
public sealed class GatewayException : Exception
{
    public GatewayException(ErrorKind kind, string message, IReadOnlyList<FieldViolation>? violations = null)
        : base(message)
    {
        Kind = kind;
        Violations = violations ?? [];
    }

    public GatewayException() : this(ErrorKind.InvalidArgument, "invalid request") { }

    public GatewayException(string message) : this(ErrorKind.InvalidArgument, message) { }

    public GatewayException(string message, Exception innerException) : base(message, innerException)
    {
        Kind = ErrorKind.Unavailable;
        Violations = [];
    }

    public ErrorKind Kind { get; }

    public IReadOnlyList<FieldViolation> Violations { get; }

    /// <summary>A machine-readable reason (google.rpc.ErrorInfo) with <see cref="Info"/>, for errors a client can act on beyond the message.</summary>
    public string? Reason { get; init; }

    /// <summary>Details that go with <see cref="Reason"/> (ErrorInfo metadata).</summary>
    public IReadOnlyDictionary<string, string> Info { get; init; } = new Dictionary<string, string>();

    [DoesNotReturn]
    public static void ThrowInvalid(IReadOnlyList<FieldViolation> violations) =>
        throw new GatewayException(ErrorKind.InvalidArgument,
            violations.Count == 1 ? $"{violations[0].Field}: {violations[0].Description}" : $"{violations.Count} fields are invalid; see the field violations.",
            violations);

    [DoesNotReturn]
    public static void ThrowInvalid(string field, string description) => ThrowInvalid([new FieldViolation(field, description)]);

    [DoesNotReturn]
    public static void ThrowNotFound(string message) => throw new GatewayException(ErrorKind.NotFound, message);

    [DoesNotReturn]
    public static void ThrowAlreadyExists(string message) => throw new GatewayException(ErrorKind.AlreadyExists, message);

    [DoesNotReturn]
    public static void ThrowAborted(string message) => throw new GatewayException(ErrorKind.Aborted, message);

    [DoesNotReturn]
    public static void ThrowFailedPrecondition(string message) => throw new GatewayException(ErrorKind.FailedPrecondition, message);
}
