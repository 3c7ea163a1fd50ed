namespace Gateway.Core.Storage;

/// <summary>
/// One copy's content over a shared body (requirements §11, bounded memory; docs/architecture.md "Bodies in pieces"): the
/// copy's own bytes in front (<c>prefix</c>: a rewritten header section, a DKIM-Signature field), then the shared body from
/// <c>from</c> on. Read-only and seekable like the body's own stream, so MimeKit's persistent parser keeps offsets into it;
/// only the prefix is in memory, the body is read block by block.
/// </summary>
public sealed class SplicedStream : ReadOnlySeekableStream
{
    private readonly byte[] _prefix;
    private readonly Stream _body;
    private readonly long _from;

    /// <param name="prefix">The copy's own bytes, read first.</param>
    /// <param name="body">The shared body (seekable); disposed with this stream.</param>
    /// <param name="from">The offset in <paramref name="body"/> where the rest of the copy starts.</param>
    public SplicedStream(byte[] prefix, Stream body, long from)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        ArgumentNullException.ThrowIfNull(body);
        ArgumentOutOfRangeException.ThrowIfNegative(from);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(from, body.Length);
        _prefix = prefix;
        _body = body;
        _from = from;
    }

    public override long Length => _prefix.Length + _body.Length - _from;

    public override int Read(Span<byte> buffer)
    {
        if (Position < _prefix.Length)
        {
            return FromPrefix(buffer);
        }

        _body.Position = _from + Position - _prefix.Length;
        var n = _body.Read(buffer);
        Position += n;
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (Position < _prefix.Length)
        {
            return FromPrefix(buffer.Span);
        }

        _body.Position = _from + Position - _prefix.Length;
        var n = await _body.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Position += n;
        return n;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _body.Dispose();
        }

        base.Dispose(disposing);
    }

    private int FromPrefix(Span<byte> buffer)
    {
        var n = Math.Min(buffer.Length, _prefix.Length - (int)Position);
        _prefix.AsSpan((int)Position, n).CopyTo(buffer);
        Position += n;
        return n;
    }
}
