using StackExchange.Redis;

namespace Gateway.Core.Storage;

/// <summary>
/// A read-only, seekable view of a body stored in Redis (a shared body, or a spool being checked), read in blocks with
/// <c>GETRANGE</c> (requirements §11, bounded memory): at most one block is held, whatever the message's size. MimeKit's
/// parser in persistent mode keeps offsets into this stream instead of copies of the parts, and MailKit then writes the
/// parts by reading them back, so a delivery holds the header section and a block or two, not the message.
/// <para>
/// The length is read once when the stream is opened; a body is never changed once named by a queue entry, so the blocks
/// read later belong to the same bytes. A body removed meanwhile (the last reference released) reads as an error, never
/// as a shorter message.
/// </para>
/// </summary>
public sealed class SharedBodyStream : ReadOnlySeekableStream
{
    /// <summary>
    /// The size of one <c>GETRANGE</c>: below the large object heap's 85,000 bytes, so each block read is short-lived gen0
    /// garbage instead of a large object that waits for a gen2 collection (bench/deliverer (M): with 256 kB blocks, ten 20 MB
    /// messages read by rspamd, clamd and the delivery left the Deliverer at 2.0× their size, mostly uncollected blocks).
    /// </summary>
    public const int BlockSize = 64 * 1024;

    private readonly IDatabase _db;
    private readonly RedisKey _key;
    private readonly long _length;
    private readonly int _blockSize;
    private byte[]? _block;
    private long _blockStart = -1;

    private SharedBodyStream(IDatabase db, RedisKey key, long length, int blockSize)
    {
        _db = db;
        _key = key;
        _length = length;
        _blockSize = blockSize;
    }

    /// <summary>Opens the body under <paramref name="key"/>; null when the key does not exist.</summary>
    public static async Task<SharedBodyStream?> OpenAsync(IDatabase db, RedisKey key)
    {
        ArgumentNullException.ThrowIfNull(db);
        var exists = db.KeyExistsAsync(key);
        var length = db.StringLengthAsync(key);
        return await exists.ConfigureAwait(false) ? new SharedBodyStream(db, key, await length.ConfigureAwait(false), BlockSize) : null;
    }

    /// <summary>
    /// The first <paramref name="max"/> bytes of the body under <paramref name="key"/> from <paramref name="from"/> on (a DSN's
    /// returned content needs no more); null when it is gone.
    /// </summary>
    public static async Task<byte[]?> ReadHeadAsync(IDatabase db, RedisKey key, int max, long from = 0)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(max);
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        var exists = db.KeyExistsAsync(key);
        var head = db.StringGetRangeAsync(key, from, from + max - 1);
        return await exists.ConfigureAwait(false) ? (byte[])(await head.ConfigureAwait(false))! ?? [] : null;
    }

    public override long Length => _length;

    public override int Read(Span<byte> buffer)
    {
        if (!Cached())
        {
            Fill(_db.StringGetRange(_key, BlockStart, BlockStart + _blockSize - 1));
        }

        return CopyOut(buffer);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (!Cached())
        {
            Fill(await _db.StringGetRangeAsync(_key, BlockStart, BlockStart + _blockSize - 1).ConfigureAwait(false));
        }

        return CopyOut(buffer.Span);
    }

    private long BlockStart => Position / _blockSize * _blockSize;

    /// <summary>True when nothing needs reading: the end, or the block holding the position is here.</summary>
    private bool Cached() => Position >= _length || (_block is not null && _blockStart == BlockStart);

    private void Fill(RedisValue value)
    {
        var bytes = (byte[]?)value ?? [];
        var expected = Math.Min(_blockSize, _length - BlockStart);
        if (bytes.Length < expected)
        {
            // The body went away (or shrank) under the reader: never a shorter message.
            throw new IOException($"the body {_key} ended at {BlockStart + bytes.Length} of {_length} bytes");
        }

        _block = bytes;
        _blockStart = BlockStart;
    }

    private int CopyOut(Span<byte> buffer)
    {
        if (Position >= _length || buffer.Length == 0)
        {
            return 0;
        }

        var at = (int)(Position - _blockStart);
        var n = Math.Min(buffer.Length, (int)Math.Min(_block!.Length - at, _length - Position));
        _block.AsSpan(at, n).CopyTo(buffer);
        Position += n;
        return n;
    }
}
