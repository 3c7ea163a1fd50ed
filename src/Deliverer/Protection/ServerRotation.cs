namespace Gateway.Deliverer.Protection;

/// <summary>Why a scanning engine gave no verdict (metric tag <c>reason</c>).</summary>
public static class ScannerFailureReasons
{
    /// <summary>Slower than its timeout.</summary>
    public const string Timeout = "timeout";

    /// <summary>Not reachable (connection refused, reset, host unknown).</summary>
    public const string Unavailable = "unavailable";

    /// <summary>It answered, but with an error or something the client cannot read.</summary>
    public const string Error = "error";
}

/// <summary>Every server of an engine failed for this message; the caller decides (451 or pass, requirements §9).</summary>
public sealed class ScannerException : Exception
{
    public ScannerException(string engine, string reason, string detail)
        : base($"{engine}: {detail}")
    {
        Engine = engine;
        Reason = reason;
    }

    public ScannerException() : this("scanner", ScannerFailureReasons.Error, "failed") { }

    public ScannerException(string message) : this("scanner", ScannerFailureReasons.Error, message) { }

    public ScannerException(string message, Exception innerException) : base(message, innerException)
    {
        Engine = "scanner";
        Reason = ScannerFailureReasons.Error;
    }

    /// <summary><c>rspamd</c> or <c>clamd</c>.</summary>
    public string Engine { get; }

    /// <summary>One of <see cref="ScannerFailureReasons"/>.</summary>
    public string Reason { get; }
}

/// <summary>
/// The order in which one message tries an engine's servers: round robin over the servers that answered lately (so
/// several servers share the load), then the ones that failed within <c>backoff</c> (so one dead server costs a
/// connection attempt once per backoff, not once per message, and still serves when it is all there is).
/// </summary>
public sealed class ServerRotation<T>
{
    private readonly IReadOnlyList<T> _servers;
    private readonly TimeSpan _backoff;
    private readonly TimeProvider _clock;
    private readonly long[] _downUntil;
    private int _next = -1;

    public ServerRotation(IReadOnlyList<T> servers, TimeSpan backoff, TimeProvider clock)
    {
        ArgumentNullException.ThrowIfNull(servers);
        ArgumentNullException.ThrowIfNull(clock);
        _servers = servers;
        _backoff = backoff;
        _clock = clock;
        _downUntil = new long[servers.Count];
    }

    public IReadOnlyList<T> Servers => _servers;

    /// <summary>The servers for the next message, in the order to try them.</summary>
    public List<(int Index, T Server)> Order()
    {
        var n = _servers.Count;
        var start = n == 0 ? 0 : (int)((uint)Interlocked.Increment(ref _next) % (uint)n);
        var now = _clock.GetTimestamp();
        var up = new List<(int, T)>(n);
        List<(int, T)>? down = null;
        for (var k = 0; k < n; k++)
        {
            var i = (start + k) % n;
            if (Volatile.Read(ref _downUntil[i]) > now)
            {
                (down ??= []).Add((i, _servers[i]));
            }
            else
            {
                up.Add((i, _servers[i]));
            }
        }

        if (down is not null)
        {
            up.AddRange(down);
        }

        return up;
    }

    public void Failed(int index) =>
        Volatile.Write(ref _downUntil[index], _clock.GetTimestamp() + (long)(_backoff.TotalSeconds * _clock.TimestampFrequency));

    public void Succeeded(int index) => Volatile.Write(ref _downUntil[index], 0);
}
