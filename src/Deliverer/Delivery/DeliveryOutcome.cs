using System.Net.Sockets;
using MailKit;
using MailKit.Net.Smtp;
using Gateway.Core.Delivery;
using MailKit.Security;

namespace Gateway.Deliverer.Delivery;

/// <summary>
/// The single classification of delivery results: SMTP reply codes (RFC 5321 §4.2.1: 2yz/3yz positive,
/// 4yz transient negative, 5yz permanent negative) and every exception a delivery attempt can throw.
/// </summary>
public static class OutcomeClassifier
{
    /// <summary>By reply code: 2xx/3xx delivered, 5xx permanent, everything else (4xx, garbage) transient.</summary>
    public static OutcomeKind FromCode(int code) => code switch
    {
        >= 200 and < 400 => OutcomeKind.Delivered,
        >= 500 and < 600 => OutcomeKind.Permanent,
        _ => OutcomeKind.Transient,
    };

    /// <summary>
    /// A failed transaction or connection: MailKit's <see cref="SmtpCommandException"/> by its status code
    /// (5xx permanent, 4xx transient); refused or reset sockets, timeouts, TLS and protocol errors transient.
    /// Unknown exceptions are transient too: a bug of ours must not bounce a customer's mail.
    /// </summary>
    public static DeliveryOutcome Classify(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception switch
        {
            SmtpCommandException c => new DeliveryOutcome(FromCode((int)c.StatusCode), Reply((int)c.StatusCode, c.Message)),
            SocketException s => DeliveryOutcome.Transient($"connect failed: {Describe(s.SocketErrorCode)}"),
            OperationCanceledException or TimeoutException => DeliveryOutcome.Transient("timed out"),
            SslHandshakeException => DeliveryOutcome.Transient("STARTTLS handshake failed"),
            SmtpProtocolException p => DeliveryOutcome.Transient("protocol error: " + p.Message),
            ServiceNotConnectedException => DeliveryOutcome.Transient("connection lost"),
            IOException io when io.InnerException is SocketException s2 => DeliveryOutcome.Transient($"connection lost: {Describe(s2.SocketErrorCode)}"),
            IOException => DeliveryOutcome.Transient("connection lost"),
            _ => DeliveryOutcome.Transient("local error: " + exception.GetType().Name),
        };
    }

    /// <summary>An SMTP reply as one line for logs and DSNs: code and text.</summary>
    public static string Reply(int code, string? text)
    {
        var t = (text ?? string.Empty).ReplaceLineEndings(" ").Trim();
        return t.Length == 0 ? code.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{code} {t}";
    }

    private static string Describe(SocketError error) => error switch
    {
        SocketError.ConnectionRefused => "connection refused",
        SocketError.TimedOut => "timed out",
        SocketError.HostUnreachable or SocketError.NetworkUnreachable => "unreachable",
        SocketError.ConnectionReset => "connection reset",
        _ => error.ToString(),
    };
}
