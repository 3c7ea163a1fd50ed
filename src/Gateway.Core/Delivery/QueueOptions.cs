using System.ComponentModel.DataAnnotations;
using Gateway.Core.Storage;

namespace Gateway.Core.Delivery;

/// <summary>
/// The delivery queue's schedule and retry settings (<c>Gateway:Queue</c>). Every program that touches
/// the queue (Deliverers, the ControlPlane) must use the same <see cref="ScheduleShards"/>.
/// </summary>
public sealed class QueueOptions
{
    public const string Section = "Gateway:Queue";

    /// <summary>
    /// How many schedule sorted sets (<c>gw:{sched:N}:due</c>) due work is spread over. On Redis Cluster
    /// each shard is its own hash slot, so several masters share the scheduling load.
    /// </summary>
    [Range(1, 1024)]
    public int ScheduleShards { get; set; } = RedisKeys.DefaultScheduleShards;

    /// <summary>
    /// How long a worker holds a message it took before another worker may take it. Renewed every third
    /// of this while the delivery runs, so it bounds how long a killed Deliverer's messages wait.
    /// </summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>requirements §6: the first retry is 5 minutes after the first failure.</summary>
    public TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Each later retry waits this many times the previous delay (Postfix doubles too).</summary>
    [Range(1.0, 10.0)]
    public double BackoffFactor { get; set; } = 2.0;

    /// <summary>The longest wait between two attempts (Postfix: <c>maximal_backoff_time</c>).</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromHours(4);

    /// <summary>requirements §6: how long a message is kept before it is bounced as expired (Postfix: <c>maximal_queue_lifetime</c>).</summary>
    public TimeSpan MaxLifetime { get; set; } = TimeSpan.FromDays(10);

    /// <summary>The name this host uses in EHLO, Received headers and DSNs (Reporting-MTA); empty: the machine's host name.</summary>
    public string? HostName { get; set; }

    public string EffectiveHostName => string.IsNullOrWhiteSpace(HostName) ? System.Net.Dns.GetHostName() : HostName;

    internal static bool IsValid(QueueOptions o) =>
        o.Lease >= TimeSpan.FromMilliseconds(500) && o.FirstRetryDelay > TimeSpan.Zero && o.MaxRetryDelay >= o.FirstRetryDelay && o.MaxLifetime > TimeSpan.Zero;
}
