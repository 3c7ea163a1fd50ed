namespace Gateway.Deliverer.Intake;

/// <summary>What a <see cref="MessageBuffer"/> asks before it appends a piece to its spool in Redis.</summary>
public interface ISpoolBudget : IDisposable
{
    /// <summary>Takes <paramref name="bytes"/> more for this message; false when that would pass its client's cap (nothing is taken then).</summary>
    bool TryTake(long bytes);
}

/// <summary>
/// The per-client cap on bytes held in unfinished spools in this process (requirements §11, bounded memory; docs/reliability.md
/// "Hostile sender"): what a session spools goes to Redis while it is received, so one client with many slow sessions could
/// otherwise fill Redis (shared with the queue) up to <c>MaxSessions</c> × <c>MaxMessageSize</c>. The client is the real one
/// (XFORWARD ADDR, else the peer). Only messages that spill to Redis (<see cref="MessageBuffer.Spilled"/>) ever come here,
/// once per piece of 512 kB: the small-message path does no new work. A message that would pass the cap is refused with
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

    /// <summary>A budget for one message of <paramref name="client"/>; disposing it gives back what it took.</summary>
    public ISpoolBudget For(string client) => new Budget(this, client);

    private bool TryTake(string client, long bytes)
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

    private void Give(string client, long bytes)
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

    private sealed class Budget(SpoolQuota quota, string client) : ISpoolBudget
    {
        private long _taken;

        public bool TryTake(long bytes)
        {
            if (!quota.TryTake(client, bytes))
            {
                return false;
            }

            _taken += bytes;
            return true;
        }

        public void Dispose()
        {
            if (_taken > 0)
            {
                quota.Give(client, _taken);
                _taken = 0;
            }
        }
    }
}
