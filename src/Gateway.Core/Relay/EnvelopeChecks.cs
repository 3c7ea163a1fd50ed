namespace Gateway.Core.Relay;

/// <summary>
/// A check on the envelope of a recipient the relay rules accepted (requirements §4.4: domain rules that
/// decide on envelope data, e.g. reject a sender). Registered in DI; <see cref="RelayEngine"/> runs every
/// check in registration order and stops at the first refusal.
/// <para>
/// A check can only refuse, never accept: whatever checks are added, the gateway never relays more than
/// the relay rules grant, so a check can never make it an open relay. Checks run on the hot path of every
/// RCPT: they must decide from memory (the snapshot, <see cref="RelayDecision.Domain"/>) and never wait on I/O.
/// </para>
/// </summary>
public interface IEnvelopeCheck
{
    /// <summary>Returns null to let the recipient pass, or why it is refused.</summary>
    EnvelopeRefusal? Check(RelayRequest request, RelayDecision accepted);
}

/// <summary>A refusal by an envelope check.</summary>
/// <param name="Temporary">True: try later (4xx); false: permanent (5xx).</param>
/// <param name="ReplyText">What the SMTP client is told (no status codes; the front end adds them).</param>
/// <param name="LogDetail">What the domain's log says (rule id, the condition that matched).</param>
public sealed record EnvelopeRefusal(bool Temporary, string ReplyText, string LogDetail);
