using System.Text.Json;
using Gateway.Api.V1;
using Gateway.Core;
using Gateway.Core.MessageLog;
using Gateway.Testing;
using Gateway.Core.Mail;

namespace ControlPlane.Tests;

/// <summary>gatewayctl logs query / follow as a real process against the ControlPlane and Redis.</summary>
[Trait("Kind", "Integration")]
public sealed class LogCliTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    private MessageLogWriter Writer => new(fx.RedisClient, new GatewayOptions(), TimeProvider.System);

    private async Task<(string Domain, string Key)> DomainAsync()
    {
        var (_, key, domains) = await fx.NewTenantAsync("lc");
        var name = ControlPlaneFixture.NewDomainName("lc");
        await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        return (name, key);
    }

    private Task<CliResult> CtlAsync(string key, params string[] args) =>
        GatewayCtl.RunAsync(new Dictionary<string, string> { ["GATEWAY_ENDPOINT"] = fx.Address, ["GATEWAY_KEY"] = key }, args);

    [Fact]
    public async Task LogsQuery_FiltersTableJsonAndLimit()
    {
        var (d, key) = await DomainAsync();
        await Writer.AppendManyAsync([
            new MessageLogEvent { Domain = d, Event = "intake", MessageId = "m1", Direction = Direction.Inbound, Sender = "a@remote.test", Recipient = "u@" + d },
            new MessageLogEvent { Domain = d, Event = "attempt", MessageId = "m1", Direction = Direction.Inbound, Sender = "a@remote.test", Recipient = "u@" + d, Host = "mx.customer.test[192.0.2.1]:25", Reply = "250 2.0.0 Ok" },
            new MessageLogEvent { Domain = d, Event = "delivered", MessageId = "m1", Direction = Direction.Inbound, Sender = "a@remote.test", Recipient = "u@" + d, Host = "mx.customer.test[192.0.2.1]:25", Reply = "250 2.0.0 Ok" },
            new MessageLogEvent { Domain = d, Event = "bounced", MessageId = "m2", Direction = Direction.Outbound, Sender = "b@" + d, Recipient = "x@far.test", Reply = "550 5.1.1 unknown" },
        ]);

        // With --message-id: the message's story, oldest first.
        var story = await CtlAsync(key, "logs", "query", d, "--message-id", "m1");
        Assert.True(story.ExitCode == 0, story.ToString());
        var lines = story.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("TIME", lines[0], StringComparison.Ordinal);
        Assert.Equal(["intake", "attempt", "delivered"], lines.Skip(1).Select(l => l.Split("  ", StringSplitOptions.RemoveEmptyEntries)[1]));
        Assert.Contains("mx.customer.test[192.0.2.1]:25", story.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("m2", story.Out, StringComparison.Ordinal);

        var bounced = await CtlAsync(key, "logs", "query", d, "--event", "bounced,expired", "--direction", "outbound", "--since", "1h", "--json");
        Assert.True(bounced.ExitCode == 0, bounced.ToString());
        using (var doc = JsonDocument.Parse(bounced.Out))
        {
            var e = Assert.Single(doc.RootElement.GetProperty("events").EnumerateArray());
            Assert.Equal("m2", e.GetProperty("message_id").GetString());
            Assert.Equal("550 5.1.1 unknown", e.GetProperty("reply").GetString());
        }

        var newest = await CtlAsync(key, "logs", "query", d, "--limit", "1");
        Assert.Contains("bounced", newest.Out, StringComparison.Ordinal);
        Assert.Contains("more events", newest.Out, StringComparison.Ordinal);
        var none = await CtlAsync(key, "logs", "query", d, "--recipient", "@far.test", "--until", "2000-01-01T00:00:00Z", "--json");
        Assert.True(none.ExitCode == 0, none.ToString());
        using (var doc = JsonDocument.Parse(none.Out))
        {
            Assert.Equal(0, doc.RootElement.GetProperty("events").GetArrayLength());
        }
    }

    [Fact]
    public async Task LogsQuery_BadInput_ReadableErrors()
    {
        var (d, key) = await DomainAsync();
        var bad = await CtlAsync(key, "logs", "query", d, "--event", "teleported");
        Assert.Equal(5, bad.ExitCode);
        Assert.Contains("events: unknown event", bad.Err, StringComparison.Ordinal);
        var since = await CtlAsync(key, "logs", "query", d, "--since", "yesterday-ish");
        Assert.Equal(2, since.ExitCode);
        Assert.Contains("--since must be a time", since.Err, StringComparison.Ordinal);
        var other = await CtlAsync(key, "logs", "query", "not-mine.example.com");
        Assert.Equal(4, other.ExitCode);
    }

    [Fact]
    public async Task LogsFollow_PrintsMatchingEventsAsTheyComeAndStopsAfterCount()
    {
        var (d, key) = await DomainAsync();
        var follow = CtlAsync(key, "logs", "follow", d, "--event", "delivered", "--count", "2", "--json");
        // Keep writing until the follower (started from "now") has seen two delivered events and exited.
        var i = 0;
        while (!follow.IsCompleted)
        {
            await Writer.AppendManyAsync([
                new MessageLogEvent { Domain = d, Event = "attempt", MessageId = "a" + i },
                new MessageLogEvent { Domain = d, Event = "delivered", MessageId = "d" + i, Recipient = "u@" + d },
            ]);
            i++;
            await Task.WhenAny(follow, Task.Delay(200));
        }

        var result = await follow;
        Assert.True(result.ExitCode == 0, result.ToString());
        var events = result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(2, events.Count);
        Assert.All(events, e => Assert.Equal("delivered", e.GetProperty("event").GetString()));
    }
}
