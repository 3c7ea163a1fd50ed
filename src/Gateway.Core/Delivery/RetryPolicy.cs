namespace Gateway.Core.Delivery;

/// <summary>
/// When to try again (requirements §6): the first retry <see cref="QueueOptions.FirstRetryDelay"/> after the first
/// failure, each later one <see cref="QueueOptions.BackoffFactor"/> times longer up to
/// <see cref="QueueOptions.MaxRetryDelay"/>, never past the message's expiry, so the last attempt falls at
/// <see cref="QueueOptions.MaxLifetime"/> (Postfix: <c>maximal_queue_lifetime</c>).
/// </summary>
public static class RetryPolicy
{
    /// <summary>The delay after the <paramref name="failures"/>-th failed attempt (1 = first failure).</summary>
    public static TimeSpan Delay(int failures, QueueOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var delay = options.FirstRetryDelay.TotalMilliseconds * Math.Pow(options.BackoffFactor, Math.Max(0, failures - 1));
        return delay >= options.MaxRetryDelay.TotalMilliseconds ? options.MaxRetryDelay : TimeSpan.FromMilliseconds(delay);
    }

    /// <summary>The message's expiry: after a failed attempt at or past it, pending recipients bounce as expired.</summary>
    public static DateTimeOffset ExpiresAt(DateTimeOffset createTime, QueueOptions options) => createTime + options.MaxLifetime;

    /// <summary>The next attempt after a failed one at <paramref name="now"/>, or null when the message has expired.</summary>
    public static DateTimeOffset? NextAttempt(DateTimeOffset createTime, int failures, DateTimeOffset now, QueueOptions options)
    {
        var expires = ExpiresAt(createTime, options);
        if (now >= expires)
        {
            return null;
        }

        var next = now + Delay(failures, options);
        return next < expires ? next : expires;
    }
}
