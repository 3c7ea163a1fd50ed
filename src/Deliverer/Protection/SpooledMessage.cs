namespace Gateway.Deliverer.Protection;

/// <summary>
/// A message received in pieces (requirements §11, bounded memory; docs/architecture.md "Bodies in pieces"), as the scanning
/// engines read it: its length and a way to open it from Redis as a stream read in blocks. Opened once per engine and per
/// server tried, so a failover to the next rspamd or clamd sends the message again from its first byte.
/// </summary>
/// <param name="open">Opens the message from its first byte; throws a Redis error (the client gets 451) when its pieces are gone.</param>
public sealed class SpooledMessage(long length, Func<Task<Stream>> open)
{
    public long Length { get; } = length;

    public Task<Stream> OpenAsync() => open();

    /// <summary>An HTTP request body streamed from Redis, with its Content-Length.</summary>
    public async Task<HttpContent> ContentAsync()
    {
        var content = new StreamContent(await OpenAsync().ConfigureAwait(false), 64 * 1024);
        content.Headers.ContentLength = Length;
        return content;
    }
}
