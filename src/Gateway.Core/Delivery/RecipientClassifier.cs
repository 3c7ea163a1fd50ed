using Gateway.Core.Domains;
using Gateway.Core.MessageLog;
using Gateway.Core.Snapshot;

namespace Gateway.Core.Delivery;

public enum RecipientDecision
{
    /// <summary>The recipient's domain is managed with inbound on: its inbound route.</summary>
    Inbound,

    /// <summary>The sender's domain is managed, verified, with outbound on: the recipient's MX.</summary>
    Outbound,

    /// <summary>Neither: the gateway is no open relay (SPEC §4 rule 3).</summary>
    NoDomain,

    /// <summary>No snapshot yet: never decide from nothing (SPEC §4 rule 5).</summary>
    TryLater,
}

/// <summary>Where one recipient goes, and which managed domain owns the queued copy.</summary>
public readonly record struct RecipientClass(RecipientDecision Decision, string? Domain)
{
    public string Direction => Decision == RecipientDecision.Inbound ? Directions.Inbound : Directions.Outbound;
}

/// <summary>
/// The intake's relay decision per recipient: SPEC §4 rules 1-3 without the client address check (the
/// intake's client is Postfix, which asked the PolicyDaemon with the real client address already).
/// Repeating the domain rules here means a message that somehow skipped the policy check still cannot
/// make the gateway an open relay.
/// </summary>
public static class RecipientClassifier
{
    public static RecipientClass Classify(string sender, string recipient, ConfigSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (!snapshot.IsLoaded)
        {
            return new(RecipientDecision.TryLater, null);
        }

        var rcptDomain = Find(snapshot, Addresses.DomainOf(recipient));
        if (rcptDomain is { InboundEnabled: true })
        {
            return new(RecipientDecision.Inbound, rcptDomain.Name);
        }

        var senderDomain = Find(snapshot, Addresses.DomainOf(sender));
        if (senderDomain is { Verified: true, Outbound: { Enabled: true, HasNoSource: false } })
        {
            return new(RecipientDecision.Outbound, senderDomain.Name);
        }

        return new(RecipientDecision.NoDomain, null);
    }

    /// <summary>A managed domain by an address's domain part, ASCII or internationalised (U-label → A-label).</summary>
    public static DomainEntry? Find(ConfigSnapshot snapshot, string domain)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        if (domain.Length == 0)
        {
            return null;
        }

        var entry = snapshot.Find(domain);
        if (entry is null && !domain.All(char.IsAscii) && DomainName.NormalizeOrNull(domain) is { } ascii)
        {
            entry = snapshot.Find(ascii);
        }

        return entry;
    }
}

/// <summary>Small pure helpers over envelope addresses.</summary>
public static class Addresses
{
    /// <summary>The domain part (after the last <c>@</c>), without a trailing dot; empty for the null sender or a bare local part.</summary>
    public static string DomainOf(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var at = address.LastIndexOf('@');
        if (at < 0 || at == address.Length - 1)
        {
            return string.Empty;
        }

        var d = address[(at + 1)..];
        return d.EndsWith('.') ? d[..^1] : d;
    }
}

/// <summary>Loop protection (RFC 5321 §6.3): counts the <c>Received:</c> headers of a message.</summary>
public static class HopCounter
{
    /// <summary>
    /// The number of <c>Received:</c> header fields in the header section of <paramref name="message"/>
    /// (up to the first empty line). Postfix's <c>hopcount_limit</c> defaults to 50.
    /// </summary>
    public static int CountReceived(ReadOnlySpan<byte> message)
    {
        var count = 0;
        var lineStart = true;
        for (var i = 0; i < message.Length; i++)
        {
            if (lineStart)
            {
                var rest = message[i..];
                if (rest.StartsWith("\r\n"u8) || rest.StartsWith("\n"u8))
                {
                    break;
                }

                if (rest.Length >= 9 && System.Text.Ascii.EqualsIgnoreCase(rest[..9], "Received:"u8))
                {
                    count++;
                }
            }

            lineStart = message[i] == (byte)'\n';
        }

        return count;
    }
}
