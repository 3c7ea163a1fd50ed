using System.Buffers;
using System.Text;
using Gateway.PolicyDaemon.Protocol;

namespace PolicyDaemon.Tests;

[Trait("Kind", "Unit")]
public sealed class NetstringTests
{
    private static (OperationStatus Status, string? Payload, NetstringError Error, long Left) Read(ReadOnlySequence<byte> buffer, int max = 1000)
    {
        var status = Netstring.TryRead(ref buffer, max, out var payload, out var error);
        return (status, status == OperationStatus.Done ? Encoding.UTF8.GetString(payload) : null, error, buffer.Length);
    }

    [Theory]
    [InlineData("23:domains managed.example,", "domains managed.example")]
    [InlineData("0:,", "")]
    [InlineData("12:hello world!,", "hello world!")]
    public void TryRead_Valid_PayloadAndConsumed(string wire, string payload)
    {
        foreach (var buffer in new[] { Bytes.Of(wire), Bytes.Segmented(wire) })
        {
            var (status, p, error, left) = Read(buffer);
            Assert.Equal(OperationStatus.Done, status);
            Assert.Equal(payload, p);
            Assert.Equal(NetstringError.None, error);
            Assert.Equal(0, left);
        }
    }

    [Fact]
    public void TryRead_EveryPrefix_NeedMoreData()
    {
        const string Wire = "26:transport John@Example.COM,";
        for (var n = 0; n < Wire.Length; n++)
        {
            var (status, _, _, left) = Read(Bytes.Segmented(Wire[..n]));
            Assert.Equal(OperationStatus.NeedMoreData, status);
            Assert.Equal(n, left);
        }
    }

    [Fact]
    public void TryRead_TwoInBuffer_OneAtATime()
    {
        var buffer = Bytes.Of("9:domains a,11:transport *,");
        Assert.Equal(OperationStatus.Done, Netstring.TryRead(ref buffer, 100, out var first, out _));
        Assert.Equal("domains a", Encoding.UTF8.GetString(first));
        Assert.Equal(OperationStatus.Done, Netstring.TryRead(ref buffer, 100, out var second, out _));
        Assert.Equal("transport *", Encoding.UTF8.GetString(second));
        Assert.True(buffer.IsEmpty);
    }

    [Theory]
    [InlineData(":abc,", NetstringError.BadLength)]
    [InlineData("x:abc,", NetstringError.BadLength)]
    [InlineData("03:abc,", NetstringError.BadLength)]
    [InlineData("-3:abc,", NetstringError.BadLength)]
    [InlineData("3 :abc,", NetstringError.BadLength)]
    [InlineData("3:abc;", NetstringError.MissingComma)]
    [InlineData("2:abc,", NetstringError.MissingComma)]
    [InlineData("99999999999:", NetstringError.TooLong)]
    [InlineData("1001:", NetstringError.TooLong)]
    public void TryRead_Malformed_InvalidData(string wire, NetstringError expected)
    {
        foreach (var buffer in new[] { Bytes.Of(wire), Bytes.Segmented(wire) })
        {
            var (status, _, error, _) = Read(buffer);
            Assert.Equal(OperationStatus.InvalidData, status);
            Assert.Equal(expected, error);
        }
    }

    [Fact]
    public void TryRead_OversizeLength_RefusedBeforePayloadArrives()
    {
        // Only the length has arrived: refused at once, so nothing of the 5 MB is ever buffered.
        var (status, _, error, _) = Read(Bytes.Of("5000000:"), max: 4096);
        Assert.Equal(OperationStatus.InvalidData, status);
        Assert.Equal(NetstringError.TooLong, error);
    }

    [Fact]
    public void Write_RoundTrips()
    {
        var writer = new ArrayBufferWriter<byte>();
        Netstring.Write(writer, "OK smtp:[127.0.0.1]:10025"u8);
        Netstring.Write(writer, ReadOnlySpan<byte>.Empty);

        Assert.Equal("25:OK smtp:[127.0.0.1]:10025,0:,", Encoding.ASCII.GetString(writer.WrittenSpan));
    }

    [Theory]
    [InlineData("domains example.com", "domains", "example.com")]
    [InlineData("transport John@Example.COM", "transport", "John@Example.COM")]
    [InlineData("transport \"a b\"@x.example", "transport", "\"a b\"@x.example")]
    public void SocketmapRequest_TryParse_NameAndKey(string payload, string name, string key)
    {
        Assert.True(SocketmapRequest.TryParse(Bytes.Segmented(payload), out var n, out var k));
        Assert.Equal(name, n);
        Assert.Equal(key, k);
    }

    [Theory]
    [InlineData("domains")]
    [InlineData(" example.com")]
    [InlineData("domains ")]
    [InlineData("")]
    [InlineData("dom\u0001ains x")]
    public void SocketmapRequest_TryParse_Malformed_False(string payload)
    {
        Assert.False(SocketmapRequest.TryParse(Bytes.Of(payload), out _, out _));
    }
}
