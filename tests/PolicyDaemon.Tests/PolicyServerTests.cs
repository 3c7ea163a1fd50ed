using Gateway.Core.Mail;
using System.Text;
using Gateway.Core.Domains;
using Gateway.Core.MessageLog;
using Gateway.Core.Storage;
using Gateway.PolicyDaemon.Postfix;
using Gateway.Testing;
using StackExchange.Redis;

namespace PolicyDaemon.Tests;

/// <summary>The daemon on real sockets against a real Redis: protocol behaviour, robustness, logs.</summary>
[Trait("Kind", "Integration")]
public sealed class PolicyServerTests(DaemonFixture fixture) : IClassFixture<DaemonFixture>
{
    private PolicyDaemonServer Daemon => fixture.Daemon;

    private async Task<string> ManagedInboundAsync()
    {
        var name = DaemonFixture.NewName("in");
        await fixture.Domains.CreateAsync(DaemonFixture.Company, name, DaemonFixture.Inbound(name));
        await Eventually.WaitAsync(() => Daemon.Snapshot.Find(name) is not null, TimeSpan.FromSeconds(1), "domain in snapshot");
        return name;
    }

    [Fact]
    public async Task Policy_ManyRequestsOnOneConnection_EachAnswered()
    {
        var managed = await ManagedInboundAsync();
        await using var wire = await PolicyWire.ConnectAsync(Daemon.Policy);

        for (var i = 0; i < 200; i++)
        {
            var recipient = i % 2 == 0 ? $"u{i}@{managed}" : $"u{i}@unmanaged{i}.example";
            var action = await wire.AskAsync(PolicyWire.Request(recipient));
            Assert.Equal(i % 2 == 0 ? "OK" : PostfixPolicy.RejectNoDomain, action);
        }

        Assert.Equal(PostfixPolicy.Dunno, await wire.AskAsync(PolicyWire.Request($"a@{managed}", state: "MAIL")));
    }

    [Fact]
    public async Task Policy_RequestsSplitAcrossWritesAndPipelined_AllAnswered()
    {
        var managed = await ManagedInboundAsync();
        await using var wire = await PolicyWire.ConnectAsync(Daemon.Policy);
        var bytes = Encoding.UTF8.GetBytes(PolicyWire.Request($"a@{managed}") + PolicyWire.Request("b@other.example"));

        foreach (var chunk in bytes.Chunk(7))
        {
            await wire.SendAsync(chunk);
        }

        Assert.Equal("OK", await wire.ReadPolicyReplyAsync());
        Assert.Equal(PostfixPolicy.RejectNoDomain, await wire.ReadPolicyReplyAsync());
    }

    [Fact]
    public async Task Policy_HundredsOfConcurrentConnections_AllAnswered()
    {
        var managed = await ManagedInboundAsync();
        var connections = await Task.WhenAll(Enumerable.Range(0, 300).Select(_ => PolicyWire.ConnectAsync(Daemon.Policy)));
        try
        {
            var answers = await Task.WhenAll(connections.Select(async (c, i) =>
            {
                var results = new List<string?>();
                for (var k = 0; k < 5; k++)
                {
                    results.Add(await c.AskAsync(PolicyWire.Request(k % 2 == 0 ? $"c{i}@{managed}" : $"c{i}@elsewhere.example")));
                }

                return results;
            }));

            Assert.All(answers, a => Assert.Equal(["OK", PostfixPolicy.RejectNoDomain, "OK", PostfixPolicy.RejectNoDomain, "OK"], a));
        }
        finally
        {
            foreach (var c in connections)
            {
                await c.DisposeAsync();
            }
        }
    }

    public static TheoryData<string> MalformedRequests => new()
    {
        "this is not a policy request\n\n",
        "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@x.example\nrecipient=b@y.example\n\n",
        "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a\0@x.example\n\n",
        "protocol_state=RCPT\nrecipient=a@x.example\n\n",
        "request=smtpd_access_policy\nrecipient=" + new string('a', 5000) + "\n\n",
        "request=smtpd_access_policy\n" + string.Concat(Enumerable.Range(0, 200).Select(i => $"x{i}=1\n")) + "\n",
    };

    [Theory]
    [MemberData(nameof(MalformedRequests))]
    public async Task Policy_MalformedRequest_ClosedWithoutReply_DaemonKeepsServing(string request)
    {
        var managed = await ManagedInboundAsync();
        await using (var bad = await PolicyWire.ConnectAsync(Daemon.Policy))
        {
            // A valid request first: it is answered; the malformed one after it is not.
            Assert.Equal("OK", await bad.AskAsync(PolicyWire.Request($"a@{managed}")));
            await bad.SendAsync(request.Replace("a@x.example", $"a@{managed}", StringComparison.Ordinal));
            Assert.True(await bad.ClosedWithoutReplyAsync());
        }

        await using var good = await PolicyWire.ConnectAsync(Daemon.Policy);
        Assert.Equal("OK", await good.AskAsync(PolicyWire.Request($"a@{managed}")));
    }

    [Fact]
    public async Task Policy_OversizeLineWithoutNewline_ClosedBeforeItEnds()
    {
        await using var wire = await PolicyWire.ConnectAsync(Daemon.Policy);
        await wire.SendAsync("request=smtpd_access_policy\nrecipient=" + new string('a', 10_000));
        Assert.True(await wire.ClosedWithoutReplyAsync());
    }

    [Fact]
    public async Task Policy_ClientClosesMidRequest_NoReplyNoAccept()
    {
        var managed = await ManagedInboundAsync();
        await using var wire = await PolicyWire.ConnectAsync(Daemon.Policy);
        var request = PolicyWire.Request($"a@{managed}");
        await wire.SendAsync(request[..^1]);   // no blank line, then the client stops sending
        wire.ShutdownSend();
        Assert.True(await wire.ClosedWithoutReplyAsync());
        await using var probe = await PolicyWire.ConnectAsync(Daemon.Policy);
        Assert.Equal("OK", await probe.AskAsync(request));
    }

    [Fact]
    public async Task Policy_UnknownPolicyContext_DeferIfPermit()
    {
        var managed = await ManagedInboundAsync();
        await using var wire = await PolicyWire.ConnectAsync(Daemon.Policy);
        Assert.Equal("DEFER_IF_PERMIT " + PostfixPolicy.UnknownContextText, await wire.AskAsync(PolicyWire.Request($"a@{managed}", context: "submission")));
        Assert.Equal("OK", await wire.AskAsync(PolicyWire.Request($"a@{managed}", context: "inbound")));
        Assert.Equal(PostfixPolicy.RejectNoDomain, await wire.AskAsync(PolicyWire.Request($"a@{managed}", context: "outbound")));
    }

    [Fact]
    public async Task Socketmap_DomainsAndTransport_AnsweredFromSnapshot()
    {
        var managed = await ManagedInboundAsync();
        await using var wire = await PolicyWire.ConnectAsync(Daemon.Socketmap);

        Assert.Equal("OK " + managed, await wire.LookupAsync("domains", managed.ToUpperInvariant()));
        Assert.Equal("NOTFOUND ", await wire.LookupAsync("domains", "sub." + managed));
        Assert.Equal("NOTFOUND ", await wire.LookupAsync("domains", "." + managed));
        Assert.Equal("OK smtp:[127.0.0.1]:10025", await wire.LookupAsync("transport", $"John@{managed.ToUpperInvariant()}"));
        Assert.Equal("NOTFOUND ", await wire.LookupAsync("transport", "*"));
        Assert.StartsWith("PERM ", await wire.LookupAsync("aliases", "x"), StringComparison.Ordinal);
        Assert.StartsWith("PERM ", await wire.LookupAsync("nokey", string.Empty), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("5000000:")]
    [InlineData("12:domains x.example;")]
    [InlineData("x:")]
    public async Task Socketmap_BadFraming_ClosedWithoutReply_DaemonKeepsServing(string wire)
    {
        await using (var bad = await PolicyWire.ConnectAsync(Daemon.Socketmap))
        {
            await bad.SendAsync(wire);
            Assert.True(await bad.ClosedWithoutReplyAsync());
        }

        await using var good = await PolicyWire.ConnectAsync(Daemon.Socketmap);
        Assert.Equal("NOTFOUND ", await good.LookupAsync("domains", "never.example"));
    }

    [Fact]
    public async Task Reject_ConcerningManagedDomain_WrittenToItsLog_UnmanagedWritesNoKey()
    {
        var name = DaemonFixture.NewName("off");
        await fixture.Domains.CreateAsync(DaemonFixture.Company, name, DomainSettings.Empty);
        await Eventually.WaitAsync(() => Daemon.Snapshot.Find(name) is not null, TimeSpan.FromSeconds(1), "domain in snapshot");
        var stranger = DaemonFixture.NewName("stranger");
        await using var wire = await PolicyWire.ConnectAsync(Daemon.Policy);

        Assert.Equal(PostfixPolicy.RejectNoDomain, await wire.AskAsync(PolicyWire.Request($"bob@{name}", client: "203.0.113.9")));
        Assert.Equal(PostfixPolicy.RejectNoDomain, await wire.AskAsync(PolicyWire.Request($"bob@{stranger}")));

        var db = fixture.RedisClient.GetDatabase();
        StreamEntry[] entries = [];
        await Eventually.WaitAsync(async () => (entries = await db.StreamRangeAsync(RedisKeys.DomainLog(name))).Length == 1, TimeSpan.FromSeconds(5), "reject in the domain log");
        var e = entries[0];
        Assert.Equal(MessageLogEvents.PolicyReject, e["event"].ToString());
        Assert.Equal(DirectionText.Inbound, e["direction"].ToString());
        Assert.Equal($"bob@{name}", e["recipient"].ToString());
        Assert.Equal("203.0.113.9", e["client_address"].ToString());
        Assert.Equal(PostfixPolicy.RejectNoDomain, e["reply"].ToString());
        Assert.Equal("inbound relay is disabled for the domain", e["detail"].ToString());
        Assert.Equal("policydaemon", e["program"].ToString());
        Assert.False(await db.KeyExistsAsync(RedisKeys.DomainLog(stranger)));
    }

    [Fact]
    public async Task Accept_WrittenToDomainLog()
    {
        var managed = await ManagedInboundAsync();
        await using var wire = await PolicyWire.ConnectAsync(Daemon.Policy);
        Assert.Equal("OK", await wire.AskAsync(PolicyWire.Request($"carol@{managed}")));

        var db = fixture.RedisClient.GetDatabase();
        await Eventually.WaitAsync(async () => (await db.StreamRangeAsync(RedisKeys.DomainLog(managed))).Any(x => x["event"] == MessageLogEvents.PolicyAccept),
            TimeSpan.FromSeconds(5), "accept in the domain log");
    }
}
