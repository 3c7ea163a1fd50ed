using Gateway.Core.Storage;
using Gateway.Testing;
using StackExchange.Redis;

namespace Gateway.Core.Tests;

/// <summary>
/// Bodies in pieces (requirements §11, bounded memory) against a real redis-server: the spool is appended, committed in one
/// script only when complete, and read back block by block.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class SharedBodyStreamTests
{
    private static byte[] Bytes(int size)
    {
        var b = new byte[size];
        new Random(size).NextBytes(b);
        return b;
    }

    [Fact]
    public async Task Spool_AppendedInPieces_CommittedWithItsLength_ReadBackBlockByBlockAndSeekable()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var mux = await redis.ConnectAsync();
        var db = mux.GetDatabase();
        var body = Bytes((SharedBodyStream.BlockSize * 3) + 12345);
        for (var at = 0; at < body.Length; at += 100_000)
        {
            await SharedBodies.AppendSpoolAsync(db, "m1", body.AsMemory(at, Math.Min(100_000, body.Length - at)));
        }

        Assert.True(await db.KeyTimeToLiveAsync(RedisKeys.SharedBodySpool("m1")) is { } ttl && ttl <= SharedBodies.SpoolTtl);
        Assert.False(await SharedBodies.CommitSpoolAsync(db, "m1", body.Length + 1, ["d.test|m1"], TimeSpan.FromDays(1)), "a spool of the wrong length is not committed");
        Assert.False(await db.KeyExistsAsync(RedisKeys.SharedBodySpool("m1")), "and it is removed");

        for (var at = 0; at < body.Length; at += 100_000)
        {
            await SharedBodies.AppendSpoolAsync(db, "m2", body.AsMemory(at, Math.Min(100_000, body.Length - at)));
        }

        Assert.True(await SharedBodies.CommitSpoolAsync(db, "m2", body.Length, ["a.test|m2", "b.test|m2-0"], TimeSpan.FromDays(1)));
        Assert.False(await db.KeyExistsAsync(RedisKeys.SharedBodySpool("m2")));
        Assert.Equal(2, await db.SetLengthAsync(RedisKeys.SharedBodyRefs("m2")));
        Assert.True(await db.KeyTimeToLiveAsync(RedisKeys.SharedBody("m2")) > TimeSpan.FromHours(23));

        await using var stream = (await SharedBodyStream.OpenAsync(db, RedisKeys.SharedBody("m2")))!;
        Assert.Equal(body.Length, stream.Length);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy, 7000); // reads that cross block boundaries
        Assert.True(copy.ToArray().AsSpan().SequenceEqual(body));

        stream.Seek(SharedBodyStream.BlockSize - 3, SeekOrigin.Begin);
        var six = new byte[6];
        Assert.Equal(3, stream.Read(six, 0, 6)); // to the end of the block, then the next read takes the next block
        Assert.Equal(3, stream.Read(six, 3, 3));
        Assert.True(six.AsSpan().SequenceEqual(body.AsSpan(SharedBodyStream.BlockSize - 3, 6)));
        stream.Seek(-10, SeekOrigin.End);
        Assert.Equal(10, await stream.ReadAsync(new byte[100]));
        Assert.Equal(0, await stream.ReadAsync(new byte[100]));

        var head = await SharedBodyStream.ReadHeadAsync(db, RedisKeys.SharedBody("m2"), 1000);
        Assert.True(head!.AsSpan().SequenceEqual(body.AsSpan(0, 1000)));
        Assert.Null(await SharedBodyStream.OpenAsync(db, RedisKeys.SharedBody("gone")));
        Assert.Null(await SharedBodyStream.ReadHeadAsync(db, RedisKeys.SharedBody("gone"), 1000));
    }

    [Fact]
    public async Task Stream_BodyRemovedWhileRead_ThrowsInsteadOfAShorterMessage()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var mux = await redis.ConnectAsync();
        var db = mux.GetDatabase();
        var body = Bytes(SharedBodyStream.BlockSize * 2);
        await SharedBodies.StoreAsync(db, "m", body, ["d.test|m"], TimeSpan.FromDays(1));
        await using var stream = (await SharedBodyStream.OpenAsync(db, RedisKeys.SharedBody("m")))!;
        Assert.Equal(10, await stream.ReadAsync(new byte[10]));

        Assert.True(await SharedBodies.ReleaseAsync(db, "m", "d.test|m"));
        stream.Position = SharedBodyStream.BlockSize;
        await Assert.ThrowsAsync<IOException>(async () => await stream.ReadExactlyAsync(new byte[10]));
    }

    [Fact]
    public async Task SplicedStream_PrefixThenBodyFromOffset_ReadAndSeekAsOneStream_CopyHeadTheSame()
    {
        await using var redis = await RedisServer.StartAsync();
        await using var mux = await redis.ConnectAsync();
        var db = mux.GetDatabase();
        var body = Bytes((SharedBodyStream.BlockSize * 2) + 999);
        await SharedBodies.StoreAsync(db, "s", body, ["d.test|s"], TimeSpan.FromDays(1));
        var prefix = "Received: from x\r\nX-Spam-Score: 1.00\r\n"u8.ToArray();
        const int From = 1000;
        byte[] expected = [.. prefix, .. body.AsSpan(From)];

        using var stream = new SplicedStream(prefix, (await SharedBodyStream.OpenAsync(db, RedisKeys.SharedBody("s")))!, From);
        Assert.Equal(expected.Length, stream.Length);
        var all = new MemoryStream();
        var buffer = new byte[7777];
        int n;
        while ((n = await stream.ReadAsync(buffer)) > 0)
        {
            all.Write(buffer, 0, n);
        }

        Assert.True(all.ToArray().AsSpan().SequenceEqual(expected), "prefix then the body from the offset");

        // Back across the seam, and into a later block.
        stream.Position = prefix.Length - 3;
        var across = new byte[10];
        await stream.ReadExactlyAsync(across);
        Assert.Equal(expected.AsSpan(prefix.Length - 3, 10).ToArray(), across);
        stream.Seek(-5, SeekOrigin.End);
        Assert.Equal(expected[^5..], await ReadRestAsync(stream));

        // What a DSN reads: the same bytes, cut at the limit (also inside the prefix).
        Assert.Equal(expected[..5000], await SharedBodies.ReadCopyHeadAsync(db, "s", prefix, From, 5000));
        Assert.Equal(prefix[..10], await SharedBodies.ReadCopyHeadAsync(db, "s", prefix, From, 10));
        Assert.True(await SharedBodies.ReleaseAsync(db, "s", "d.test|s"));
        Assert.Null(await SharedBodies.ReadCopyHeadAsync(db, "s", prefix, From, 10));
    }

    private static async Task<byte[]> ReadRestAsync(Stream stream)
    {
        var rest = new MemoryStream();
        await stream.CopyToAsync(rest);
        return rest.ToArray();
    }
}
