namespace Gateway.Testing;

/// <summary>Polling for conditions that become true asynchronously (propagation, delivery).</summary>
public static class Eventually
{
    /// <summary>Waits until <paramref name="condition"/> holds; returns the time it took, or throws after <paramref name="timeout"/>.</summary>
    public static async Task<TimeSpan> WaitAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var started = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            if (await condition().ConfigureAwait(false))
            {
                return started.Elapsed;
            }

            if (started.Elapsed > timeout)
            {
                throw new TimeoutException($"timed out after {timeout.TotalSeconds:F1}s waiting for {what}");
            }

            await Task.Delay(10).ConfigureAwait(false);
        }
    }

    public static Task<TimeSpan> WaitAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        WaitAsync(() => Task.FromResult(condition()), timeout, what);
}
