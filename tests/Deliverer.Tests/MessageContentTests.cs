using System.Text;
using Gateway.Deliverer.Intake;

namespace Deliverer.Tests;

/// <summary>What the intake's content rules see of a message: the decoded subject and every attachment's file name (no sockets).</summary>
[Trait("Kind", "Unit")]
public sealed class MessageContentTests
{
    private static MessageContent Parse(string message) => MessageContent.Parse(Encoding.UTF8.GetBytes(message));

    [Fact]
    public void Parse_EncodedSubject_Decoded()
    {
        var c = Parse("Subject: =?UTF-8?B?5Lya6K2w44Gu5qGI5YaF?= and =?ISO-8859-1?Q?caf=E9?=\r\n\r\nbody\r\n");
        Assert.Equal("会議の案内 and café", c.Subject);
        Assert.Empty(c.AttachmentNames);
    }

    [Fact]
    public void Parse_NestedMultipart_Rfc2231AndContentTypeName_AllAttachmentNames()
    {
        var c = Parse(
            "Subject: files\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"o\"\r\n\r\n" +
            "--o\r\nContent-Type: multipart/alternative; boundary=\"i\"\r\n\r\n--i\r\nContent-Type: text/plain\r\n\r\nhi\r\n--i\r\nContent-Type: text/html\r\n\r\n<p>hi</p>\r\n--i--\r\n" +
            "--o\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=UTF-8''%E8%AB%8B%E6%B1%82%E6%9B%B8.EXE\r\n\r\nAAAA\r\n" +
            "--o\r\nContent-Type: application/zip; name=\"archive.zip\"\r\n\r\nAAAA\r\n" +
            "--o\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"forwarded.eml\"\r\n\r\nSubject: inner\r\n\r\ninner body\r\n" +
            "--o--\r\n");
        Assert.Equal("files", c.Subject);
        Assert.Equal(["請求書.EXE", "archive.zip", "forwarded.eml"], c.AttachmentNames);
    }

    [Fact]
    public void Parse_AttachmentInsideAttachedMessages_NamedToo_DepthBounded()
    {
        static string Wrap(string inner, int n) =>
            $"Subject: level {n}\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b{n}\"\r\n\r\n" +
            $"--b{n}\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n" +
            $"--b{n}\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--b{n}--\r\n";
        var payload = "Subject: payload\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"p\"\r\n\r\n" +
                      "--p\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"invoice.exe\"\r\n\r\nAAAA\r\n--p--\r\n";

        Assert.Equal(["invoice.exe"], Parse(Wrap(Wrap(payload, 2), 1)).AttachmentNames);

        // Deeper than MaxNestedMessages: not opened (bounded work per message), the outer levels still are.
        var deep = payload;
        for (var i = MessageContent.MaxNestedMessages + 2; i >= 1; i--)
        {
            deep = Wrap(deep, i);
        }

        Assert.Empty(Parse(deep).AttachmentNames);
    }

    [Fact]
    public void Parse_NoHeadersOrGarbage_EmptyContent_NoThrow()
    {
        Assert.Equal(string.Empty, Parse("\r\njust a body\r\n").Subject);
        var garbage = MessageContent.Parse([0, 1, 2, 255, 254, 13, 10, 13, 10, 0]);
        Assert.Empty(garbage.AttachmentNames);
    }
}
