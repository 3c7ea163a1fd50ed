using Gateway.Core.Delivery;
using Gateway.Core.Mail;

namespace Gateway.Core.Tests;

/// <summary>The state update after an attempt as tables (requirements §6.6, §6.7): outcomes to states, DSN lists, next attempt, expiry.</summary>
[Trait("Kind", "Unit")]
public sealed class AttemptResultTests
{
    private static readonly DateTimeOffset T0 = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);

    private static readonly QueueOptions Options = new()
    {
        FirstRetryDelay = TimeSpan.FromMinutes(5), BackoffFactor = 2, MaxRetryDelay = TimeSpan.FromHours(4), MaxLifetime = TimeSpan.FromDays(10),
    };

    private static QueuedMessage Message(int attempts = 0, params QueuedRecipient[] recipients) => new()
    {
        Id = "m1",
        Domain = "example.com",
        Direction = Direction.Inbound,
        Sender = "a@remote.test",
        Recipients = recipients.Length > 0 ? recipients :
            [new() { Address = "d@example.com" }, new() { Address = "t@example.com" }, new() { Address = "p@example.com" }],
        CreateTime = T0,
        NextAttempt = T0,
        Attempts = attempts,
    };

    private static Dictionary<string, RecipientResult> Results(params (string Address, OutcomeKind Kind)[] outcomes) =>
        outcomes.ToDictionary(o => o.Address, o => new RecipientResult(new DeliveryOutcome(o.Kind, o.Kind switch
        {
            OutcomeKind.Delivered => "250 ok",
            OutcomeKind.Transient => "451 later",
            _ => "550 no",
        }), "h:25"), StringComparer.OrdinalIgnoreCase);

    [Fact]
    public void Apply_MixedOutcomes_StatesStepsDsnAndNextAttempt()
    {
        var now = T0 + TimeSpan.FromMinutes(1);
        var u = AttemptResult.Apply(Message(), Results(("d@example.com", OutcomeKind.Delivered), ("t@example.com", OutcomeKind.Transient), ("p@example.com", OutcomeKind.Permanent)), now, Options);
        Assert.Equal([RecipientState.Delivered, RecipientState.Pending, RecipientState.Failed], u.Message.Recipients.Select(r => r.State));
        Assert.Equal([RecipientEvent.Delivered, RecipientEvent.Deferred, RecipientEvent.Bounced], u.Steps.Select(s => s.Event));
        Assert.False(u.Finished);
        Assert.Equal(now + TimeSpan.FromMinutes(5), u.NextAttempt);
        Assert.Equal(u.NextAttempt, u.Message.NextAttempt);
        Assert.Equal(1, u.Message.Attempts);
        Assert.Equal(now, u.Message.FirstFailure);
        Assert.Equal("h:25: 550 no", u.Message.LastError);
        Assert.Equal(["p@example.com"], u.Failed.Select(f => f.Address));
        Assert.Empty(u.Relayed);
    }

    [Theory]
    // attempts before, minutes after creation → next attempt in minutes after now (null: expired)
    [InlineData(0, 1, 5.0)]
    [InlineData(1, 10, 10.0)]
    [InlineData(2, 30, 20.0)]
    [InlineData(9, 100, 240.0)]
    [InlineData(9, 14_390, 10.0)] // capped by the expiry: the last attempt falls on the lifetime
    [InlineData(3, 14_400, null)]
    [InlineData(3, 20_000, null)]
    public void Apply_Transient_BackoffThenExpiry(int attempts, int minutes, double? nextMinutes)
    {
        var now = T0 + TimeSpan.FromMinutes(minutes);
        var one = new QueuedRecipient { Address = "t@example.com" };
        var u = AttemptResult.Apply(Message(attempts, one), Results(("t@example.com", OutcomeKind.Transient)), now, Options);
        if (nextMinutes is { } n)
        {
            Assert.Equal(now + TimeSpan.FromMinutes(n), u.NextAttempt);
            Assert.Equal(RecipientEvent.Deferred, Assert.Single(u.Steps).Event);
            Assert.Empty(u.Failed);
        }
        else
        {
            Assert.True(u.Finished);
            Assert.Null(u.NextAttempt);
            Assert.Equal(RecipientState.Failed, Assert.Single(u.Message.Recipients).State);
            Assert.Equal(RecipientEvent.Expired, Assert.Single(u.Steps).Event);
            Assert.True(Assert.Single(u.Failed).Expired);
        }
    }

    [Fact]
    public void Apply_AllDelivered_Finished_NotifySuccessRelayed()
    {
        var m = Message(0, new QueuedRecipient { Address = "d@example.com", Notify = "SUCCESS,FAILURE" }, new QueuedRecipient { Address = "e@example.com" });
        var u = AttemptResult.Apply(m, Results(("d@example.com", OutcomeKind.Delivered), ("e@example.com", OutcomeKind.Delivered)), T0, Options);
        Assert.True(u.Finished);
        Assert.Null(u.NextAttempt);
        Assert.Null(u.Message.FirstFailure);
        var relayed = Assert.Single(u.Relayed);
        Assert.Equal("d@example.com", relayed.Address);
        Assert.True(relayed.Relayed);
        Assert.True(u.ReportsAny);
    }

    [Fact]
    public void Apply_RecipientWithoutResultOrNotPending_Unchanged()
    {
        var m = Message(2, new QueuedRecipient { Address = "done@example.com", State = RecipientState.Delivered, LastReply = "250 earlier" },
            new QueuedRecipient { Address = "d@example.com" }, new QueuedRecipient { Address = "later@example.com" });
        var u = AttemptResult.Apply(m, Results(("d@example.com", OutcomeKind.Delivered), ("done@example.com", OutcomeKind.Permanent)), T0, Options);
        Assert.Equal("250 earlier", u.Message.Recipients[0].LastReply);
        Assert.Equal(RecipientState.Delivered, u.Message.Recipients[0].State);
        Assert.Equal(RecipientState.Pending, u.Message.Recipients[2].State);
        Assert.Equal(["d@example.com"], u.Steps.Select(s => s.Recipient));
        Assert.Equal(3, u.Message.Attempts);
    }

    [Fact]
    public void DeliveredOnly_MarksOnlyDelivered_NoAttemptCounted()
    {
        var results = Results(("d@example.com", OutcomeKind.Delivered), ("t@example.com", OutcomeKind.Transient), ("p@example.com", OutcomeKind.Permanent));
        var first = AttemptResult.DeliveredOnly(Message(), results)!;
        Assert.Equal([RecipientState.Delivered, RecipientState.Pending, RecipientState.Pending], first.Recipients.Select(r => r.State));
        Assert.Equal(0, first.Attempts);
        Assert.Null(AttemptResult.DeliveredOnly(Message(), Results(("t@example.com", OutcomeKind.Transient))));
    }
}
