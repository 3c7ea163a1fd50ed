using System.Buffers;
using Gateway.Core.Storage;
using StackExchange.Redis;

namespace Gateway.Deliverer.Intake;

/// <summary>
/// The content of one message being received (DATA or BDAT) with bounded memory (requirements §11; docs/architecture.md
/// "Bodies in pieces"): up to <see cref="SpillAt"/> bytes stay in memory (a small message is stored as before, in one
/// write); beyond that the message goes to Redis in pieces of about <see cref="PieceSize"/> as it arrives
/// (<see cref="SharedBodies.AppendSpoolAsync"/>), and only its first <see cref="SpillAt"/> bytes stay here: the header
/// section the intake's checks read (hop count, provider binding, subject, DSN content). The connection loop calls
/// <see cref="FlushAsync"/> between reads when <see cref="FlushDue"/>, so a session holds the head, one piece and one
/// read. The spool becomes the message's shared body only when the message is complete and stored
/// (<see cref="SharedBodies.CommitSpoolAsync"/>); disposing a buffer whose spool was not committed removes it.
/// </summary>
public sealed class MessageBuffer : IBufferWriter<byte>, IDisposable
{
    /// <summary>Bytes kept in memory before the message goes to Redis in pieces (the head).</summary>
    public const int DefaultSpillAt = 1024 * 1024;

    /// <summary>The size of one piece appended to the spool.</summary>
    public const int DefaultPieceSize = 512 * 1024;

    private readonly IDatabase? _db;
    private readonly PooledBufferWriter _head = new();
    private PooledBufferWriter? _piece;
    private long _spooled;
    private bool _committed;
    private long _quotaTaken;

    /// <summary>A buffer that keeps the whole message in memory (no Redis; unit tests and the default session).</summary>
    public MessageBuffer()
        : this(null, string.Empty)
    {
    }

    /// <summary>A buffer that spills message <paramref name="id"/> to <paramref name="db"/> beyond <paramref name="spillAt"/> bytes.</summary>
    public MessageBuffer(IDatabase? db, string id, int spillAt = DefaultSpillAt, int pieceSize = DefaultPieceSize)
    {
        _db = db;
        Id = id;
        SpillAt = spillAt;
        PieceSize = pieceSize;
    }

    /// <summary>The message id, which is also the id of the spool and of the shared body it becomes.</summary>
    public string Id { get; }

    public int SpillAt { get; }

    public int PieceSize { get; }

    /// <summary>The message goes to Redis in pieces (it grew beyond <see cref="SpillAt"/>).</summary>
    public bool Spilled => _piece is not null;

    /// <summary>A write to the spool failed: the message cannot be stored (the client gets 451), the rest is read and dropped.</summary>
    public bool Failed { get; private set; }

    /// <summary>The per-client cap on spooled bytes this message counts against, for <see cref="Client"/>; null: none.</summary>
    public SpoolQuota? Quota { get; init; }

    /// <summary>The real client (XFORWARD ADDR, else the peer) whose share of <see cref="Quota"/> the pieces take.</summary>
    public string Client { get; init; } = string.Empty;

    /// <summary>The message would pass its client's cap on spooled bytes: it is <see cref="Failed"/>, its pieces are removed.</summary>
    public bool OverBudget { get; private set; }

    /// <summary>The message's size so far.</summary>
    public long Length => _head.WrittenCount + (_piece is null ? 0 : _spooled - _head.WrittenCount + _piece.WrittenCount);

    /// <summary>The bytes in memory: the whole message when not <see cref="Spilled"/>, else its first <see cref="SpillAt"/> bytes or so.</summary>
    public ReadOnlySpan<byte> WrittenSpan => _head.WrittenSpan;

    /// <summary>The connection loop must call <see cref="FlushAsync"/> before it reads more.</summary>
    public bool FlushDue => _db is not null && !Failed && (_piece is null ? _head.WrittenCount >= SpillAt : _piece.WrittenCount >= PieceSize);

    public void Advance(int count)
    {
        if (_piece is not null)
        {
            if (!Failed)
            {
                _piece.Advance(count);
            }
        }
        else
        {
            _head.Advance(count);
        }
    }

    public Memory<byte> GetMemory(int sizeHint = 0) => Current.GetMemory(sizeHint);

    public Span<byte> GetSpan(int sizeHint = 0) => Current.GetSpan(sizeHint);

    /// <summary>Writes what is due to the spool: the head the first time, then the current piece. A failure marks the buffer <see cref="Failed"/>.</summary>
    public async Task FlushAsync()
    {
        if (_db is null || Failed)
        {
            return;
        }

        var bytes = _piece is null ? _head.WrittenCount : _piece.WrittenCount;
        if (Quota is { } quota && !quota.TryTake(Client, bytes))
        {
            // Over the client's cap (SpoolQuota): the rest is read and dropped, the pieces go now, the client gets 452.
            OverBudget = true;
            Failed = true;
            _piece?.Dispose();
            _piece ??= new PooledBufferWriter();
            if (_spooled > 0)
            {
                _ = SharedBodies.DiscardSpoolAsync(_db, Id, CommandFlags.FireAndForget);
            }

            return;
        }

        _quotaTaken += Quota is null ? 0 : bytes;
        try
        {
            if (_piece is null)
            {
                await SharedBodies.AppendSpoolAsync(_db, Id, _head.WrittenMemory).ConfigureAwait(false);
                _spooled = _head.WrittenCount;
                _piece = new PooledBufferWriter();
                return;
            }

            if (_piece.WrittenCount > 0)
            {
                await SharedBodies.AppendSpoolAsync(_db, Id, _piece.WrittenMemory).ConfigureAwait(false);
                _spooled += _piece.WrittenCount;
                _piece.Clear();
            }
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException or TimeoutException)
        {
            Failed = true;
            _piece?.Dispose();
            _piece ??= new PooledBufferWriter(); // the rest of the message is read and dropped
        }
    }

    /// <summary>The end of the message: the last piece goes to the spool. True when every byte is there (or nothing was spilled).</summary>
    public async Task<bool> CompleteAsync()
    {
        if (_piece is not null)
        {
            await FlushAsync().ConfigureAwait(false);
            // Nothing more is written: the piece's buffer goes back now, not when the session has stored the message (a scan
            // of a big message takes seconds).
            _piece.Dispose();
        }

        return !Failed;
    }

    /// <summary>
    /// The spool as a stream read in blocks (the scanners, DKIM signing, MIME parsing for the rules, without the message in
    /// memory); null when it is gone.
    /// </summary>
    public Task<SharedBodyStream?> OpenAsync() => _db is null ? Task.FromResult<SharedBodyStream?>(null) : SharedBodyStream.OpenAsync(_db, RedisKeys.SharedBodySpool(Id));

    /// <summary>The spool as a stream; a <see cref="RedisException"/> when it is gone or incomplete (the client gets 451).</summary>
    public async Task<Stream> OpenRequiredAsync()
    {
        var stream = await OpenAsync().ConfigureAwait(false);
        if (stream is null || stream.Length != Length)
        {
            stream?.Dispose();
            throw new RedisException($"the pieces of message {Id} are gone or incomplete");
        }

        return stream;
    }

    /// <summary>The spool is now the message's shared body (or was read into memory and is no longer needed): nothing to remove on dispose.</summary>
    public void Committed() => _committed = true;

    public void Dispose()
    {
        _head.Dispose();
        _piece?.Dispose();
        if (_quotaTaken > 0)
        {
            Quota!.Give(Client, _quotaTaken);
            _quotaTaken = 0;
        }

        if (_db is not null && _spooled > 0 && !_committed)
        {
            // An aborted or refused message: its pieces go now (and by their expiry if Redis is away).
            _ = SharedBodies.DiscardSpoolAsync(_db, Id, CommandFlags.FireAndForget);
        }

        _spooled = 0;
    }

    private IBufferWriter<byte> Current => _piece is not null ? (Failed ? Discard.Instance : _piece) : _head;

    /// <summary>Takes bytes and keeps none (the rest of a message whose spool failed).</summary>
    private sealed class Discard : IBufferWriter<byte>
    {
        public static readonly Discard Instance = new();

        [ThreadStatic]
        private static byte[]? _scratch;

        public void Advance(int count)
        {
        }

        public Memory<byte> GetMemory(int sizeHint = 0) => Scratch(sizeHint);

        public Span<byte> GetSpan(int sizeHint = 0) => Scratch(sizeHint);

        private static byte[] Scratch(int sizeHint) =>
            _scratch is { } s && s.Length >= Math.Max(sizeHint, 4096) ? s : _scratch = new byte[Math.Max(sizeHint, 64 * 1024)];
    }
}
