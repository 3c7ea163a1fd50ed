using System.Net;
using System.Net.Sockets;
using System.Text;
using Gateway.Deliverer.Protection;

namespace Deliverer.Tests;

/// <summary>The engines' wire formats and the clients' failover, without the engines (the real ones: ProtectionTests).</summary>
[Trait("Kind", "Integration")]
public sealed class ScannerProtocolTests
{
    [Fact]
    public void RspamdParse_CheckV2Reply_ActionScoreSymbolsOptions()
    {
        const string json = """
            {"is_skipped":false,"score":7.25,"required_score":15.0,"action":"add header",
             "symbols":{"BAYES_SPAM":{"name":"BAYES_SPAM","score":5.1,"metric_score":5.1,"options":["99.99%"]},
                        "DKIM_TRACE":{"name":"DKIM_TRACE","score":0.0,"options":["example.com:+"]},
                        "R_SPF_ALLOW":{"name":"R_SPF_ALLOW","score":-0.2}},
             "messages":{},"message-id":"1@x","time_real":0.01,"milter":{"remove_headers":{"X-Spam":0}}}
            """;
        var r = RspamdResult.Parse(Encoding.UTF8.GetBytes(json));
        Assert.Equal("add header", r.Action);
        Assert.Equal(7.25, r.Score);
        Assert.Equal(15, r.RequiredScore);
        Assert.False(r.Skipped);
        Assert.Equal(["99.99%"], r.Symbol("BAYES_SPAM")!.Options);
        Assert.Empty(r.Symbol("R_SPF_ALLOW")!.Options);
        Assert.Equal(-0.2, r.Symbol("R_SPF_ALLOW")!.Score);
        Assert.Null(r.Symbol("GTUBE"));
    }

    [Fact]
    public void RspamdParse_GtubePreResult_Skipped()
    {
        var r = RspamdResult.Parse("""{"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0.0}},"messages":{"smtp_message":"Gtube pattern"}}"""u8);
        Assert.True(r.Skipped);
        Assert.True(r.Has("GTUBE"));
        Assert.Equal(15, r.Score);
    }

    [Theory]
    [InlineData("""{"error":"bad request"}""", "bad request")]
    [InlineData("""[1,2]""", "no action")]
    [InlineData("""{"action":""", "not a JSON reply")]
    [InlineData("<html>", "not a JSON reply")]
    public void RspamdParse_NotAVerdict_FormatException(string body, string expected)
    {
        var e = Assert.Throws<FormatException>(() => RspamdResult.Parse(Encoding.UTF8.GetBytes(body)));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("stream: OK\0", null)]
    [InlineData("stream: Eicar-Test-Signature.UNOFFICIAL FOUND\0", "Eicar-Test-Signature.UNOFFICIAL")]
    [InlineData("1: stream: Win.Trojan.Agent-1 FOUND\n", "Win.Trojan.Agent-1")]
    public void ClamdParseReply_OkOrFound(string reply, string? virus) => Assert.Equal(virus, ClamdClient.ParseReply(reply));

    [Theory]
    [InlineData("INSTREAM size limit exceeded. ERROR\0")]
    [InlineData("stream: Can't allocate memory ERROR\0")]
    [InlineData("")]
    [InlineData("UNKNOWN COMMAND\0")]
    public void ClamdParseReply_ErrorOrGarbage_FormatException(string reply) => Assert.Throws<FormatException>(() => ClamdClient.ParseReply(reply));

    [Fact]
    public void ServerRotation_RoundRobin_FailedServerTriedLastUntilItsBackoffEnds()
    {
        var clock = new TickClock();
        var rotation = new ServerRotation<string>(["a", "b", "c"], TimeSpan.FromSeconds(10), clock);
        Assert.Equal(["a", "b", "c"], rotation.Order().Select(x => x.Server));
        Assert.Equal(["b", "c", "a"], rotation.Order().Select(x => x.Server));
        rotation.Failed(2);
        Assert.Equal(["a", "b", "c"], rotation.Order().Select(x => x.Server));
        Assert.Equal(["a", "b", "c"], rotation.Order().Select(x => x.Server)); // starts at "c", which is down
        clock.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(["b", "c", "a"], rotation.Order().Select(x => x.Server));
    }

    [Fact]
    public async Task ClamdClient_FirstServerRefuses_SecondAnswers_ThenBothDownIsAScannerException()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var good = (IPEndPoint)listener.LocalEndpoint;
        var refused = new IPEndPoint(IPAddress.Loopback, Gateway.Testing.FreePort.Get());
        var server = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            var buffer = new byte[64 * 1024];
            var total = new MemoryStream();
            // Read "zINSTREAM\0", chunks, and the zero-length end.
            while (!EndsWithTerminator(total.ToArray()))
            {
                var n = await stream.ReadAsync(buffer);
                if (n == 0)
                {
                    break;
                }

                total.Write(buffer, 0, n);
            }

            await stream.WriteAsync("stream: Test.Virus FOUND\0"u8.ToArray());
            return total.ToArray();
        });

        var options = new ProtectionOptions { ClamdServers = [refused.ToString(), good.ToString()], ClamdTimeout = TimeSpan.FromSeconds(5) };
        var clamd = new ClamdClient(options, TimeProvider.System);
        var message = Encoding.ASCII.GetBytes(new string('x', 100_000));
        Assert.Equal("Test.Virus", await clamd.ScanAsync(message, CancellationToken.None));
        var received = await server;
        Assert.StartsWith("zINSTREAM\0", Encoding.ASCII.GetString(received, 0, 10), StringComparison.Ordinal);
        // 100,000 bytes in chunks of at most 64 kB, each with its 4-byte length, then a zero length.
        Assert.Equal(10 + 100_000 + (2 * 4) + 4, received.Length);

        listener.Stop();
        var e = await Assert.ThrowsAsync<ScannerException>(() => clamd.ScanAsync(message, CancellationToken.None));
        Assert.Equal("clamd", e.Engine);
        Assert.Equal(ScannerFailureReasons.Unavailable, e.Reason);
    }

    /// <summary>A clock whose monotonic timestamp the test moves.</summary>
    private sealed class TickClock : TimeProvider
    {
        private long _ticks = 1_000_000;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }

    private static bool EndsWithTerminator(byte[] data)
    {
        // Walk the chunk framing after the command.
        var pos = 10;
        while (pos + 4 <= data.Length)
        {
            var length = (data[pos] << 24) | (data[pos + 1] << 16) | (data[pos + 2] << 8) | data[pos + 3];
            if (length == 0)
            {
                return true;
            }

            pos += 4 + length;
        }

        return false;
    }

    [Fact]
    public async Task RspamdClient_SlowServer_TimeoutThenNextServerAnswers_AllSlowIsAScannerException()
    {
        using var slow = new TcpListener(IPAddress.Loopback, 0);
        slow.Start(); // accepts connections (backlog) and never answers
        using var good = new TcpListener(IPAddress.Loopback, 0);
        good.Start();
        var request = Task.Run(async () =>
        {
            using var client = await good.AcceptTcpClientAsync();
            var stream = client.GetStream();
            var buffer = new byte[16 * 1024];
            var text = new StringBuilder();
            while (!text.ToString().Contains("\r\n\r\nmessage", StringComparison.Ordinal))
            {
                var n = await stream.ReadAsync(buffer);
                if (n == 0)
                {
                    break;
                }

                text.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }

            var body = """{"is_skipped":false,"score":1.5,"required_score":15,"action":"no action","symbols":{}}"""u8.ToArray();
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n"));
            await stream.WriteAsync(body);
            return text.ToString();
        });

        var options = new ProtectionOptions { RspamdUrls = [$"http://{slow.LocalEndpoint}/", $"http://{good.LocalEndpoint}/"], RspamdTimeout = TimeSpan.FromMilliseconds(300) };
        using var client = new RspamdClient(options, TimeProvider.System);
        var result = await client.CheckAsync(new RspamdRequest("192.0.2.1", "mx.example", null, "a@b.example", ["c@d.example", "e@d.example"], "Q1"), "message"u8.ToArray(), CancellationToken.None);
        Assert.Equal(1.5, result.Score);
        var sent = await request;
        Assert.StartsWith("POST /checkv2 HTTP/1.1\r\n", sent, StringComparison.Ordinal);
        foreach (var header in new[] { "IP: 192.0.2.1", "Helo: mx.example", "From: a@b.example", "Rcpt: c@d.example,e@d.example", "Queue-Id: Q1", "Settings: {\"symbols_disabled\":[\"CLAM_VIRUS\"]}" })
        {
            Assert.Contains("\r\n" + header + "\r\n", sent, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("Hostname:", sent, StringComparison.Ordinal);

        using var onlySlow = new RspamdClient(new ProtectionOptions { RspamdUrls = [$"http://{slow.LocalEndpoint}/"], RspamdTimeout = TimeSpan.FromMilliseconds(300) }, TimeProvider.System);
        var e = await Assert.ThrowsAsync<ScannerException>(() => onlySlow.CheckAsync(new RspamdRequest(null, null, null, "", ["c@d"], "id"), "x"u8.ToArray(), CancellationToken.None));
        Assert.Equal(ScannerFailureReasons.Timeout, e.Reason);
        Assert.Equal("rspamd", e.Engine);
    }

    [Theory]
    [InlineData(new[] { "http://127.0.0.1:11333" }, new[] { "127.0.0.1:3310", "unix:/run/clamav/clamd.ctl", "clamd.internal:3310" }, "", true)]
    [InlineData(new[] { "ftp://x" }, new string[0], "", false)]
    [InlineData(new string[0], new[] { "127.0.0.1" }, "", false)]
    [InlineData(new string[0], new string[0], "not json", false)]
    [InlineData(new string[0], new string[0], "gw example", false)]
    public void ProtectionOptions_Validation(string[] rspamd, string[] clamd, string authServIdOrSettings, bool valid)
    {
        var o = new ProtectionOptions { RspamdUrls = rspamd, ClamdServers = clamd };
        if (authServIdOrSettings == "not json")
        {
            o.RspamdSettings = authServIdOrSettings;
        }
        else
        {
            o.AuthServId = authServIdOrSettings;
        }

        Assert.Equal(valid, ProtectionOptions.IsValid(o));
    }
}

/// <summary>Which messages clamd sees with the default <see cref="MalwareScope.Attachments"/>.</summary>
[Trait("Kind", "Integration")]
public sealed class AttachmentProbeTests
{
    private static bool Probe(string message) => AttachmentProbe.HasAttachment(Encoding.UTF8.GetBytes(message.ReplaceLineEndings("\r\n")));

    [Theory]
    [InlineData("Subject: a\n\nplain text\n", false)]
    [InlineData("Content-Type: text/html\n\n<p>hi</p>\n", false)]
    [InlineData("Content-Type: multipart/alternative; boundary=b\n\n--b\nContent-Type: text/plain\n\nx\n--b\nContent-Type: text/html\n\n<p>x</p>\n--b--\n", false)]
    [InlineData("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nx\n--b\nContent-Type: application/zip\nContent-Transfer-Encoding: base64\n\nUEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\n--b--\n", true)]
    [InlineData("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nx\n--b\nContent-Type: text/plain; name=notes.txt\n\nattached text\n--b--\n", true)]
    [InlineData("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\nContent-Disposition: attachment\n\nattached text\n--b--\n", true)]
    [InlineData("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nSubject: inner\n\nbody\n--b--\n", true)]
    [InlineData("Content-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n", true)]
    public void HasAttachment_InlineTextOnlyIsNot_AnythingElseIs(string message, bool expected) => Assert.Equal(expected, Probe(message));
}

[Trait("Kind", "Integration")]
public sealed class RspamdRecipientsTests
{
    [Fact]
    public void JoinRecipients_CommaJoined_CappedBeforeRspamdsHeaderLimit()
    {
        Assert.Equal("a@x.test,b@y.test", RspamdClient.JoinRecipients(["a@x.test", "b@y.test"]));
        var many = Enumerable.Range(0, 1000).Select(i => new string('r', 200) + i + "@example.test").ToList();
        var joined = RspamdClient.JoinRecipients(many);
        Assert.True(joined.Length <= RspamdClient.MaxRcptHeader);
        Assert.StartsWith(many[0] + "," + many[1] + ",", joined, StringComparison.Ordinal);
        Assert.EndsWith("@example.test", joined, StringComparison.Ordinal);
    }
}
