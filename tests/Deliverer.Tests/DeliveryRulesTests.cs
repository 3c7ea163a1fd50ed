using System.Net.Sockets;
using Gateway.Core.Delivery;
using Gateway.Core.Domains;
using Gateway.Core.Snapshot;
using MailKit.Net.Smtp;
using MimeKit;
using Gateway.Deliverer.Delivery;
using Gateway.Core.Mail;

namespace Deliverer.Tests;

/// <summary>Outcome classification, retry schedule, DSN fields, hop counting, ids and the intake's relay rules (pure).</summary>
[Trait("Kind", "Unit")]
public sealed class DeliveryRulesTests
{
    [Theory]
    [InlineData(250, OutcomeKind.Delivered)]
    [InlineData(354, OutcomeKind.Delivered)]
    [InlineData(421, OutcomeKind.Transient)]
    [InlineData(450, OutcomeKind.Transient)]
    [InlineData(452, OutcomeKind.Transient)]
    [InlineData(500, OutcomeKind.Permanent)]
    [InlineData(550, OutcomeKind.Permanent)]
    [InlineData(554, OutcomeKind.Permanent)]
    [InlineData(0, OutcomeKind.Transient)]
    [InlineData(999, OutcomeKind.Transient)]
    public void FromCode_ReplyClasses(int code, OutcomeKind kind) => Assert.Equal(kind, OutcomeClassifier.FromCode(code));

    public static TheoryData<Exception, OutcomeKind, string> Exceptions => new()
    {
        { new SmtpCommandException(SmtpErrorCode.RecipientNotAccepted, SmtpStatusCode.MailboxUnavailable, "5.1.1 unknown"), OutcomeKind.Permanent, "550 5.1.1 unknown" },
        { new SmtpCommandException(SmtpErrorCode.SenderNotAccepted, SmtpStatusCode.MailboxBusy, "4.2.0 busy"), OutcomeKind.Transient, "450 4.2.0 busy" },
        { new SmtpCommandException(SmtpErrorCode.UnexpectedStatusCode, SmtpStatusCode.ServiceNotAvailable, "bye"), OutcomeKind.Transient, "421 bye" },
        { new SocketException((int)SocketError.ConnectionRefused), OutcomeKind.Transient, "connect failed: connection refused" },
        { new TimeoutException(), OutcomeKind.Transient, "timed out" },
        { new OperationCanceledException(), OutcomeKind.Transient, "timed out" },
        { new IOException("reset", new SocketException((int)SocketError.ConnectionReset)), OutcomeKind.Transient, "connection lost: connection reset" },
        { new SmtpProtocolException("garbage"), OutcomeKind.Transient, "protocol error: garbage" },
        { new InvalidOperationException("bug"), OutcomeKind.Transient, "local error: InvalidOperationException" },
    };

    [Theory]
    [MemberData(nameof(Exceptions))]
    public void Classify_Exceptions_OneOutcome(Exception exception, OutcomeKind kind, string reply)
    {
        var o = OutcomeClassifier.Classify(exception);
        Assert.Equal(kind, o.Kind);
        Assert.Equal(reply, o.Reply);
    }

    private static QueueOptions Options => new() { FirstRetryDelay = TimeSpan.FromMinutes(5), BackoffFactor = 2, MaxRetryDelay = TimeSpan.FromHours(4), MaxLifetime = TimeSpan.FromDays(10) };

    [Theory]
    [InlineData(1, 5)]
    [InlineData(2, 10)]
    [InlineData(3, 20)]
    [InlineData(6, 160)]
    [InlineData(7, 240)]
    [InlineData(50, 240)]
    public void RetryDelay_FirstFiveMinutesThenDoublingCapped(int failures, int minutes) =>
        Assert.Equal(TimeSpan.FromMinutes(minutes), RetryPolicy.Delay(failures, Options));

    [Fact]
    public void NextAttempt_NeverPastExpiry_NullOnceExpired()
    {
        var created = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        Assert.Equal(created.AddMinutes(5), RetryPolicy.NextAttempt(created, 1, created, Options));
        var late = created.AddDays(10).AddHours(-1);
        Assert.Equal(created.AddDays(10), RetryPolicy.NextAttempt(created, 40, late, Options));
        Assert.Null(RetryPolicy.NextAttempt(created, 41, created.AddDays(10), Options));
    }

    [Theory]
    [InlineData("550 5.1.1 <x>: User unknown", false, "5.1.1")]
    [InlineData("554 Transaction failed", false, "5.0.0")]
    [InlineData("connect failed: connection refused", true, "4.4.7")]
    [InlineData("553 5.7.1 rejected; see 2.0.0", false, "5.7.1")]
    public void DsnStatus_EnhancedCodeOrDerived(string reply, bool expired, string status)
    {
        var code = reply.Length > 3 && char.IsAsciiDigit(reply[0]) ? int.Parse(reply[..3], System.Globalization.CultureInfo.InvariantCulture) : (int?)null;
        Assert.Equal(status, DsnBuilder.StatusCode(new DsnRecipient("a@b", reply, null, expired), code, reply));
    }

    [Fact]
    public void DsnBuild_ParsesAsMultipartReportToTheSender()
    {
        var original = new QueuedMessage
        {
            Id = "abc", Domain = "example.com", Direction = Direction.Inbound, Sender = "s@remote.test",
            Recipients = [new QueuedRecipient { Address = "u@example.com" }], CreateTime = DateTimeOffset.UnixEpoch, NextAttempt = DateTimeOffset.UnixEpoch,
        };
        var raw = DsnBuilder.Build(original, "Subject: hi\r\nFrom: s@remote.test\r\n\r\nbody that is not included\r\n"u8,
            [new DsnRecipient("u@example.com", "550 5.1.1 no", "mx.example.com[192.0.2.1]:25", false)], "gw.example", DateTimeOffset.UnixEpoch);
        var m = MimeMessage.Load(new MemoryStream(raw));
        Assert.Equal("s@remote.test", Assert.IsType<MailboxAddress>(Assert.Single(m.To)).Address);
        Assert.Equal("auto-replied", m.Headers["Auto-Submitted"]);
        var report = Assert.IsType<MultipartReport>(m.Body);
        var groups = Assert.IsType<MessageDeliveryStatus>(report[1]).StatusGroups.Where(g => g.Count > 0).ToList();
        Assert.Equal("dns; mx.example.com", groups[1]["Remote-MTA"]);
        var headers = Assert.IsType<TextRfc822Headers>(report[2]);
        Assert.DoesNotContain("not included", headers.Message!.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Received: a\r\nreceived: b\r\nSubject: c\r\n\r\nReceived: in body\r\n", 2)]
    [InlineData("Subject: none\r\n\r\n", 0)]
    [InlineData("X-Received: no\r\nReceived:\r\n\tcontinued\r\n\r\n", 1)]
    [InlineData("Received: bare lf\nReceived: two\n\nReceived: body\n", 2)]
    public void CountReceived_HeaderSectionOnly(string message, int count) =>
        Assert.Equal(count, HopCounter.CountReceived(System.Text.Encoding.UTF8.GetBytes(message)));

    [Fact]
    public void MessageId_TimeOrderedUniqueAndValid()
    {
        var t = DateTimeOffset.UtcNow;
        var ids = Enumerable.Range(0, 1000).Select(i => MessageId.New(t.AddMilliseconds(i))).ToList();
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.Equal(ids, ids.OrderBy(i => i, StringComparer.Ordinal));
        Assert.All(ids, id => Assert.True(MessageId.IsValid(id)));
        Assert.False(MessageId.IsValid("a}:x"));
        Assert.False(MessageId.IsValid(""));
    }

    private static ConfigSnapshot Snapshot(params DomainConfig[] domains)
    {
        var s = new ConfigSnapshot();
        s.Replace(domains, 1, DateTimeOffset.UtcNow);
        return s;
    }

    private static DomainConfig Domain(string name, bool inbound, bool outbound, bool verified) => new()
    {
        Name = name,
        CompanyId = "acme",
        Settings = new DomainSettings(inbound, inbound ? [new InboundServer("*@" + name, "192.0.2.1", 25, 10)] : [],
            new OutboundSettings(outbound, false, false, outbound ? ["192.0.2.9"] : [])),
        Verification = new VerificationState("t", verified, verified ? VerificationMethod.Txt : VerificationMethod.None, null),
        CreateTime = DateTimeOffset.UnixEpoch,
        UpdateTime = DateTimeOffset.UnixEpoch,
    };
}
