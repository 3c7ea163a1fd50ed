using System.Buffers;
using System.Net;
using System.Text;
using Gateway.Core.Domains;
using Gateway.Core.Mail;
using Gateway.Core.Relay;
using Gateway.Core.Snapshot;
using Gateway.Deliverer.Intake;
using Gateway.Deliverer.Smtp;
using Gateway.PolicyDaemon.Postfix;
using Gateway.PolicyDaemon.Protocol;

namespace Deliverer.Tests;

/// <summary>
/// The intake's SMTP session as a state machine, driven from strings with no sockets (requirements §6.2, §11.2):
/// command sequences, pipelining, RSET, BDAT, XFORWARD, limits, and the relay rule with the real client. The relay
/// table at the end checks every case through both front ends: the policy service (Postfix's view) and the intake.
/// </summary>
[Trait("Kind", "Unit")]
public sealed class SmtpSessionTests
{
    private const string Source = "192.0.2.10";

    private static readonly ConfigSnapshot Snapshot = SnapshotOf(
        Domain("in.example", inbound: true, servers: [new InboundServer("*@in.example", "192.0.2.1", 25, 10), new InboundServer("john@in.example", "192.0.2.2", 25, 10)]),
        Domain("out.example", verified: true, outbound: new OutboundSettings(true, false, false, [Source])),
        Domain("unverified.example", verified: false, outbound: new OutboundSettings(true, false, false, [Source])),
        Domain("both.example", inbound: true, verified: true, outbound: new OutboundSettings(true, false, false, [Source])));

    private static readonly ProviderRanges Providers = new(
        new ProviderRangeList("test", DateTimeOffset.UnixEpoch, ["40.92.0.0/15"]),
        new ProviderRangeList("test", DateTimeOffset.UnixEpoch, ["209.85.128.0/17"]));

    private static SmtpSession NewSession(ConfigSnapshot? snapshot = null, RelayScope scope = RelayScope.Any, string peer = "127.0.0.1",
        long maxSize = 1_000_000, int maxRecipients = 1000, int maxErrors = 20)
    {
        var engine = new RelayEngine([new RuleEnvelopeCheck()]);
        var settings = new SmtpSessionSettings("gw.test", maxSize, maxRecipients, maxErrors, 50);
        return new SmtpSession(settings, IPAddress.Parse(peer), scope, r => engine.Evaluate(r, snapshot ?? Snapshot, Providers), TimeProvider.System);
    }

    private static SessionReply Say(SmtpSession session, string line) => session.Command(SmtpParser.ParseCommand(Encoding.UTF8.GetBytes(line)));

    private static void Ok(SmtpSession session, string line) => Assert.StartsWith("2", Say(session, line).Text, StringComparison.Ordinal);

    /// <summary>Feeds DATA content through the same reader the connection loop uses.</summary>
    private static SessionReply Content(SmtpSession session, string content)
    {
        var buffer = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(content));
        var state = session.DataState;
        var status = DataReader.TryRead(ref buffer, ref state, session.Data!, 1_000_000);
        session.DataState = state;
        Assert.Equal(OperationStatus.Done, status);
        return session.EndOfData();
    }

    [Fact]
    public void Session_NoXforward_OutboundFromLoopback_NoDomain_NothingAccepted()
    {
        using var s = NewSession();
        Ok(s, "EHLO local.test");
        Ok(s, "MAIL FROM:<a@out.example>");
        var reply = Say(s, "RCPT TO:<victim@elsewhere.test>");
        Assert.Equal("554 5.7.1 <victim@elsewhere.test>: Recipient address rejected: NO-DOMAIN", reply.Text);
        Assert.Equal(RelayReason.NoDomain, reply.Decision!.Reason);
        Assert.Equal("127.0.0.1", reply.Request!.ClientAddress);
        Assert.StartsWith("554 5.5.1", Say(s, "DATA").Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Session_UnverifiedDomainPastItsGracePeriod_InboundRefusedAsByThePolicyService()
    {
        var unverified = Domain("new.example", inbound: true) with { CreateTime = DateTimeOffset.UtcNow.AddHours(-2) };
        ConfigSnapshot Within(TimeSpan grace)
        {
            var snapshot = new ConfigSnapshot { UnverifiedInboundGrace = grace };
            snapshot.Replace([unverified], 1, DateTimeOffset.UtcNow);
            return snapshot;
        }

        using var s = NewSession(Within(TimeSpan.FromHours(1)));
        Ok(s, "EHLO mx.sender.test");
        Ok(s, "MAIL FROM:<someone@sender.test>");
        var reply = Say(s, "RCPT TO:<user@new.example>");
        Assert.StartsWith("554 5.7.1 <user@new.example>", reply.Text, StringComparison.Ordinal);
        Assert.Equal(RelayRules.GraceEnded, reply.Decision!.InboundRefusal);

        using var again = NewSession(Within(TimeSpan.FromHours(3))); // still within it: accepted
        Ok(again, "EHLO mx.sender.test");
        Ok(again, "MAIL FROM:<someone@sender.test>");
        Ok(again, "RCPT TO:<user@new.example>");
    }

    [Fact]
    public void Session_XforwardAddrNotASource_NoDomain()
    {
        using var s = NewSession();
        Ok(s, "EHLO postfix.test");
        Ok(s, "XFORWARD ADDR=198.51.100.99 NAME=[UNAVAILABLE]");
        Ok(s, "MAIL FROM:<a@out.example>");
        Assert.Equal("554 5.7.1 <victim@elsewhere.test>: Recipient address rejected: NO-DOMAIN", Say(s, "RCPT TO:<victim@elsewhere.test>").Text);
    }

    [Fact]
    public void Session_XforwardAddrIsTheSource_OutboundAccepted_ThenNextTransactionWithoutXforwardRefused()
    {
        using var s = NewSession();
        Ok(s, "EHLO postfix.test");
        Ok(s, $"XFORWARD ADDR={Source} IDENT=ABC123");
        Ok(s, "MAIL FROM:<a@out.example>");
        var rcpt = Say(s, "RCPT TO:<victim@elsewhere.test>");
        Assert.Equal("250 2.1.5 Ok", rcpt.Text);
        Assert.Equal(Direction.Outbound, rcpt.Decision!.Direction);
        Assert.Equal(SessionAction.ReadData, Say(s, "DATA").Action);
        var end = Content(s, "Subject: x\r\n\r\nbody\r\n.\r\n");
        Assert.Equal(SessionAction.Store, end.Action);
        var m = s.Pending!;
        Assert.Equal(Source, m.Client.Address);
        Assert.Equal("127.0.0.1", m.Client.Peer);
        Assert.Equal("ABC123", m.PostfixQueueId);
        Assert.Equal([new IntakeRecipient("victim@elsewhere.test", "out.example", Direction.Outbound)], m.Recipients);
        Assert.Contains($"[{Source}]", Encoding.UTF8.GetString(m.Body.WrittenSpan), StringComparison.Ordinal);
        Assert.StartsWith("250 2.0.0 Ok: queued as x1", s.Stored(new IntakeResult(["x1"], null)), StringComparison.Ordinal);

        // XFORWARD describes one transaction: the next one is the peer's own again.
        Ok(s, "MAIL FROM:<a@out.example>");
        Assert.StartsWith("554 5.7.1", Say(s, "RCPT TO:<victim@elsewhere.test>").Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Session_XforwardFromAProviderRangeOfAnotherDomain_NoDomain()
    {
        using var s = NewSession();
        Ok(s, "EHLO postfix.test");
        Ok(s, "XFORWARD ADDR=40.92.0.1");
        Ok(s, "MAIL FROM:<a@out.example>");
        Assert.StartsWith("554 5.7.1", Say(s, "RCPT TO:<victim@elsewhere.test>").Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(RelayScope.Inbound, "a@out.example", "x@elsewhere.test", "554 5.7.1")]
    [InlineData(RelayScope.Outbound, "a@remote.test", "u@in.example", "554 5.7.1")]
    [InlineData(RelayScope.Inbound, "a@remote.test", "u@in.example", "250 ")]
    [InlineData(RelayScope.Outbound, "a@out.example", "x@elsewhere.test", "250 ")]
    public void Session_ListenerScope_GrantsOnlyItsDirection(RelayScope scope, string sender, string recipient, string expected)
    {
        using var s = NewSession(scope: scope);
        Ok(s, "EHLO postfix.test");
        Ok(s, $"XFORWARD ADDR={Source}");
        Ok(s, $"MAIL FROM:<{sender}>");
        Assert.StartsWith(expected, Say(s, $"RCPT TO:<{recipient}>").Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("victim%evil.test@in.example")]
    [InlineData("evil.test!victim@in.example")]
    [InlineData("\"a@evil.test\"@in.example")]
    [InlineData("\"victim%evil.test\"@in.example")]
    public void Session_RoutingSyntaxInLocalPart_550Refused(string recipient)
    {
        using var s = NewSession();
        Ok(s, "EHLO postfix.test");
        Ok(s, "MAIL FROM:<a@remote.test>");
        var reply = Say(s, $"RCPT TO:<{recipient}>");
        Assert.StartsWith("550 5.7.1 <", reply.Text, StringComparison.Ordinal);
        Assert.EndsWith("Recipient address rejected: Sender-specified routing is not allowed", reply.Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"a\".\\\"b.\"@evil.example>ORCPT=rfc822;\"@in.example")]
    [InlineData("a\\@b@in.example")]
    [InlineData("\"unclosed@in.example")]
    [InlineData("a b@in.example")]
    [InlineData("a@in..example")]
    [InlineData("a@" + "x234567890123456789012345678901234567890123456789012345678901234.example")]
    public void Session_AddressPostfixAndIntakeCouldReadDifferently_501(string recipient)
    {
        using var s = NewSession();
        Ok(s, "EHLO postfix.test");
        Ok(s, "MAIL FROM:<a@remote.test>");
        Assert.StartsWith("501 5.1.3", Say(s, $"RCPT TO:<{recipient}>").Text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"john\"@in.example", "john@in.example")]
    [InlineData("john@in.example.", "john@in.example")]
    [InlineData("john@IN.Example", "john@in.example")]
    [InlineData("\"john..doe\"@in.example", "\"john..doe\"@in.example")]
    [InlineData("john..doe@in.example", "\"john..doe\"@in.example")]
    [InlineData("\"john smith\"@in.example", "\"john smith\"@in.example")]
    public void Session_RecipientSpellings_StoredInCanonicalForm(string written, string canonical)
    {
        using var s = NewSession();
        Ok(s, "EHLO postfix.test");
        Ok(s, "MAIL FROM:<a@remote.test>");
        Ok(s, $"RCPT TO:<{written}>");
        Ok(s, $"RCPT TO:<{canonical}>"); // the same recipient: kept once
        Say(s, "DATA");
        Content(s, "x\r\n.\r\n");
        Assert.Equal([canonical], s.Pending!.Recipients.Select(r => r.Address));
    }

    private static readonly string[] PipelinedCommands =
        ["EHLO c.test", "MAIL FROM:<a@remote.test>", "RCPT TO:<u@in.example>", "RSET", "RCPT TO:<u@in.example>", "NOOP", "QUIT"];

    [Fact]
    public void Session_Pipelining_RepliesInOrder_RsetClearsTransaction()
    {
        using var s = NewSession();
        var replies = PipelinedCommands.Select(l => Say(s, l)).ToList();
        Assert.Equal(["250", "250", "250", "250", "503", "250", "221"], replies.Select(r => r.Text[..3]));
        Assert.Equal(SessionAction.Close, replies[^1].Action);
    }

    [Fact]
    public void Session_EhloAnnouncesExtensions()
    {
        using var s = NewSession();
        var text = Say(s, "EHLO c.test").Text;
        foreach (var ext in new[] { "PIPELINING", "SIZE 1000000", "8BITMIME", "SMTPUTF8", "DSN", "CHUNKING", "XFORWARD NAME ADDR", "ENHANCEDSTATUSCODES" })
        {
            Assert.Contains(ext, text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Session_Bdat_ChunksThenLast_StoredAsOneMessage()
    {
        using var s = NewSession();
        Ok(s, "EHLO c.test");
        Ok(s, "MAIL FROM:<a@remote.test>");
        Ok(s, "RCPT TO:<u@in.example>");
        var first = Say(s, "BDAT 9");
        Assert.Equal(SessionAction.ReadChunk, first.Action);
        Assert.Equal(9, s.ChunkRemaining);
        s.ChunkOctets(new ReadOnlySequence<byte>("Subject: "u8.ToArray()));
        Assert.StartsWith("250 2.0.0", s.ChunkRead().Text, StringComparison.Ordinal);
        Assert.Equal(SessionAction.ReadChunk, Say(s, "BDAT 8 LAST").Action);
        s.ChunkOctets(new ReadOnlySequence<byte>("x\r\n\r\nb\r\n"u8.ToArray()));
        Assert.Equal(SessionAction.Store, s.ChunkRead().Action);
        Assert.EndsWith("Subject: x\r\n\r\nb\r\n", Encoding.ASCII.GetString(s.Pending!.Body.WrittenSpan), StringComparison.Ordinal);
    }

    [Fact]
    public void Session_BdatWithoutRecipients_ChunkReadAndDropped_ThenRefused()
    {
        using var s = NewSession();
        Ok(s, "EHLO c.test");
        Ok(s, "MAIL FROM:<a@remote.test>");
        var bdat = Say(s, "BDAT 3 LAST");
        Assert.Equal(SessionAction.ReadChunk, bdat.Action);
        Assert.Empty(bdat.Text);
        s.ChunkOctets(new ReadOnlySequence<byte>("abc"u8.ToArray()));
        Assert.StartsWith("554 5.5.1", s.ChunkRead().Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Session_CommandOtherThanBdatMidChunking_503AndDiscarded()
    {
        using var s = NewSession();
        Ok(s, "EHLO c.test");
        Ok(s, "MAIL FROM:<a@remote.test>");
        Ok(s, "RCPT TO:<u@in.example>");
        Say(s, "BDAT 1");
        s.ChunkOctets(new ReadOnlySequence<byte>("a"u8.ToArray()));
        s.ChunkRead();
        Assert.StartsWith("503 ", Say(s, "DATA").Text, StringComparison.Ordinal);
        Assert.StartsWith("503 ", Say(s, "RCPT TO:<u@in.example>").Text, StringComparison.Ordinal); // the transaction is gone
    }

    [Fact]
    public void Session_BdatBadSize_CannotResynchronise_Closes() =>
        Assert.Equal(SessionAction.Close, Say(NewSession(), "BDAT x").Action);

    [Fact]
    public void Session_TooManyRecipients_452_TooManyErrors_421AndClose()
    {
        using var s = NewSession(maxRecipients: 2, maxErrors: 3);
        Ok(s, "EHLO c.test");
        Ok(s, "MAIL FROM:<a@remote.test>");
        Ok(s, "RCPT TO:<u1@in.example>");
        Ok(s, "RCPT TO:<u2@in.example>");
        Assert.StartsWith("452 4.5.3", Say(s, "RCPT TO:<u3@in.example>").Text, StringComparison.Ordinal);
        Assert.Equal(SessionAction.None, Say(s, "BOGUS").Action);
        Assert.Equal(SessionAction.None, Say(s, "MAIL FROM:<a@remote.test>").Action); // 503: nested
        var last = Say(s, "VRFY u1");
        Assert.Equal(SessionAction.Close, last.Action);
        Assert.Contains("421 4.7.0", last.Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Session_MessageTooBig_552()
    {
        using var s = NewSession(maxSize: 10);
        Ok(s, "EHLO c.test");
        Assert.StartsWith("552 5.3.4", Say(s, "MAIL FROM:<a@remote.test> SIZE=11").Text, StringComparison.Ordinal);
        Ok(s, "MAIL FROM:<a@remote.test>");
        Ok(s, "RCPT TO:<u@in.example>");
        Say(s, "BDAT 20 LAST");
        s.ChunkOctets(new ReadOnlySequence<byte>(new byte[20]));
        Assert.StartsWith("552 5.3.4", s.ChunkRead().Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Session_SnapshotNotLoaded_TemporaryRefusal()
    {
        using var s = NewSession(new ConfigSnapshot());
        Ok(s, "EHLO c.test");
        Ok(s, "MAIL FROM:<a@remote.test>");
        Assert.StartsWith("450 4.7.1 <u@in.example>", Say(s, "RCPT TO:<u@in.example>").Text, StringComparison.Ordinal);
    }

    [Fact]
    public void Session_ReceivedHeaderNamesTheRealClientFromXforward()
    {
        using var s = NewSession();
        Ok(s, "EHLO postfix.test");
        Ok(s, "XFORWARD ADDR=203.0.113.5 NAME=mx.sender.test HELO=helo.sender.test");
        Ok(s, "MAIL FROM:<a@remote.test>");
        Ok(s, "RCPT TO:<u@in.example>");
        Say(s, "DATA");
        Content(s, "x\r\n.\r\n");
        var text = Encoding.UTF8.GetString(s.Pending!.Body.WrittenSpan);
        Assert.StartsWith("Received: from helo.sender.test (mx.sender.test [203.0.113.5])", text, StringComparison.Ordinal);
    }

    /// <summary>
    /// The relay rule as a table with two columns: what Postfix tells the client after asking the policy service, and
    /// what the intake tells a client that reaches it directly (without XFORWARD, from the same client address). One
    /// rule: both say the same, word for word.
    /// </summary>
    [Theory]
    [InlineData("a@remote.test", "u@in.example", "198.51.100.7", "250")]
    [InlineData("a@remote.test", "U@IN.EXAMPLE.", "198.51.100.7", "250")]
    [InlineData("a@remote.test", "u@unmanaged.test", "198.51.100.7", "554")]
    [InlineData("a@out.example", "u@unmanaged.test", Source, "250")]
    [InlineData("a@out.example", "u@unmanaged.test", "198.51.100.7", "554")]
    [InlineData("a@unverified.example", "u@unmanaged.test", Source, "554")]
    [InlineData("a@both.example", "u@both.example", "198.51.100.7", "250")]
    [InlineData("", "u@unmanaged.test", Source, "554")]
    [InlineData("a@remote.test", "victim%evil.test@in.example", "198.51.100.7", "550")]
    [InlineData("a@remote.test", "evil!victim@in.example", "198.51.100.7", "550")]
    public void RelayTable_PolicyAndIntake_SameAnswer(string sender, string recipient, string client, string code)
    {
        // The policy service gets Postfix's internal (unquoted) forms; the intake the SMTP path.
        var policy = new PostfixPolicy("OK");
        var request = PostfixPolicy.ToRelayRequest(PolicyRequestOf(sender, PostfixInternalForm(recipient), client));
        var decision = new RelayEngine([new RuleEnvelopeCheck()]).Evaluate(request, Snapshot, Providers);
        var action = policy.Action(decision);
        var postfixSays = decision.Outcome == RelayOutcome.Accept ? "250 2.1.5 Ok" : PostfixWording(action, request.Recipient);

        using var s = NewSession(peer: client);
        Ok(s, "EHLO c.test");
        Ok(s, $"MAIL FROM:<{sender}>");
        var intakeSays = Say(s, $"RCPT TO:<{recipient}>").Text;

        Assert.StartsWith(code, intakeSays, StringComparison.Ordinal);
        Assert.Equal(postfixSays, intakeSays);
    }

    /// <summary>A policy request as Postfix sends it, through the daemon's own parser.</summary>
    private static PolicyRequest PolicyRequestOf(string sender, string recipient, string client)
    {
        var text = $"request=smtpd_access_policy\nprotocol_state=RCPT\nsender={sender}\nrecipient={recipient}\nclient_address={client}\n\n";
        var buffer = new ReadOnlySequence<byte>(Encoding.UTF8.GetBytes(text));
        Assert.Equal(OperationStatus.Done, PolicyRequestParser.TryParse(ref buffer, PolicyLimits.Default, out var request, out _));
        return request!;
    }

    /// <summary>Postfix's internal form of a path (quotes around a local part removed); enough for the table's addresses.</summary>
    private static string PostfixInternalForm(string path)
    {
        var at = path.LastIndexOf('@');
        var local = path[..at];
        return (local.Length > 1 && local[0] == '"' && local[^1] == '"' ? local[1..^1] : local) + path[at..];
    }

    /// <summary>How Postfix turns a policy action into the RCPT reply (smtpd_check.c, check_table_result).</summary>
    private static string PostfixWording(string action, string recipient)
    {
        if (action.StartsWith("REJECT ", StringComparison.Ordinal))
        {
            return $"554 5.7.1 <{recipient}>: Recipient address rejected: {action["REJECT ".Length..]}";
        }

        var parts = action.Split(' ', 3);
        return $"{parts[0]} {parts[1]} <{recipient}>: Recipient address rejected: {parts[2]}";
    }

    private static ConfigSnapshot SnapshotOf(params DomainConfig[] domains)
    {
        var snapshot = new ConfigSnapshot();
        snapshot.Replace(domains, 1, DateTimeOffset.UtcNow);
        return snapshot;
    }

    private static DomainConfig Domain(string name, bool inbound = false, bool verified = false, OutboundSettings? outbound = null, IReadOnlyList<InboundServer>? servers = null) => new()
    {
        Name = name,
        CompanyId = "acme",
        Settings = new DomainSettings(inbound, servers ?? (inbound ? [new InboundServer("*@" + name, "192.0.2.1", 25, 10)] : []), outbound ?? OutboundSettings.Disabled),
        Verification = new VerificationState(new string('a', 32), verified, verified ? VerificationMethod.Txt : VerificationMethod.None, verified ? DateTimeOffset.UtcNow : null),
        CreateTime = DateTimeOffset.UtcNow,
        UpdateTime = DateTimeOffset.UtcNow,
    };
}
