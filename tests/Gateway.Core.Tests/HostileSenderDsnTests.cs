using System.Text;
using Gateway.Core.Delivery;
using Gateway.Core.Mail;
using MimeKit;

namespace Gateway.Core.Tests;

/// <summary>Bounded DSNs and the NOTIFY limits for inbound mail (requirements §11; docs/reliability.md "Hostile sender").</summary>
[Trait("Kind", "Unit")]
public sealed class HostileSenderDsnTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    private static QueuedMessage Original(string? ret, Direction direction = Direction.Inbound, params QueuedRecipient[] recipients) => new()
    {
        Id = "m1", Domain = "example.com", Direction = direction, Sender = "a@remote.test",
        Recipients = recipients.Length > 0 ? recipients : [new() { Address = "d@example.com" }],
        CreateTime = T0, NextAttempt = T0, DsnRet = ret,
    };

    private static byte[] Dsn(string? ret, byte[] body) =>
        DsnBuilder.Build(Original(ret), body, [new DsnRecipient("d@example.com", "550 5.1.1 no such user", "mx.example.com[192.0.2.1]:25", false)], "gateway.test", T0);

    /// <summary>A message of <paramref name="size"/> bytes of header-like lines, with no empty line anywhere.</summary>
    private static byte[] WithoutSeparator(int size)
    {
        var sb = new StringBuilder(size + 100);
        for (var i = 0; sb.Length < size; i++)
        {
            sb.Append("X-Filler-").Append(i).Append(": ").Append('a', 80).Append("\r\n");
        }

        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("HDRS")]
    [InlineData("FULL")]
    public void Build_FiveMegabytesWithoutEmptyLine_DsnUnder20kBWithoutContent(string? ret)
    {
        var raw = Dsn(ret, WithoutSeparator(5 * 1024 * 1024));
        Assert.True(raw.Length < 20_000, $"DSN of {raw.Length} bytes");
        var report = Assert.IsType<MultipartReport>(MimeMessage.Load(new MemoryStream(raw)).Body);
        Assert.Equal(2, report.Count); // human text and delivery-status; no third part
        Assert.DoesNotContain("X-Filler-", Encoding.ASCII.GetString(raw), StringComparison.Ordinal);
    }

    [Fact]
    public void Build_HugeHeaderSection_CutTo16kBAtALineEnd()
    {
        var headers = WithoutSeparator(200_000);
        var body = headers.Concat("\r\nthe body\r\n"u8.ToArray()).ToArray();
        var raw = Dsn("HDRS", body);
        Assert.True(raw.Length < 20_000, $"DSN of {raw.Length} bytes");
        var report = Assert.IsType<MultipartReport>(MimeMessage.Load(new MemoryStream(raw)).Body);
        var part = Assert.IsType<TextRfc822Headers>(report[2]);
        using var returned = new MemoryStream();
        part.Message!.Headers.WriteTo(returned);
        // Cut after the last whole line within the cap (MimeKit's reading of the part may leave out a last partial line).
        Assert.InRange(returned.Length, DsnBuilder.HeaderReturnLimit - 500, DsnBuilder.HeaderReturnLimit);
        Assert.InRange(DsnBuilder.ReturnedHeaderLength(body), DsnBuilder.HeaderReturnLimit - 100, DsnBuilder.HeaderReturnLimit);
        Assert.DoesNotContain("the body", Encoding.ASCII.GetString(raw), StringComparison.Ordinal);
    }

    [Theory]
    // body → bytes returned as the header section
    [InlineData("Subject: a\r\n\r\nbody\r\n", 12)]
    [InlineData("Subject: a\n\nbody\n", 11)]
    [InlineData("Subject: a\r\nFrom: b\r\n", 0)] // no separator: nothing returned
    [InlineData("", 0)]
    [InlineData("\r\nbody", 0)] // an empty header section: nothing to return
    public void ReturnedHeaderLength_Table(string body, int expected) =>
        Assert.Equal(expected, DsnBuilder.ReturnedHeaderLength(Encoding.ASCII.GetBytes(body)));

    [Fact]
    public void Build_RetFull_SmallMessageWhole_LargeOneHeadersOnly()
    {
        var small = "Subject: small\r\n\r\nthe small body\r\n"u8.ToArray();
        Assert.IsType<MessagePart>(Assert.IsType<MultipartReport>(MimeMessage.Load(new MemoryStream(Dsn("FULL", small))).Body)[2]);
        var large = "Subject: large\r\n\r\n"u8.ToArray().Concat(Encoding.ASCII.GetBytes(new string('b', DsnBuilder.FullReturnLimit))).ToArray();
        var raw = Dsn("FULL", large);
        Assert.True(raw.Length < 20_000);
        Assert.IsType<TextRfc822Headers>(Assert.IsType<MultipartReport>(MimeMessage.Load(new MemoryStream(raw)).Body)[2]);
    }

    [Theory]
    // NOTIFY, first inbound copy → kept
    [InlineData("SUCCESS", true, "SUCCESS")]
    [InlineData("SUCCESS", false, "NEVER")]
    [InlineData("SUCCESS,DELAY", false, "NEVER")]
    [InlineData("SUCCESS,FAILURE,DELAY", false, "FAILURE")]
    [InlineData("FAILURE", false, "FAILURE")]
    [InlineData("NEVER", false, "NEVER")]
    [InlineData(null, false, null)]
    public void ForInboundCopy_OnlyTheFirstCopyKeepsSuccessAndDelay(string? notify, bool first, string? expected)
    {
        Assert.Equal(expected, DsnNotify.ForInboundCopy(notify, first));
        // Failure notices never change.
        Assert.Equal(DsnNotify.WantsFailure(notify), DsnNotify.WantsFailure(DsnNotify.ForInboundCopy(notify, first)));
    }

    private static readonly QueueOptions Queue = new()
    {
        FirstRetryDelay = TimeSpan.FromMinutes(5), BackoffFactor = 2, MaxRetryDelay = TimeSpan.FromHours(4), MaxLifetime = TimeSpan.FromDays(10),
    };

    private static Dictionary<string, RecipientResult> Results(params (string Address, OutcomeKind Kind)[] outcomes) =>
        outcomes.ToDictionary(o => o.Address, o => new RecipientResult(new DeliveryOutcome(o.Kind, o.Kind == OutcomeKind.Delivered ? "250 ok" : "451 later"), "h:25"),
            StringComparer.OrdinalIgnoreCase);

    [Fact]
    public void Apply_InboundSuccessNotice_OnceWhenFinished_CoveringEveryAttempt()
    {
        var m = Original(null, Direction.Inbound, new QueuedRecipient { Address = "a@example.com", Notify = "SUCCESS" }, new QueuedRecipient { Address = "b@example.com", Notify = "SUCCESS" });
        // First attempt: a delivered, b deferred → no notice yet (an inbound message gets one notice, when it is finished).
        var first = AttemptResult.Apply(m, Results(("a@example.com", OutcomeKind.Delivered), ("b@example.com", OutcomeKind.Transient)), T0, Queue);
        Assert.False(first.Finished);
        Assert.Empty(first.Relayed);
        // Second attempt: b delivered → one notice naming both.
        var second = AttemptResult.Apply(first.Message, Results(("b@example.com", OutcomeKind.Delivered)), T0.AddMinutes(6), Queue);
        Assert.True(second.Finished);
        Assert.Equal(["a@example.com", "b@example.com"], second.Relayed.Select(r => r.Address));
        Assert.All(second.Relayed, r => Assert.Equal("250 ok", r.Reply));
    }

    [Fact]
    public void Apply_OutboundSuccessNotice_PerAttemptAsBefore()
    {
        var m = Original(null, Direction.Outbound, new QueuedRecipient { Address = "a@x.example", Notify = "SUCCESS" }, new QueuedRecipient { Address = "b@y.example", Notify = "SUCCESS" });
        var first = AttemptResult.Apply(m, Results(("a@x.example", OutcomeKind.Delivered), ("b@y.example", OutcomeKind.Transient)), T0, Queue);
        Assert.Equal(["a@x.example"], first.Relayed.Select(r => r.Address));
    }
}
