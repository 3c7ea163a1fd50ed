using Gateway.Core.Relay;
using Gateway.Core.Rules;

namespace Gateway.Core.Relay;

/// <summary>
/// requirements §4.4 / §7 at RCPT: the rules of the domain that granted the relay, with what is known at RCPT
/// (envelope, client, announced size). Only a matching REJECT refuses here; QUARANTINE is accepted and held by
/// the Deliverer at intake (the message does not exist yet at RCPT), DELIVER accepts; a rule that needs the
/// content leaves the decision to the intake. A domain without rules costs one null test.
/// </summary>
public sealed class RuleEnvelopeCheck : IEnvelopeCheck
{
    public EnvelopeRefusal? Check(RelayRequest request, RelayDecision accepted)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(accepted);
        if (accepted.Domain?.Rules is not { } rules || accepted.Direction is not { } direction)
        {
            return null;
        }

        var outcome = RuleEvaluator.Evaluate(rules, new RuleFacts
        {
            Direction = direction,
            Sender = request.Sender,
            Recipient = request.Recipient,
            ClientAddress = request.ClientAddress,
            Size = request.Size,
        });
        return outcome is { Verdict: RuleVerdict.Matched, Rule.Rule: { Action: RuleAction.Reject } rule }
            ? new EnvelopeRefusal(false, rule.EffectiveRejectText, Describe(rule))
            : null;
    }

    /// <summary>The log's explanation of a rule's decision.</summary>
    public static string Describe(PolicyRule rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        return rule.Description.Length > 0 ? $"rule {rule.Id} ({rule.Description})" : $"rule {rule.Id}";
    }
}
