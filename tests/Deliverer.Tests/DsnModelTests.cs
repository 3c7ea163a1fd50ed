using Gateway.Core.Delivery;
using Gateway.Core.Quarantine;
using Gateway.Core.Mail;

namespace Deliverer.Tests;

/// <summary>RFC 3461 parameters kept with a message (queue and quarantine JSON) and which notices they ask for.</summary>
[Trait("Kind", "Unit")]
public sealed class DsnModelTests
{
    private static readonly DateTimeOffset T = DateTimeOffset.UnixEpoch;

    private static QueuedMessage Message(params QueuedRecipient[] recipients) => new()
    {
        Id = "m1", Domain = "example.com", Direction = Direction.Inbound, Sender = "s@remote.test", Recipients = recipients, CreateTime = T, NextAttempt = T,
        DsnRet = "FULL", DsnEnvelopeId = "QQ+314",
    };

    [Fact]
    public void QueuedMessage_DsnFields_SurviveTheStoredJson()
    {
        var m = Message(new QueuedRecipient { Address = "a@example.com", Notify = "SUCCESS,FAILURE", OriginalRecipient = "rfc822;A@orig.example" },
            new QueuedRecipient { Address = "b@example.com" });

        var back = QueueJson.Deserialize(QueueJson.Serialize(m));

        Assert.Equal("FULL", back.DsnRet);
        Assert.Equal("QQ+314", back.DsnEnvelopeId);
        Assert.Equal("SUCCESS,FAILURE", back.Recipients[0].Notify);
        Assert.Equal("rfc822;A@orig.example", back.Recipients[0].OriginalRecipient);
        Assert.Null(back.Recipients[1].Notify);
    }

    [Fact]
    public void QuarantinedMessage_DsnFields_SurviveTheStoredJson()
    {
        var q = new QuarantinedMessage
        {
            Id = "q1", Domain = "example.com", Direction = Direction.Inbound, Sender = "s@remote.test", Recipients = ["a@example.com"], QuarantineTime = T, RuleId = "r1",
            DsnRet = "HDRS", DsnEnvelopeId = "env-1", RecipientDsn = new Dictionary<string, RecipientDsn> { ["a@example.com"] = new("NEVER", null) },
        };

        var back = QuarantineJson.Deserialize(QuarantineJson.Serialize(q));

        Assert.Equal("HDRS", back.DsnRet);
        Assert.Equal("env-1", back.DsnEnvelopeId);
        Assert.Equal(new RecipientDsn("NEVER", null), back.RecipientDsn!["a@example.com"]);
    }

    [Fact]
    public void Due_FollowsNotify_FailureByDefault_RelayOnlyOnSuccess_NeverSilences()
    {
        var m = Message(
            new QueuedRecipient { Address = "default@example.com" },
            new QueuedRecipient { Address = "never@example.com", Notify = "NEVER" },
            new QueuedRecipient { Address = "success@example.com", Notify = "SUCCESS" },
            new QueuedRecipient { Address = "both@example.com", Notify = "SUCCESS,FAILURE" });
        DsnRecipient Failed(string a) => new(a, "550 5.1.1 no", null, false);
        DsnRecipient Relayed(string a) => new(a, "250 2.0.0 Ok", "mx", false, Relayed: true);

        var due = Bounces.Due(m, [Failed("default@example.com"), Failed("never@example.com"), Failed("success@example.com"), Failed("both@example.com"),
            Relayed("default@example.com"), Relayed("success@example.com"), Relayed("both@example.com")]);

        Assert.Equal(["default@example.com/False", "both@example.com/False", "success@example.com/True", "both@example.com/True"],
            due.Select(d => $"{d.Address}/{d.Relayed}"));
    }
}
