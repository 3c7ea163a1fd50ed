using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using MimeKit;
using MimeKit.Utils;

namespace Gateway.Core.Delivery;

/// <summary>One recipient reported in a DSN: failed (the default) or, when its sender asked (NOTIFY=SUCCESS), relayed.</summary>
/// <param name="Address">The envelope recipient (Final-Recipient).</param>
/// <param name="Reply">What the remote server said, or the local reason.</param>
/// <param name="RemoteHost">The server that said it (Remote-MTA), if any.</param>
/// <param name="Expired">True when the message expired in the queue rather than being refused.</param>
/// <param name="Relayed">
/// True for a success notice: the next hop accepted the recipient. The gateway passes no DSN parameters on, so the
/// notice is "relayed" (RFC 3461 §6.2.1: the next hop will not report delivery), never "delivered".
/// </param>
public sealed record DsnRecipient(string Address, string Reply, string? RemoteHost, bool Expired, bool Relayed = false);

/// <summary>
/// Builds RFC 3464 delivery status notifications with MimeKit: a <c>multipart/report;
/// report-type=delivery-status</c> (RFC 6522) with a human-readable part, the <c>message/delivery-status</c>
/// part (per-message and per-recipient fields) and the original headers (<c>text/rfc822-headers</c>, at most
/// <see cref="HeaderReturnLimit"/>), or the whole original (<c>message/rfc822</c>, at most <see cref="FullReturnLimit"/>) when
/// its sender asked for it (RFC 3461 RET=FULL) and a recipient failed.
/// The RFC 3461 parameters the sender gave appear as Original-Envelope-Id (ENVID) and Original-Recipient (ORCPT).
/// Sent from the null sender (RFC 5321 §4.5.5) so a DSN is never answered by another DSN.
/// </summary>
public static partial class DsnBuilder
{
    /// <summary>
    /// RET=FULL returns the whole original only up to this size (Postfix: <c>bounce_size_limit</c> = 50,000 bytes);
    /// a larger original is returned as its header section.
    /// </summary>
    public const int FullReturnLimit = 50_000;

    /// <summary>
    /// The original's header section is returned up to this size, cut at a line end (Postfix caps what it returns with
    /// <c>bounce_size_limit</c> too). Without this a hostile sender's message without a header/body separator would come back
    /// whole in every DSN (requirements §11).
    /// </summary>
    public const int HeaderReturnLimit = 16 * 1024;

    /// <summary>The DSN message for <paramref name="original"/>'s failed recipients, as raw bytes to enqueue.</summary>
    public static byte[] Build(QueuedMessage original, ReadOnlySpan<byte> originalBody, IReadOnlyList<DsnRecipient> failed, string reportingMta, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(failed);
        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("Mail Delivery System", "MAILER-DAEMON@" + reportingMta));
        // The envelope sender as taken by the intake (as leniently as Postfix takes it) may be no address MimeKit can
        // parse (an unquoted '@' in the local part): then the header carries it as text. The DSN goes to the envelope
        // sender either way; throwing here would fail the whole attempt, again at every lease expiry.
        if (MailboxAddress.TryParse(original.Sender, out var to))
        {
            message.To.Add(to);
        }
        else
        {
            message.Headers.Add(HeaderId.To, "<" + original.Sender.ReplaceLineEndings(string.Empty) + ">");
        }

        var anyFailed = failed.Any(f => !f.Relayed);
        var expired = anyFailed && failed.Where(f => !f.Relayed).All(f => f.Expired);
        message.Subject = !anyFailed ? "Delivery Status Notification (Relayed)"
            : expired ? "Delivery Status Notification (Expired)" : "Undelivered Mail Returned to Sender";
        message.Date = now;
        message.MessageId = $"{original.Id}.dsn.{now.ToUnixTimeMilliseconds()}@{reportingMta}";
        // RFC 3834 §5: machine-generated; auto-responders must not answer it.
        message.Headers.Add("Auto-Submitted", "auto-replied");

        var report = new MultipartReport("delivery-status");
        report.Add(new TextPart("plain") { Text = HumanText(original, failed, reportingMta) });

        var status = new MessageDeliveryStatus();
        var perMessage = new HeaderList();
        if (original.DsnEnvelopeId is { Length: > 0 } envelopeId)
        {
            perMessage.Add("Original-Envelope-Id", envelopeId);
        }

        perMessage.Add("Reporting-MTA", "dns; " + reportingMta);
        perMessage.Add("X-Gateway-Queue-ID", original.Id);
        perMessage.Add("Arrival-Date", DateUtils.FormatDate(original.CreateTime));
        status.StatusGroups.Add(perMessage);
        var recipients = original.RecipientsByAddress();
        foreach (var f in failed)
        {
            var (code, reply) = SplitReply(f.Reply);
            var group = new HeaderList();
            if (recipients.GetValueOrDefault(f.Address)?.OriginalRecipient is { } orcpt)
            {
                var semicolon = orcpt.IndexOf(';', StringComparison.Ordinal);
                group.Add("Original-Recipient", semicolon > 0 ? orcpt[..semicolon] + "; " + orcpt[(semicolon + 1)..] : orcpt);
            }

            group.Add("Final-Recipient", "rfc822; " + f.Address);
            group.Add("Action", f.Relayed ? "relayed" : "failed");
            group.Add("Status", StatusCode(f, code, reply));
            if (f.RemoteHost is not null)
            {
                group.Add("Remote-MTA", "dns; " + RemoteMtaName(f.RemoteHost));
            }

            // Diagnostic-Code carries the remote reply (smtp) or our own reason (x-gateway).
            group.Add("Diagnostic-Code", code is not null ? "smtp; " + f.Reply : "x-gateway; " + f.Reply);
            group.Add("Last-Attempt-Date", DateUtils.FormatDate(now));
            if (f.Expired)
            {
                group.Add("Will-Retry-Until", DateUtils.FormatDate(now));
            }

            status.StatusGroups.Add(group);
        }

        report.Add(status);
        // The third part is optional (RFC 3464 §2): left out when the original has no header section to return.
        var returned = anyFailed && original.DsnRet == "FULL" && originalBody.Length <= FullReturnLimit
            ? (MimeEntity?)OriginalMessage(originalBody) ?? OriginalHeaders(originalBody)
            : OriginalHeaders(originalBody);
        if (returned is not null)
        {
            report.Add(returned);
        }

        message.Body = report;

        using var stream = new MemoryStream();
        var format = FormatOptions.Default.Clone();
        format.NewLineFormat = NewLineFormat.Dos;
        message.WriteTo(format, stream);
        return stream.ToArray();
    }

    /// <summary>
    /// The RFC 3463 status of a failed recipient: the enhanced code in the reply when there is one
    /// (RFC 2034), 4.4.7 for an expired message, else derived from the basic code (5.0.0).
    /// </summary>
    public static string StatusCode(DsnRecipient failed, int? code, string reply)
    {
        ArgumentNullException.ThrowIfNull(failed);
        ArgumentNullException.ThrowIfNull(reply);
        if (failed.Expired)
        {
            return "4.4.7";
        }

        var m = EnhancedCode().Match(reply);
        if (failed.Relayed)
        {
            return m.Success && m.Value[0] == '2' ? m.Value : "2.0.0";
        }

        if (m.Success && (m.Value[0] == '5' || m.Value[0] == '4'))
        {
            return m.Value;
        }

        return code is >= 400 and < 500 ? "4.0.0" : "5.0.0";
    }

    /// <summary>RFC 3464 §2.3.5: Remote-MTA is a host name (or address), without our <c>[ip]:port</c> decoration.</summary>
    internal static string RemoteMtaName(string host)
    {
        var bracket = host.IndexOf('[', StringComparison.Ordinal);
        if (bracket > 0)
        {
            return host[..bracket];
        }

        if (bracket == 0 && host.IndexOf(']', StringComparison.Ordinal) is var close and > 0)
        {
            return host[1..close];
        }

        var colon = host.LastIndexOf(':');
        return colon > 0 ? host[..colon] : host;
    }

    private static (int? Code, string Text) SplitReply(string reply)
    {
        if (reply.Length >= 3 && int.TryParse(reply.AsSpan(0, 3), NumberStyles.None, CultureInfo.InvariantCulture, out var code) && code is >= 200 and < 600 &&
            (reply.Length == 3 || reply[3] == ' ' || reply[3] == '-'))
        {
            return (code, reply.Length > 4 ? reply[4..] : string.Empty);
        }

        return (null, reply);
    }

    private static string HumanText(QueuedMessage original, IReadOnlyList<DsnRecipient> failed, string reportingMta)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"This is the mail system at host {reportingMta}.\r\n\r\n");
        var failures = failed.Where(f => !f.Relayed).ToList();
        if (failures.Count > 0)
        {
            sb.Append(failures.All(f => f.Expired)
                ? "Your message could not be delivered within the time the gateway keeps mail, and was returned.\r\n"
                : "Your message could not be delivered to one or more recipients. It is attached below.\r\n");
        }

        if (failures.Count < failed.Count)
        {
            sb.Append("Your message was relayed to the servers named below, as you asked (NOTIFY=SUCCESS). They were not asked\r\n" +
                "to report delivery, so this is the last notice you get about these recipients.\r\n");
        }

        sb.Append("\r\n");
        foreach (var f in failed)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<{f.Address}>: ");
            sb.Append(f.RemoteHost is null ? f.Reply : f.Relayed ? $"relayed to host {f.RemoteHost}: {f.Reply}" : $"host {f.RemoteHost} said: {f.Reply}");
            sb.Append("\r\n");
        }

        sb.Append(CultureInfo.InvariantCulture, $"\r\nQueue id: {original.Id}\r\n");
        return sb.ToString();
    }

    /// <summary>The whole original as <c>message/rfc822</c> (RET=FULL), or null when MimeKit cannot read it.</summary>
    private static MessagePart? OriginalMessage(ReadOnlySpan<byte> body)
    {
        try
        {
            return new MessagePart("rfc822") { Message = MimeMessage.Load(new MemoryStream(body.ToArray())) };
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>
    /// The original's header section as <c>text/rfc822-headers</c>, cut to <see cref="HeaderReturnLimit"/> at a line end; null
    /// when the original has no header/body separator (what would be returned is not known to be headers at all).
    /// </summary>
    private static MimePart? OriginalHeaders(ReadOnlySpan<byte> body)
    {
        // The header section ends at the first empty line (RFC 5322 §2.1).
        var end = ReturnedHeaderLength(body);
        if (end == 0)
        {
            return null;
        }

        var part = new MimePart("text", "rfc822-headers")
        {
            Content = new MimeContent(new MemoryStream(body[..end].ToArray())),
            ContentTransferEncoding = ContentEncoding.EightBit,
        };
        return part;
    }

    /// <summary>
    /// How many bytes of the original a DSN returns as its header section: up to the empty line that ends it, at most
    /// <see cref="HeaderReturnLimit"/> (cut after the last whole line within it); 0 without a header/body separator.
    /// </summary>
    public static int ReturnedHeaderLength(ReadOnlySpan<byte> body)
    {
        var end = HeaderEnd(body);
        if (end < 0)
        {
            return 0;
        }

        if (end <= HeaderReturnLimit)
        {
            return end;
        }

        var lastLine = body[..HeaderReturnLimit].LastIndexOf((byte)'\n');
        return lastLine < 0 ? 0 : lastLine + 1;
    }

    /// <summary>The length of the header section with its last line end, or -1 when there is no empty line.</summary>
    internal static int HeaderEnd(ReadOnlySpan<byte> body)
    {
        var i = body.IndexOf("\r\n\r\n"u8);
        var j = body.IndexOf("\n\n"u8);
        return i >= 0 && (j < 0 || i < j) ? i + 2 : j >= 0 ? j + 1 : -1;
    }

    [GeneratedRegex(@"\b[245]\.\d{1,3}\.\d{1,3}\b", RegexOptions.CultureInvariant)]
    private static partial Regex EnhancedCode();
}
