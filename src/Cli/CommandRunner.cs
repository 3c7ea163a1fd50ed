using System.CommandLine;
using Google.Rpc;
using Grpc.Core;

namespace Gateway.Cli;

/// <summary>Runs a command body with a context and turns failures into readable messages and exit codes.</summary>
internal static class CommandRunner
{
    public static void SetAction(Command command, Func<CliContext, ParseResult, CancellationToken, Task> body)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var stdout = parse.InvocationConfiguration.Output;
            var stderr = parse.InvocationConfiguration.Error;
            try
            {
                using var context = CliContext.Create(parse, stdout);
                await body(context, parse, cancellationToken).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            catch (CliException e)
            {
                await stderr.WriteLineAsync("error: " + e.Message).ConfigureAwait(false);
                return e.ExitCode;
            }
            catch (RpcException e)
            {
                await stderr.WriteLineAsync(Describe(e)).ConfigureAwait(false);
                return IsTlsFailure(e) ? ExitCodes.Unavailable : ExitCode(e.StatusCode);
            }
        });
    }

    /// <summary>"error: INVALID_ARGUMENT: …" plus one line per field violation.</summary>
    internal static string Describe(RpcException e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var lines = new List<string>();
        var code = ToUpperSnake(e.StatusCode.ToString());
        var detail = e.Status.Detail;
        if (e.StatusCode == StatusCode.Unavailable && e.Status.DebugException is not null)
        {
            detail = $"cannot reach the ControlPlane ({e.Status.DebugException.Message})";
        }

        if (IsTlsFailure(e))
        {
            code = "UNAVAILABLE";
            detail = $"cannot verify the ControlPlane's TLS certificate ({e.Status.DebugException!.InnerException?.Message}); give its CA with --ca-file or GATEWAY_CA_FILE";
        }

        if (e.StatusCode == StatusCode.Unimplemented && string.IsNullOrEmpty(detail))
        {
            detail = "this ControlPlane does not offer this RPC (yet); is it an older version?";
        }

        var violations = e.GetRpcStatus()?.GetDetail<BadRequest>()?.FieldViolations.Select(v => $"  {v.Field}: {v.Description}").ToList() ?? [];

        // A single violation is already the whole message; print it once.
        lines.Add(violations.Count == 1 && $"  {detail}" == violations[0] ? $"error: {code}" : $"error: {code}: {detail}");
        lines.AddRange(violations);
        if (e.GetRpcStatus()?.GetDetail<ErrorInfo>() is { Reason: "UNVERIFIED_REGISTRATION" } claim)
        {
            lines.Add($"  its registration is not verified: to take it over, publish the TXT record \"{claim.Metadata["claim_txt_record"]}\" at " +
                      $"{claim.Metadata["domain"]} (or point its MX at {claim.Metadata["claim_mx_host"]}) and create it again");
        }

        if (e.StatusCode == StatusCode.Unauthenticated)
        {
            lines.Add("  give a key with --key, --key-file, GATEWAY_KEY or the config file");
        }

        if (e.StatusCode == StatusCode.PermissionDenied && detail.Contains("x-company-id", StringComparison.Ordinal))
        {
            lines.Add("  name the tenant with --company or GATEWAY_COMPANY");
        }

        return string.Join(Environment.NewLine, lines);
    }

    /// <summary>The server's certificate was not accepted (grpc-dotnet reports it as INTERNAL).</summary>
    private static bool IsTlsFailure(RpcException e) =>
        e.Status.DebugException is System.Net.Http.HttpRequestException { InnerException: System.Security.Authentication.AuthenticationException };

    private static int ExitCode(StatusCode code) => code switch
    {
        StatusCode.Unauthenticated or StatusCode.PermissionDenied => ExitCodes.Unauthenticated,
        StatusCode.NotFound => ExitCodes.NotFound,
        StatusCode.InvalidArgument or StatusCode.AlreadyExists or StatusCode.FailedPrecondition or StatusCode.Aborted or StatusCode.ResourceExhausted => ExitCodes.Rejected,
        StatusCode.Unavailable or StatusCode.DeadlineExceeded => ExitCodes.Unavailable,
        _ => ExitCodes.Failure,
    };

    private static string ToUpperSnake(string pascal) =>
        string.Concat(pascal.Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : char.ToUpperInvariant(c).ToString()));
}
