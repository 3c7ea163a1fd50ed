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

/// <summary>
/// The pending-failures record and its due set against a 3-master Redis Cluster (every script in one slot; the record in the
/// body's slot): three copies collect, a claim excludes a second worker until it ends, and what was reported goes.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class FailureDsnRecordsClusterTests(ClusterQueueRedisFixture fx) : IClassFixture<ClusterQueueRedisFixture>
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Ttl = TimeSpan.FromDays(11);

    private static QueuedMessage Copy(string group, int index, string domain) => new()
    {
        Id = index == 0 ? group : $"{group}-{index - 1}", Domain = domain, Direction = Direction.Inbound, Sender = "s@remote.test",
        Recipients = [new() { Address = "u@" + domain }], CreateTime = T0, NextAttempt = T0, DsnGroup = group, DsnGroupSize = 3,
    };

    private static PendingFailure Failure(string address) => new(new QueuedRecipient { Address = address }, new DsnRecipient(address, "550 5.1.1 no", "mx", false));

    [Fact]
    public async Task AddClaimFinish_ThreeCopiesOnACluster_OneClaimAtATime_RecordGoneWhenAllDoneAndReported()
    {
        await fx.FlushAsync();
        var db = fx.Mux.GetDatabase();
        var group = MessageId.New(T0);
        var body = Encoding.ASCII.GetBytes("Subject: s\r\n\r\nbody\r\n");

        var first = await FailureDsnRecords.AddAsync(db, Copy(group, 0, "a.example"), [Failure("u@a.example")], body, done: true, Ttl);
        Assert.Equal(new FailureGroupState(1, 3, 1), first);
        await FailureDsnRecords.ScheduleAsync(db, group, T0.AddMinutes(5));
        Assert.Equal(new FailureGroupState(1, 3, 1), await FailureDsnRecords.AddAsync(db, Copy(group, 0, "a.example"), [Failure("u@a.example")], body, true, Ttl)); // repeated
        Assert.Equal(new FailureGroupState(2, 3, 1), await FailureDsnRecords.AddAsync(db, Copy(group, 1, "b.example"), [], default, true, Ttl));
        Assert.Empty(await FailureDsnRecords.TakeDueAsync(db, T0.AddMinutes(4), T0.AddMinutes(5), 10));
        Assert.Equal([group], await FailureDsnRecords.TakeDueAsync(db, T0.AddMinutes(5), T0.AddMinutes(6), 10));

        var claim = await FailureDsnRecords.ClaimAsync(db, group, "w1", T0.AddMinutes(5), T0.AddMinutes(6));
        Assert.Equal("u@a.example", Assert.Single(claim.Failures).Failure.Report.Address);
        Assert.Equal(group, claim.Original!.Id);
        Assert.Equal("Subject: s\r\n\r\n", Encoding.ASCII.GetString(claim.Content));
        var other = await FailureDsnRecords.ClaimAsync(db, group, "w2", T0.AddMinutes(5), T0.AddMinutes(6));
        Assert.True(other.Busy);

        // The last copy reports while w1 sends: its failure stays for the next round.
        Assert.Equal(new FailureGroupState(3, 3, 2), await FailureDsnRecords.AddAsync(db, Copy(group, 2, "c.example"), [Failure("u@c.example")], body, true, Ttl));
        Assert.Equal(new FailureGroupState(3, 3, 1), await FailureDsnRecords.FinishAsync(db, group, "w1", claim.Failures.Select(f => f.Field)));
        var second = await FailureDsnRecords.ClaimAsync(db, group, "w2", T0.AddMinutes(5), T0.AddMinutes(6));
        Assert.Equal("u@c.example", Assert.Single(second.Failures).Failure.Report.Address);
        Assert.Equal(new FailureGroupState(3, 3, 0), await FailureDsnRecords.FinishAsync(db, group, "w2", second.Failures.Select(f => f.Field)));
        Assert.False(await db.KeyExistsAsync(Gateway.Core.Storage.RedisKeys.FailureDsn(group)));
        await FailureDsnRecords.UnscheduleAsync(db, group);
        Assert.Equal(0, await FailureDsnRecords.WaitingAsync(db, group));

        // A claim that is not finished (the worker died) is taken over once it ends.
        await FailureDsnRecords.AddAsync(db, Copy(group, 0, "a.example") with { Id = group + "-x" }, [Failure("v@a.example")], body, false, Ttl);
        Assert.Single((await FailureDsnRecords.ClaimAsync(db, group, "w3", T0.AddMinutes(10), T0.AddMinutes(11))).Failures);
        Assert.True((await FailureDsnRecords.ClaimAsync(db, group, "w4", T0.AddMinutes(10).AddSeconds(30), T0.AddMinutes(12))).Busy);
        Assert.Single((await FailureDsnRecords.ClaimAsync(db, group, "w4", T0.AddMinutes(11).AddSeconds(1), T0.AddMinutes(12))).Failures);
    }
}
