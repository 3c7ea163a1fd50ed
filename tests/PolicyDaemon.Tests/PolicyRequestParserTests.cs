using System.Buffers;
using System.Text;
using Gateway.PolicyDaemon.Protocol;

namespace PolicyDaemon.Tests;

[Trait("Kind", "Unit")]
public sealed class PolicyRequestParserTests
{
    /// <summary>A request exactly as Postfix 3.7.11 sends it (captured from the private test instance).</summary>
    public const string Postfix37Request =
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\nclient_address=127.0.0.1\nclient_name=localhost\n" +
        "client_port=34688\nreverse_client_name=localhost\nserver_address=127.0.0.1\nserver_port=23456\nhelo_name=vm\n" +
        "sender=x@y.example\nrecipient=John@Managed.Example\nrecipient_count=0\nqueue_id=\ninstance=392a.6b0a8778.5b383.0\nsize=0\n" +
        "etrn_domain=\nstress=\nsasl_method=\nsasl_username=\nsasl_sender=\nccert_subject=\nccert_issuer=\nccert_fingerprint=\n" +
        "ccert_pubkey_fingerprint=\nencryption_protocol=\nencryption_cipher=\nencryption_keysize=0\npolicy_context=both\n\n";

    private static (OperationStatus Status, PolicyRequest? Request, PolicyParseError Error, long Left) Parse(ReadOnlySequence<byte> buffer, PolicyLimits? limits = null)
    {
        var status = PolicyRequestParser.TryParse(ref buffer, limits ?? PolicyLimits.Default, out var request, out var error);
        return (status, request, error, buffer.Length);
    }

    [Fact]
    public void TryParse_Postfix37Request_AllUsedAttributes()
    {
        var (status, r, error, left) = Parse(Bytes.Of(Postfix37Request));

        Assert.Equal(OperationStatus.Done, status);
        Assert.Equal(PolicyParseError.None, error);
        Assert.Equal(0, left);
        Assert.NotNull(r);
        Assert.Equal("smtpd_access_policy", r.Request);
        Assert.Equal("RCPT", r.ProtocolState);
        Assert.Equal("x@y.example", r.Sender);
        Assert.Equal("John@Managed.Example", r.Recipient);
        Assert.Equal("127.0.0.1", r.ClientAddress);
        Assert.Equal("localhost", r.ClientName);
        Assert.Equal("vm", r.HeloName);
        Assert.Equal(string.Empty, r.QueueId);
        Assert.Equal("0", r.Size);
        Assert.Equal("both", r.PolicyContext);
        Assert.Equal(29, r.AttributeCount);
    }

    [Fact]
    public void TryParse_ByteBySegment_SameResultAsWhole()
    {
        var (status, r, _, left) = Parse(Bytes.Segmented(Postfix37Request));

        Assert.Equal(OperationStatus.Done, status);
        Assert.Equal(0, left);
        Assert.Equal("John@Managed.Example", r!.Recipient);
        Assert.Equal("both", r.PolicyContext);
        Assert.Equal(29, r.AttributeCount);
    }

    [Fact]
    public void TryParse_EveryPrefix_NeedMoreDataAndNothingConsumed()
    {
        var bytes = Encoding.UTF8.GetBytes(Postfix37Request);
        for (var n = 0; n < bytes.Length; n++)
        {
            var (status, r, error, left) = Parse(Bytes.Segmented(bytes[..n]));
            Assert.True(status == OperationStatus.NeedMoreData, $"prefix of {n} bytes: {status} {error}");
            Assert.Null(r);
            Assert.Equal(n, left);
        }
    }

    [Fact]
    public void TryParse_TwoRequestsInBuffer_FirstConsumedSecondLeft()
    {
        var first = "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@one.example\n\n";
        var second = "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=b@two.example\n\n";
        var buffer = Bytes.Of(first + second);

        Assert.Equal(OperationStatus.Done, PolicyRequestParser.TryParse(ref buffer, PolicyLimits.Default, out var a, out _));
        Assert.Equal("a@one.example", a!.Recipient);
        Assert.Equal(second.Length, buffer.Length);
        Assert.Equal(OperationStatus.Done, PolicyRequestParser.TryParse(ref buffer, PolicyLimits.Default, out var b, out _));
        Assert.Equal("b@two.example", b!.Recipient);
        Assert.True(buffer.IsEmpty);
    }

    [Fact]
    public void TryParse_MissingBlankLine_NeedMoreDataNeverAnswered()
    {
        var (status, r, _, left) = Parse(Bytes.Of("request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@b.example\n"));

        Assert.Equal(OperationStatus.NeedMoreData, status);
        Assert.Null(r);
        Assert.True(left > 0);
    }

    [Fact]
    public void TryParse_CrLfLines_Accepted()
    {
        var (status, r, _, _) = Parse(Bytes.Of("request=smtpd_access_policy\r\nprotocol_state=RCPT\r\nrecipient=a@b.example\r\n\r\n"));

        Assert.Equal(OperationStatus.Done, status);
        Assert.Equal("a@b.example", r!.Recipient);
        Assert.Equal("RCPT", r.ProtocolState);
    }

    [Fact]
    public void TryParse_UnknownAttributes_IgnoredEvenRepeated()
    {
        var (status, r, _, _) = Parse(Bytes.Of("request=smtpd_access_policy\nfuture_thing=1\nfuture_thing=2\nprotocol_state=RCPT\n\n"));

        Assert.Equal(OperationStatus.Done, status);
        Assert.Equal("RCPT", r!.ProtocolState);
        Assert.Equal(4, r.AttributeCount);
    }

    [Fact]
    public void TryParse_ValueWithEqualsAndUtf8_KeptWhole()
    {
        var (status, r, _, _) = Parse(Bytes.Of("request=smtpd_access_policy\nrecipient=\"a=b\"@bücher.example\nccert_subject=CN=x\n\n"));

        Assert.Equal(OperationStatus.Done, status);
        Assert.Equal("\"a=b\"@bücher.example", r!.Recipient);
    }

    [Theory]
    [InlineData("recipient")]
    [InlineData("sender")]
    [InlineData("client_address")]
    [InlineData("protocol_state")]
    [InlineData("policy_context")]
    [InlineData("request")]
    public void TryParse_RepeatedDecisionAttribute_InvalidData(string name)
    {
        var text = $"request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=a@b.example\nsender=x@y.example\nclient_address=192.0.2.1\npolicy_context=inbound\n{name}=other\n\n";
        if (name is "request" or "protocol_state")
        {
            text = text.Replace($"{name}=other\n", $"{name}={(name == "request" ? "smtpd_access_policy" : "RCPT")}\n", StringComparison.Ordinal);
        }

        var (status, r, error, _) = Parse(Bytes.Of(text));

        Assert.Equal(OperationStatus.InvalidData, status);
        Assert.Equal(PolicyParseError.RepeatedAttribute, error);
        Assert.Null(r);
    }

    [Theory]
    [InlineData("garbage without equals\n\n", PolicyParseError.MissingEquals)]
    [InlineData("=value\n\n", PolicyParseError.EmptyName)]
    [InlineData("na me=x\n\n", PolicyParseError.InvalidName)]
    [InlineData("n\u00e4me=x\n\n", PolicyParseError.InvalidName)]
    [InlineData("request=smtpd_access_policy\nrecipient=a\0b@x\n\n", PolicyParseError.NulInValue)]
    [InlineData("\n", PolicyParseError.EmptyRequest)]
    [InlineData("protocol_state=RCPT\nrecipient=a@b.example\n\n", PolicyParseError.MissingRequestType)]
    [InlineData("request=junk\nprotocol_state=RCPT\n\n", PolicyParseError.UnsupportedRequestType)]
    [InlineData("GET / HTTP/1.1\r\nHost: x\r\n\r\n", PolicyParseError.MissingEquals)]
    public void TryParse_Garbage_InvalidDataWithReason(string text, PolicyParseError expected)
    {
        var whole = Parse(Bytes.Of(text));
        var segmented = Parse(Bytes.Segmented(text));

        Assert.Equal(OperationStatus.InvalidData, whole.Status);
        Assert.Equal(expected, whole.Error);
        Assert.Null(whole.Request);
        Assert.Equal(whole.Status, segmented.Status);
        Assert.Equal(whole.Error, segmented.Error);
    }

    [Fact]
    public void TryParse_RandomBytes_NeverDone()
    {
        var random = new Random(12345);
        for (var i = 0; i < 2000; i++)
        {
            var bytes = new byte[random.Next(1, 300)];
            random.NextBytes(bytes);
            var (status, _, _, _) = Parse(new ReadOnlySequence<byte>(bytes));
            // Random bytes can form a valid request only with "request=smtpd_access_policy"; never here.
            Assert.NotEqual(OperationStatus.Done, status);
        }
    }

    [Fact]
    public void TryParse_OversizeLineWithoutNewline_InvalidBeforeItEnds()
    {
        var limits = new PolicyLimits(MaxLineLength: 256, MaxAttributes: 10, MaxRequestBytes: 4096);
        var partial = "request=smtpd_access_policy\nrecipient=" + new string('a', 300);

        var (status, _, error, _) = Parse(Bytes.Of(partial), limits);

        Assert.Equal(OperationStatus.InvalidData, status);
        Assert.Equal(PolicyParseError.LineTooLong, error);
    }

    [Fact]
    public void TryParse_LineAtLimit_Accepted_OneMore_Refused()
    {
        var limits = new PolicyLimits(MaxLineLength: 256, MaxAttributes: 10, MaxRequestBytes: 4096);
        var atLimit = "recipient=" + new string('a', 256 - "recipient=".Length);
        var over = atLimit + "a";

        Assert.Equal(OperationStatus.Done, Parse(Bytes.Of($"request=smtpd_access_policy\n{atLimit}\n\n"), limits).Status);
        var (status, _, error, _) = Parse(Bytes.Segmented($"request=smtpd_access_policy\n{over}\n\n"), limits);
        Assert.Equal(OperationStatus.InvalidData, status);
        Assert.Equal(PolicyParseError.LineTooLong, error);
    }

    [Fact]
    public void TryParse_TooManyAttributes_InvalidBeforeRequestEnds()
    {
        var limits = new PolicyLimits(MaxLineLength: 256, MaxAttributes: 10, MaxRequestBytes: 65536);
        var text = "request=smtpd_access_policy\n" + string.Concat(Enumerable.Range(0, 10).Select(i => $"x{i}=1\n"));

        var (status, _, error, _) = Parse(Bytes.Of(text), limits);

        Assert.Equal(OperationStatus.InvalidData, status);
        Assert.Equal(PolicyParseError.TooManyAttributes, error);
    }

    [Fact]
    public void TryParse_RequestTooLarge_InvalidBeforeRequestEnds()
    {
        var limits = new PolicyLimits(MaxLineLength: 256, MaxAttributes: 1000, MaxRequestBytes: 1024);
        var text = "request=smtpd_access_policy\n" + string.Concat(Enumerable.Range(0, 100).Select(i => $"x{i}=0123456789\n"));

        var (status, _, error, _) = Parse(Bytes.Of(text), limits);

        Assert.Equal(OperationStatus.InvalidData, status);
        Assert.Equal(PolicyParseError.RequestTooLarge, error);
    }
}
