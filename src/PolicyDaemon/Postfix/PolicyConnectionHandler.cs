using System.Buffers;
using Gateway.Core.MessageLog;
using Gateway.Core.Relay;
using Gateway.Core.Verification;
using Gateway.PolicyDaemon.Protocol;
using Microsoft.AspNetCore.Connections;

namespace Gateway.PolicyDaemon.Postfix;

/// <summary>
/// Postfix SMTP access policy delegation (SMTPD_POLICY_README) on a Kestrel listener: many requests per
/// connection, one <c>action=…</c> reply each, decided from memory by <see cref="RelayDecider"/>. Log
/// events go to a buffer and never delay the reply.
/// </summary>
public sealed partial class PolicyConnectionHandler(
    RelayDecider decider,
    BufferedMessageLog messageLog,
    PolicyDaemonOptions settings,
    PolicyDaemonMetrics metrics,
    TimeProvider clock,
    ILogger<PolicyConnectionHandler> logger,
    RecipientVerifier verifier) : FramedConnectionHandler(settings, logger)
{
    /// <summary>The connection's request waiting for recipient verification (<see cref="CompleteAsync"/>).</summary>
    private static readonly object PendingKey = new();

    private const string Program = "policydaemon";
    private readonly PostfixPolicy _postfix = new(settings.AcceptAction);
    private readonly PolicyLimits _limits = settings.Limits;

    // A misconfigured listener sends the same bad policy_context with every request: warn once per value.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _reportedContexts = new(StringComparer.Ordinal);

    protected override string Protocol => "policy";

    protected override FrameStatus Process(ref ReadOnlySequence<byte> buffer, IBufferWriter<byte> output, ConnectionContext connection)
    {
        var status = PolicyRequestParser.TryParse(ref buffer, _limits, out var request, out var error);
        if (status == OperationStatus.NeedMoreData)
        {
            return FrameStatus.NeedMoreData;
        }

        if (status != OperationStatus.Done || request is null)
        {
            metrics.Malformed(Protocol);
            LogMalformed(logger, connection.RemoteEndPoint, error);
            return FrameStatus.Invalid;
        }

        var relay = PostfixPolicy.ToRelayRequest(request) with { Time = clock.GetUtcNow() };
        var decision = decider.Decide(relay);
        if (VerificationRules.Applies(decision))
        {
            // The domain verifies recipients: answered once the cache (or the customer's server) has spoken.
            connection.Items[PendingKey] = (request, relay, decision);
            return FrameStatus.Answered;
        }

        Answer(output, request, relay, decision);
        return FrameStatus.Answered;
    }

    protected override async ValueTask CompleteAsync(IBufferWriter<byte> output, ConnectionContext connection)
    {
        if (!connection.Items.TryGetValue(PendingKey, out var pending) || pending is not (PolicyRequest request, RelayRequest relay, RelayDecision accepted))
        {
            return;
        }

        connection.Items.Remove(PendingKey);
        var decision = await verifier.ApplyAsync(relay, accepted, Program, connection.ConnectionClosed).ConfigureAwait(false);
        Answer(output, request, relay, decision);
    }

    private void Answer(IBufferWriter<byte> output, PolicyRequest request, RelayRequest relay, RelayDecision decision)
    {
        var action = _postfix.Action(decision);
        output.Write(_postfix.Reply(decision, action));
        metrics.Decision(decision);
        if (decision.Reason == RelayReason.UnknownScope && _reportedContexts.Count < 100 && _reportedContexts.TryAdd(request.PolicyContext ?? string.Empty, true))
        {
            LogUnknownContext(logger, request.PolicyContext);
        }

        foreach (var e in RelayLog.Events(relay, decision, action, Program, Options.LogAccepts, clock.GetUtcNow()))
        {
            messageLog.Post(e);
        }
    }

    [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "Malformed policy request from {Remote} ({Error}); connection closed without a reply")]
    private static partial void LogMalformed(ILogger logger, System.Net.EndPoint? remote, PolicyParseError error);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "Policy request with unknown policy_context '{Context}' (expected empty, inbound or outbound); answered DEFER_IF_PERMIT")]
    private static partial void LogUnknownContext(ILogger logger, string? context);
}
