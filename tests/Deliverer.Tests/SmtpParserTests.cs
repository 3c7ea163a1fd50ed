using System.Buffers;
using System.Text;
using Gateway.Deliverer.Smtp;

namespace Deliverer.Tests;

/// <summary>The intake's parsers from strings and byte by byte, no sockets (STYLE "Protocols").</summary>
[Trait("Kind", "Unit")]
public sealed class SmtpParserTests
{
    private static ReadOnlySequence<byte> Seq(string s) => new(Encoding.UTF8.GetBytes(s));

    [Theory]
    [InlineData("EHLO x\r\nMAIL", "EHLO x", "MAIL")]
    [InlineData("NOOP\nQUIT\r\n", "NOOP", "QUIT\r\n")]
    [InlineData("HELO a\r\n", "HELO a", "")]
    public void TryReadLine_CrLfOrBareLf_LineWithoutEndAndRestKept(string input, string line, string rest)
    {
        var buffer = Seq(input);
        Assert.Equal(OperationStatus.Done, SmtpParser.TryReadLine(ref buffer, 100, out var got));
        Assert.Equal(line, Encoding.UTF8.GetString(got.ToArray()));
        Assert.Equal(rest, Encoding.UTF8.GetString(buffer.ToArray()));
    }

    [Fact]
    public void TryReadLine_NoLineEndYet_NeedMoreDataNothingConsumed()
    {
        var buffer = Seq("MAIL FROM:<a@b>");
        Assert.Equal(OperationStatus.NeedMoreData, SmtpParser.TryReadLine(ref buffer, 100, out _));
        Assert.Equal(15, buffer.Length);
    }

    [Fact]
    public void TryReadLine_OverLimit_InvalidDataEitherWay()
    {
        var noEnd = Seq(new string('a', 200));
        Assert.Equal(OperationStatus.InvalidData, SmtpParser.TryReadLine(ref noEnd, 100, out _));
        Assert.Equal(200, noEnd.Length);
        Assert.False(SmtpParser.SkipLine(ref noEnd));
        Assert.True(noEnd.IsEmpty);

        var withEnd = Seq(new string('a', 200) + "\r\nNOOP\r\n");
        Assert.Equal(OperationStatus.InvalidData, SmtpParser.TryReadLine(ref withEnd, 100, out _));
        Assert.Equal("NOOP\r\n", Encoding.UTF8.GetString(withEnd.ToArray()));
    }

    [Theory]
    [InlineData("ehlo mx.test", SmtpVerb.Ehlo, "mx.test")]
    [InlineData("MAIL FROM:<a@b> SIZE=10", SmtpVerb.Mail, "FROM:<a@b> SIZE=10")]
    [InlineData("StartTLS", SmtpVerb.StartTls, "")]
    [InlineData("QUIT", SmtpVerb.Quit, "")]
    [InlineData("XYZZY now", SmtpVerb.Unknown, "now")]
    [InlineData("", SmtpVerb.Unknown, "")]
    public void ParseCommand_VerbCaseInsensitive_ArgumentTrimmed(string line, SmtpVerb verb, string argument)
    {
        var c = SmtpParser.ParseCommand(Encoding.UTF8.GetBytes(line));
        Assert.Equal(verb, c.Verb);
        Assert.Equal(argument, c.Argument);
    }

    [Fact]
    public void ParseCommand_InvalidUtf8_ArgumentNull()
    {
        var c = SmtpParser.ParseCommand([.. "MAIL FROM:<"u8, 0xc3, 0x28, .. ">"u8]);
        Assert.Equal(SmtpVerb.Mail, c.Verb);
        Assert.Null(c.Argument);
    }

    [Theory]
    [InlineData("FROM:<>", "")]
    [InlineData("FROM:<a@b.test>", "a@b.test")]
    [InlineData("from: <a@b.test>", "a@b.test")]
    [InlineData("FROM:<\"john doe\"@b.test>", "\"john doe\"@b.test")]
    [InlineData("FROM:<\"a>b\"@b.test>", "\"a>b\"@b.test")]
    [InlineData("FROM:<@relay.test,@other.test:a@b.test>", "a@b.test")]
    [InlineData("FROM:<jörg@exämple.test> SMTPUTF8", "jörg@exämple.test")]
    [InlineData("FROM:<a@[192.0.2.1]>", "a@[192.0.2.1]")]
    public void TryParsePath_ValidPaths_Address(string argument, string address)
    {
        Assert.True(SmtpParser.TryParsePath(argument, "FROM:", allowEmpty: true, out var path, out var error), error);
        Assert.Equal(address, path.Address);
    }

    [Fact]
    public void TryParsePath_Parameters_KeysAndValues()
    {
        Assert.True(SmtpParser.TryParsePath("FROM:<a@b> SIZE=123 BODY=8BITMIME SMTPUTF8", "FROM:", true, out var path, out _));
        Assert.Equal("123", path.Parameter("size"));
        Assert.Equal("8BITMIME", path.Parameter("BODY"));
        Assert.True(path.HasParameter("SMTPUTF8"));
        Assert.Null(path.Parameter("SMTPUTF8"));
    }

    [Theory]
    [InlineData("FROM:a@b", true)]
    [InlineData("FROM:<a@b", true)]
    [InlineData("TO:<a@b>", true)]
    [InlineData("FROM:<ab>", true)]
    [InlineData("FROM:<a b@c>", true)]
    [InlineData("FROM:<a@b..c>", true)]
    [InlineData("FROM:<a@b> =x", true)]
    [InlineData("FROM:<>", false)]
    public void TryParsePath_Malformed_RefusedWithReason(string argument, bool allowEmpty)
    {
        Assert.False(SmtpParser.TryParsePath(argument, "FROM:", allowEmpty, out _, out var error));
        Assert.StartsWith("Syntax", error, StringComparison.Ordinal);
    }

    private static (OperationStatus Status, string Content, DataState State) ReadData(string input, long max = 1000, bool byteByByte = false)
    {
        var output = new ArrayBufferWriter<byte>();
        var state = new DataState();
        var bytes = Encoding.UTF8.GetBytes(input);
        var pending = Array.Empty<byte>();
        var status = OperationStatus.NeedMoreData;
        var chunks = byteByByte ? bytes.Select(b => new[] { b }).ToList() : [bytes];
        foreach (var chunk in chunks)
        {
            var buffer = new ReadOnlySequence<byte>([.. pending, .. chunk]);
            status = DataReader.TryRead(ref buffer, ref state, output, max);
            pending = buffer.ToArray();
            if (status == OperationStatus.Done)
            {
                Assert.Empty(pending);
                break;
            }
        }

        return (status, Encoding.UTF8.GetString(output.WrittenSpan), state);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DataReader_DotStuffingAndTerminator_WholeOrByteByByte(bool byteByByte)
    {
        var (status, content, _) = ReadData("Subject: x\r\n\r\n..leading\r\n.\r\n", byteByByte: byteByByte);
        Assert.Equal(OperationStatus.Done, status);
        Assert.Equal("Subject: x\r\n\r\n.leading\r\n", content);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DataReader_BareLf_StoredAsCrLf(bool byteByByte)
    {
        var (status, content, state) = ReadData("a\nb\r\n.\r\n", byteByByte: byteByByte);
        Assert.Equal(OperationStatus.Done, status);
        Assert.Equal("a\r\nb\r\n", content);
        Assert.Equal(1, state.BareLineEnds);
    }

    /// <summary>
    /// The published SMTP smuggling end-of-data sequences (SEC Consult, 2023): none ends the data; the whole input up to
    /// the real CRLF.CRLF is one message, stored with CRLF line ends only (requirements §11.8).
    /// </summary>
    [Theory]
    [InlineData("\n.\n", "\r\n.\r\n")]
    [InlineData("\n.\r\n", "\r\n.\r\n")]
    [InlineData("\r.\r\n", "\r\n.\r\n")]
    [InlineData("\r\n.\r", "\r\n\r\n")]
    [InlineData("\r\n.\n", "\r\n\r\n")]
    [InlineData("\r\n\x00.\r\n", "\r\n\x00.\r\n")]
    public void DataReader_SmugglingSequences_NeverEndTheData_OneMessage(string sequence, string stored)
    {
        var smuggled = "Subject: first\r\n\r\nfirst" + sequence + "MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@managed.test>\r\nDATA\r\n" +
                       "Subject: second\r\n\r\nsecond\r\n.\r\n";
        foreach (var byteByByte in new[] { false, true })
        {
            var (status, content, _) = ReadData(smuggled, max: 10_000, byteByByte: byteByByte);
            Assert.Equal(OperationStatus.Done, status);
            Assert.Equal("Subject: first\r\n\r\nfirst" + stored + "MAIL FROM:<evil@attacker.test>\r\nRCPT TO:<victim@managed.test>\r\nDATA\r\nSubject: second\r\n\r\nsecond\r\n",
                content);
            Assert.DoesNotContain('\r', content.Replace("\r\n", string.Empty, StringComparison.Ordinal));
            Assert.DoesNotContain('\n', content.Replace("\r\n", string.Empty, StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData(new[] { "a\rb", "\nc" }, "a\r\nb\r\nc")]
    [InlineData(new[] { "a\r", "\nb" }, "a\r\nb")]
    [InlineData(new[] { "a\r", "b\n" }, "a\r\nb\r\n")]
    [InlineData(new[] { "a\r\n.\r\n", "b\r" }, "a\r\n.\r\nb\r\n")]
    public void DataReader_BdatChunks_BareLineEndsStoredAsCrLf_AcrossChunks(string[] chunks, string stored)
    {
        var output = new ArrayBufferWriter<byte>();
        var state = new DataState();
        foreach (var chunk in chunks)
        {
            DataReader.WriteChunk(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(chunk)), ref state, output, 1000);
        }

        DataReader.EndChunks(ref state, output, 1000);
        Assert.Equal(stored, Encoding.ASCII.GetString(output.WrittenSpan));
    }

    [Fact]
    public void DataReader_DotInsideLine_NotTerminator()
    {
        var (status, content, _) = ReadData("a.\r\n.b\r\nx\r\n.\r\n");
        Assert.Equal(OperationStatus.Done, status);
        Assert.Equal("a.\r\nb\r\nx\r\n", content);
    }

    [Fact]
    public void DataReader_NoTerminatorYet_NeedMoreData()
    {
        var (status, content, _) = ReadData("line one\r\nline tw");
        Assert.Equal(OperationStatus.NeedMoreData, status);
        Assert.Equal("line one\r\nline tw", content);
    }

    [Fact]
    public void DataReader_OverLimit_TooBigButReadToTheEnd()
    {
        var (status, content, state) = ReadData(new string('x', 50) + "\r\n" + new string('y', 50) + "\r\n.\r\n", max: 60);
        Assert.Equal(OperationStatus.Done, status);
        Assert.True(state.TooBig);
        Assert.True(content.Length <= 60);
    }

    [Fact]
    public void DataReader_LongLineInPieces_PassedThroughWhole()
    {
        var line = new string('z', 5000);
        var (status, content, _) = ReadData(line + "\r\n.\r\n", max: 10_000, byteByByte: true);
        Assert.Equal(OperationStatus.Done, status);
        Assert.Equal(line + "\r\n", content);
    }

    [Theory]
    [InlineData("NEVER", "NEVER")]
    [InlineData("never", "NEVER")]
    [InlineData("FAILURE", "FAILURE")]
    [InlineData("delay,SUCCESS", "SUCCESS,DELAY")]
    [InlineData("FAILURE,SUCCESS,DELAY", "SUCCESS,FAILURE,DELAY")]
    public void DsnNotify_Valid_NormalisedInRfcOrder(string value, string expected)
    {
        Assert.True(SmtpParser.TryParseDsnNotify(value, out var notify));
        Assert.Equal(expected, notify);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("NEVER,SUCCESS")]
    [InlineData("SUCCESS,SUCCESS")]
    [InlineData("SOMETIMES")]
    [InlineData("SUCCESS,")]
    public void DsnNotify_Invalid_Refused(string? value) => Assert.False(SmtpParser.TryParseDsnNotify(value, out _));

    [Theory]
    [InlineData("rfc822;alice@example.com", "rfc822;alice@example.com")]
    [InlineData("RFC822;a+2Bb@example.com", "RFC822;a+b@example.com")]
    [InlineData("utf-8;j+C3+B6rg@example.com", null)] // xtext carries ASCII only; a UTF-8 address needs RFC 6533's utf-8-addr-xtext
    [InlineData("rfc822;", null)]
    [InlineData(";a@b", null)]
    [InlineData("rfc822", null)]
    [InlineData("rfc 822;a@b", null)]
    [InlineData("rfc822;a=b@example.com", null)]
    public void DsnOriginalRecipient_TypeAndDecodedAddress(string value, string? expected)
    {
        Assert.Equal(expected is not null, SmtpParser.TryParseDsnOriginalRecipient(value, out var orcpt));
        if (expected is not null)
        {
            Assert.Equal(expected, orcpt);
        }
    }

    [Theory]
    [InlineData("QQ314159", "QQ314159")]
    [InlineData("id+2B1+20x", "id+1 x")]
    [InlineData("", null)]
    [InlineData("a=b", null)]
    [InlineData("+0A", null)]
    public void DsnEnvelopeId_XtextDecodedPrintable(string value, string? expected)
    {
        Assert.Equal(expected is not null, SmtpParser.TryParseDsnEnvelopeId(value, out var envid));
        if (expected is not null)
        {
            Assert.Equal(expected, envid);
        }
    }

    [Fact]
    public void DsnEnvelopeId_Over100Characters_Refused() => Assert.False(SmtpParser.TryParseDsnEnvelopeId(new string('x', 101), out _));

    [Theory]
    [InlineData("FULL", "FULL")]
    [InlineData("hdrs", "HDRS")]
    public void DsnRet_FullOrHdrs(string value, string expected)
    {
        Assert.True(SmtpParser.TryParseDsnRet(value, out var ret));
        Assert.Equal(expected, ret);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("ALL")]
    public void DsnRet_Other_Refused(string? value) => Assert.False(SmtpParser.TryParseDsnRet(value, out _));
}
