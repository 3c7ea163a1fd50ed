namespace Gateway.Deliverer.Intake;

/// <summary>
/// The per-client cap on bytes held in unfinished spools in this process (requirements §11, bounded memory; docs/reliability.md
/// "Hostile sender"): what a session spools goes to Redis while it is received, so one client with many slow sessions could
/// otherwise fill Redis (shared with the queue) up to <c>MaxSessions</c> × <c>MaxMessageSize</c>. The client is the real one
/// (XFORWARD ADDR, else the peer). Only messages that spill to Redis (<see cref="MessageBuffer.Spilled"/>) ever come here,
/// once per piece of 512 kB (the buffer keeps what it took and gives it back when it is disposed): the small-message path
/// does no new work. A message that would pass the cap is refused with
/// <c>452 4.3.1</c> at its end and its pieces are removed at once.
/// </summary>
public sealed class SpoolQuota(DelivererOptions options)
{
    private readonly Dictionary<string, long> _held = new(StringComparer.Ordinal);

    /// <summary>The cap: <see cref="DelivererOptions.MaxSpoolBytesPerClient"/>, or twice the message size limit when that is 0.</summary>
    public long Cap { get; } = options.MaxSpoolBytesPerClient > 0 ? options.MaxSpoolBytesPerClient : 2 * options.MaxMessageSize;

    /// <summary>The bytes <paramref name="client"/> holds in unfinished spools now.</summary>
    public long Held(string client)
    {
        lock (_held)
        {
            return _held.GetValueOrDefault(client);
        }
    }

    /// <summary>Takes <paramref name="bytes"/> more of <paramref name="client"/>'s share; false when that would pass the cap (nothing is taken then).</summary>
    public bool TryTake(string client, long bytes)
    {
        lock (_held)
        {
            var held = _held.GetValueOrDefault(client);
            if (held + bytes > Cap)
            {
                return false;
            }

            _held[client] = held + bytes;
            return true;
        }
    }

    /// <summary>Gives back what a message of <paramref name="client"/> took (it is stored, refused or abandoned).</summary>
    public void Give(string client, long bytes)
    {
        lock (_held)
        {
            var left = _held.GetValueOrDefault(client) - bytes;
            if (left <= 0)
            {
                _held.Remove(client);
            }
            else
            {
                _held[client] = left;
            }
        }
    }
}
