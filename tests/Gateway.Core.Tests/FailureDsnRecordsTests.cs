using System.Text;
using Gateway.Core.Delivery;
using Gateway.Core.Mail;
using MimeKit;

namespace Gateway.Core.Tests;

/// <summary>The pure parts of the combined failure DSN (requirements §11): what a record keeps of the content, and the combined report.</summary>
[Trait("Kind", "Unit")]
public sealed class FailureDsnRecordsTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    private static QueuedMessage Copy(string? ret, string id = "m1-0", string domain = "a.example") => new()
    {
        Id = id, Domain = domain, Direction = Direction.Inbound, Sender = "s@remote.test", Recipients = [new() { Address = "u@" + domain }],
        CreateTime = T0, NextAttempt = T0, DsnRet = ret, DsnGroup = "m1", DsnGroupSize = 3,
    };

    private static readonly byte[] Small = Encoding.ASCII.GetBytes("Subject: hi\r\nFrom: s@remote.test\r\n\r\nthe body\r\n");

    [Fact]
    public void Returned_RetFullSmallMessage_WholeMessage()
    {
        var (returned, full) = FailureDsnRecords.Returned(Copy("FULL"), Small);
        Assert.True(full);
        Assert.Equal(Small, returned);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("HDRS")]
    public void Returned_Headers_CutWithTheEmptyLine_BuilderReturnsThemWithoutTheBody(string? ret)
    {
        var (returned, full) = FailureDsnRecords.Returned(Copy(ret), Small);
        Assert.False(full);
        Assert.Equal("Subject: hi\r\nFrom: s@remote.test\r\n\r\n", Encoding.ASCII.GetString(returned));
        var dsn = Encoding.ASCII.GetString(DsnBuilder.Build(Copy(null), returned, [new DsnRecipient("u@a.example", "550 5.1.1 no", null, false)], "gw.test", T0));
        Assert.Contains("Subject: hi", dsn, StringComparison.Ordinal);
        Assert.DoesNotContain("the body", dsn, StringComparison.Ordinal);
    }

    [Fact]
    public void Returned_RetFullOver50kB_HeadersOnlyAtMost16kB()
    {
        var big = Encoding.ASCII.GetBytes("Subject: big\r\n" + string.Concat(Enumerable.Repeat("X-Filler: " + new string('a', 80) + "\r\n", 1000)) + "\r\n" + new string('b', 60_000));
        var (returned, full) = FailureDsnRecords.Returned(Copy("FULL"), big);
        Assert.False(full);
        Assert.InRange(returned.Length, 8 * 1024, DsnBuilder.HeaderReturnLimit + 2);
        Assert.EndsWith("\r\n\r\n", Encoding.ASCII.GetString(returned), StringComparison.Ordinal);
    }

    [Fact]
    public void Returned_NoHeaderSeparator_Nothing()
    {
        var (returned, _) = FailureDsnRecords.Returned(Copy(null), Encoding.ASCII.GetBytes("X-A: 1\r\nX-B: 2\r\n"));
        Assert.Empty(returned);
    }

    [Fact]
    public void Combine_FailuresOfThreeCopies_OneReportWithEveryRecipientAndItsOrcpt()
    {
        var failures = new List<(string, PendingFailure)>
        {
            ("f:m1-2|w@c.example", new PendingFailure(new QueuedRecipient { Address = "w@c.example" }, new DsnRecipient("w@c.example", "550 5.1.1 no", "mx.c", false))),
            ("f:m1|u@a.example", new PendingFailure(new QueuedRecipient { Address = "u@a.example", OriginalRecipient = "rfc822;U@a.example" },
                new DsnRecipient("u@a.example", "550 5.1.1 no", "mx.a", false))),
            ("f:m1-1|v@b.example", new PendingFailure(new QueuedRecipient { Address = "v@b.example" }, new DsnRecipient("v@b.example", "451 4.4.1 late", null, true))),
        };
        var (original, reports) = FailureDsnRecords.Combine(Copy(null, "m1") with { Recipients = [] }, failures);
        Assert.Equal(["u@a.example", "v@b.example", "w@c.example"], reports.Select(r => r.Address).Order(StringComparer.Ordinal));
        Assert.Equal(3, original.Recipients.Count);
        var dsn = MimeMessage.Load(new MemoryStream(DsnBuilder.Build(original, Small, reports, "gw.test", T0)));
        var status = Assert.IsType<MessageDeliveryStatus>(Assert.IsType<MultipartReport>(dsn.Body)[1]);
        var groups = status.StatusGroups.Where(g => g.Contains("Final-Recipient")).ToDictionary(g => g["Final-Recipient"] ?? string.Empty, StringComparer.Ordinal);
        Assert.Equal(3, groups.Count); // one per-recipient block for each failed recipient of the three copies
        Assert.Equal("rfc822; U@a.example", groups["rfc822; u@a.example"]["Original-Recipient"]);
        Assert.Equal("4.4.7", groups["rfc822; v@b.example"]["Status"]);
    }
}
