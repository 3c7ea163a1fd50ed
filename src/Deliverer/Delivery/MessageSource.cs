using Gateway.Core.Delivery;
using Gateway.Core.Storage;
using MimeKit;

namespace Gateway.Deliverer.Delivery;

/// <summary>
/// The content of a message being delivered (requirements §11, bounded memory): the bytes of an entry that holds its own
/// body (a small message, a DKIM-signed or scanned copy, an entry written by an earlier version), or a shared body read
/// from Redis as a stream (<see cref="SharedBodyStream"/>): MimeKit parses it in persistent mode, so the parts stay
/// offsets into the stream and MailKit reads them block by block as it sends them. A delivery then holds the header
/// section and a block, not the message. A DSN gets at most <see cref="SharedBodies.DsnContentLimit"/> bytes of it, all it can return.
/// </summary>
internal sealed class MessageSource(MessageQueue queue, QueuedMessage message, byte[]? bytes) : IDisposable
{
    private SharedBodyStream? _stream;
    private byte[]? _dsnContent;

    /// <summary>The message parsed for MailKit: from memory, or over the shared body's stream in persistent mode.</summary>
    public async Task<MimeMessage> LoadMimeAsync(CancellationToken cancellationToken)
    {
        if (bytes is not null)
        {
            // Persistent over the bytes already in memory: the parts stay offsets into them instead of copies, and parsing a
            // buffer needs no asynchronous reads. The stream is not disposed: MailKit reads the parts from it as it sends.
            return MimeMessage.Load(ParserOptions.Default, new MemoryStream(bytes, writable: false), persistent: true, cancellationToken);
        }

        _stream?.Dispose();
        _stream = await queue.OpenSharedBodyAsync(BodyId).ConfigureAwait(false) ?? throw Missing();
        return await MimeMessage.LoadAsync(ParserOptions.Default, _stream, persistent: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The content a DSN may return (the whole message when it is small, else its beginning).</summary>
    public async Task<ReadOnlyMemory<byte>> DsnContentAsync()
    {
        if (bytes is not null)
        {
            return bytes;
        }

        return _dsnContent ??= await queue.ReadSharedBodyHeadAsync(BodyId, SharedBodies.DsnContentLimit).ConfigureAwait(false) ?? throw Missing();
    }

    public void Dispose() => _stream?.Dispose();

    private string BodyId => message.BodyRef ?? throw new InvalidOperationException($"message {message.Domain}/{message.Id} has neither a body nor a shared body");

    // Never an empty message in place of a lost body: the attempt fails (a deferral) and the message expires at its lifetime.
    private InvalidOperationException Missing() => new($"the shared body {message.BodyRef} of message {message.Domain}/{message.Id} is missing");
}
