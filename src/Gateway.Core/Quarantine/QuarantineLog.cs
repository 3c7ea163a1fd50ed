using Gateway.Core.MessageLog;

namespace Gateway.Core.Quarantine;

/// <summary>The message-log events of a quarantined message (requirements §7), written by the Deliverer and the ControlPlane.</summary>
public static class QuarantineLog
{
    /// <summary>The intake held <paramref name="message"/> for <paramref name="recipient"/>.</summary>
    public static MessageLogEvent Quarantined(QuarantinedMessage message, string recipient)
    {
        ArgumentNullException.ThrowIfNull(message);
        return Event(message, recipient, MessageLogEvents.Quarantined, message.QuarantineTime, $"held by {RuleText(message)}");
    }

    /// <summary>"rule &lt;id&gt; (&lt;description&gt;)": the rule that held the message.</summary>
    public static string RuleText(QuarantinedMessage m)
    {
        ArgumentNullException.ThrowIfNull(m);
        return string.IsNullOrEmpty(m.RuleDescription) ? $"rule {m.RuleId}" : $"rule {m.RuleId} ({m.RuleDescription})";
    }

    /// <summary>One event of <paramref name="m"/> for one recipient.</summary>
    public static MessageLogEvent Event(QuarantinedMessage m, string recipient, string name, DateTimeOffset time, string detail)
    {
        ArgumentNullException.ThrowIfNull(m);
        return new()
        {
            Domain = m.Domain, Event = name, Time = time, MessageId = m.Id, Direction = m.Direction, Sender = m.Sender, Recipient = recipient,
            ClientAddress = m.ClientAddress, Program = name == MessageLogEvents.Quarantined ? "deliverer" : "controlplane", Detail = detail,
        };
    }
}
