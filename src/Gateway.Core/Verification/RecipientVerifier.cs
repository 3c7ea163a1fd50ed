using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Gateway.Core.MessageLog;
using Gateway.Core.Relay;
using Gateway.Core.Snapshot;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Gateway.Core.Verification;

/// <summary>
/// Recipient verification at RCPT, one implementation for both front ends that judge RCPT (the PolicyDaemon's answer to
/// Postfix and the Deliverer's intake), so the same state gives the same answer: an inbound accept at a domain that turned
/// it on (<see cref="VerificationRules.Applies"/>) is checked against the cache in Redis; on a miss one probe
/// (<see cref="SmtpCallout"/>) is started, within the domain's fleet-wide rate, and awaited for at most
/// <see cref="VerificationOptions.ProbeWait"/>; a probe that takes longer finishes in the background and fills the cache
/// for the sender's retry. Concurrent questions about one recipient in one process share one probe. Redis unreachable:
/// <c>450 4.1.1</c> (never an accept of what might be refused, never a 550 from the gateway's own trouble).
/// </summary>
public sealed partial class RecipientVerifier : IDisposable
{
    public const string MeterName = "Gateway.Verification";

    private readonly VerificationCache _cache;
    private readonly SmtpCallout _callout;
    private readonly VerificationOptions _options;
    private readonly BufferedMessageLog? _log;
    private readonly TimeProvider _clock;
    private readonly ILogger<RecipientVerifier> _logger;
    private readonly ConcurrentDictionary<string, Lazy<Task<VerifyResult>>> _running = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();

    // The rate-limit warning once per domain and minute, not once per refused RCPT.
    private readonly ConcurrentDictionary<string, long> _warned = new(StringComparer.Ordinal);
    private readonly Counter<long> _answers;
    private readonly Counter<long> _probes;
    private readonly Histogram<double> _probeTime;
    private readonly Counter<long> _refreshes;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _refreshTried = new(StringComparer.Ordinal);

    public RecipientVerifier(VerificationCache cache, SmtpCallout callout, VerificationOptions options, TimeProvider clock, ILogger<RecipientVerifier> logger,
        IMeterFactory meters, BufferedMessageLog? log = null)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _cache = cache;
        _callout = callout;
        _options = options;
        _clock = clock;
        _logger = logger;
        _log = log;
        var meter = meters.Create(MeterName);
        _answers = meter.CreateCounter<long>("gateway.verification.answers", "{answer}",
            "Recipient verification answers at RCPT by source (cache, probe, pending, rate_limited, unavailable) and status (deliverable, undeliverable, unknown).");
        _probes = meter.CreateCounter<long>("gateway.verification.probes", "{probe}", "Callouts to customers' servers by status (deliverable, undeliverable, unknown).");
        _refreshes = meter.CreateCounter<long>("gateway.verification.refreshes", "{probe}",
            "Background probes renewing a cached positive answer older than Gateway:RecipientVerification:PositiveRefresh.");
        _probeTime = meter.CreateHistogram<double>("gateway.verification.probe.duration", "s", "Time of one callout, every address tried.");
    }

    /// <summary>Probes running in this process (tests, metrics).</summary>
    public int Running => _running.Count;

    /// <summary>
    /// <paramref name="decision"/> unchanged unless it is an inbound accept at a domain that verifies recipients; then the accept,
    /// a <c>550 5.1.1</c> refusal or a <c>450 4.1.1</c> try-later (<see cref="VerificationRules"/>).
    /// </summary>
    public async ValueTask<RelayDecision> ApplyAsync(RelayRequest request, RelayDecision decision, string program, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(decision);
        if (!VerificationRules.Applies(decision))
        {
            return decision;
        }

        var domain = decision.Domain!;
        var recipient = request.Recipient;
        var now = _clock.GetUtcNow();
        VerifyResult? cached;
        try
        {
            cached = await _cache.GetAsync(domain.Name, recipient, now).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return Unavailable(decision, domain.Name, e);
        }

        var key = domain.Name + "|" + VerificationCache.Field(recipient);
        if (cached is not null)
        {
            Count("cache", cached.Status);
            if (VerificationRules.NeedsRefresh(cached, domain.Config.Settings.RecipientVerification.EffectivePositiveTtl, _options.PositiveRefresh, now))
            {
                // Answered from the cache now; the renewal runs on its own (never on this RCPT's time).
                _ = RefreshAsync(key, domain, recipient, program, request, now);
            }

            return VerificationRules.Apply(decision, cached);
        }

        if (!_running.TryGetValue(key, out var probe))
        {
            bool allowed;
            try
            {
                allowed = await _cache.TryTakeProbeAsync(domain.Name, _options.MaxProbesPerDomainPerMinute, now).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                return Unavailable(decision, domain.Name, e);
            }

            if (!allowed)
            {
                Count("rate_limited", VerifyStatus.Unknown);
                var minute = now.ToUnixTimeSeconds() / 60;
                if (!_warned.TryGetValue(domain.Name, out var warned) || warned != minute)
                {
                    _warned[domain.Name] = minute;
                    LogRateLimited(_logger, domain.Name, _options.MaxProbesPerDomainPerMinute);
                }
                return VerificationRules.Later(decision, VerificationRules.RateLimited);
            }

            var mine = new Lazy<Task<VerifyResult>>(() => ProbeAndStoreAsync(key, domain, recipient, program, request), LazyThreadSafetyMode.ExecutionAndPublication);
            probe = _running.GetOrAdd(key, mine);
        }

        var task = probe.Value;
        try
        {
            var result = await task.WaitAsync(_options.ProbeWait, _clock, cancellationToken).ConfigureAwait(false);
            Count("probe", result.Status);
            return VerificationRules.Apply(decision, result);
        }
        catch (TimeoutException)
        {
            Count("pending", VerifyStatus.Unknown);
            return VerificationRules.Later(decision, VerificationRules.Pending);
        }
    }

    /// <summary>
    /// Renews an old positive answer in the background: one probe per recipient at a time in this process, at most one try per
    /// <see cref="VerificationOptions.TempfailTtl"/> per recipient here, within the domain's fleet-wide rate (a refresh that finds
    /// the minute's probes used waits for a later RCPT). What it learns is stored unless it is "unknown" (optimistic caching).
    /// </summary>
    private async Task RefreshAsync(string key, DomainEntry domain, string recipient, string program, RelayRequest request, DateTimeOffset now)
    {
        if (_running.ContainsKey(key) || (_refreshTried.TryGetValue(key, out var tried) && now - tried < _options.TempfailTtl))
        {
            return;
        }

        if (_refreshTried.Count >= _options.MaxEntriesPerDomain)
        {
            _refreshTried.Clear(); // a memory of recent tries, not a cache: bounded by forgetting
        }

        _refreshTried[key] = now;
        try
        {
            if (!await _cache.TryTakeProbeAsync(domain.Name, _options.MaxProbesPerDomainPerMinute, now).ConfigureAwait(false))
            {
                return;
            }

            var mine = new Lazy<Task<VerifyResult>>(() => ProbeAndStoreAsync(key, domain, recipient, program, request, refresh: true),
                LazyThreadSafetyMode.ExecutionAndPublication);
            if (_running.GetOrAdd(key, mine) == mine)
            {
                _refreshes.Add(1);
                await mine.Value.ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            LogStoreFailed(_logger, domain.Name, e.Message);
        }
    }

    private async Task<VerifyResult> ProbeAndStoreAsync(string key, DomainEntry domain, string recipient, string program, RelayRequest request, bool refresh = false)
    {
        // Off the caller's path: the RCPT that started it may be answered 450 long before this ends.
        await Task.Yield();
        var started = _clock.GetTimestamp();
        VerifyResult result;
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
            deadline.CancelAfter(_options.ProbeDeadline);
            try
            {
                result = await _callout.ProbeAsync(domain.Config, recipient, deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
            {
                result = new VerifyResult(VerifyStatus.Unknown, $"no answer within {_options.ProbeDeadline.TotalSeconds:0.#} s");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Any failure of a probe is "not known": the RCPT gets 450, the process lives on.
                LogProbeError(_logger, domain.Name, e);
                result = new VerifyResult(VerifyStatus.Unknown, VerificationRules.Clean("probe failed: " + e.Message));
            }

            var elapsed = _clock.GetElapsedTime(started);
            var status = Name(result.Status);
            _probes.Add(1, new KeyValuePair<string, object?>("status", status));
            _probeTime.Record(elapsed.TotalSeconds);
            LogProbe(_logger, domain.Name, recipient, status, result.Reply, elapsed.TotalMilliseconds);
            _log?.Post(new MessageLogEvent
            {
                Domain = domain.Name,
                Event = result.Status == VerifyStatus.Deliverable ? MessageLogEvents.Verified : MessageLogEvents.VerifyFailed,
                Time = _clock.GetUtcNow(),
                Direction = Mail.Direction.Inbound,
                Sender = request.Sender,
                Recipient = recipient,
                ClientAddress = request.ClientAddress,
                Host = result.Host,
                Reply = result.Reply,
                Detail = status,
                Program = program,
                PostfixQueueId = request.QueueId,
            });

            try
            {
                if (refresh && result.Status == VerifyStatus.Unknown)
                {
                    // Optimistic caching (Postfix): a refresh that learns nothing keeps the positive answer until it expires.
                    return result;
                }

                var lifetime = VerificationRules.Lifetime(result.Status, domain.Config.Settings.RecipientVerification, _options);
                await _cache.StoreAsync(domain.Name, recipient, result, lifetime, _options.MaxEntriesPerDomain, _clock.GetUtcNow()).ConfigureAwait(false);
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                LogStoreFailed(_logger, domain.Name, e.Message);
            }

            return result;
        }
        finally
        {
            _running.TryRemove(key, out _);
        }
    }

    private RelayDecision Unavailable(RelayDecision decision, string domain, Exception e)
    {
        Count("unavailable", VerifyStatus.Unknown);
        LogUnavailable(_logger, domain, e.Message);
        return VerificationRules.Later(decision, VerificationRules.Unavailable);
    }

    private void Count(string source, VerifyStatus status) =>
        _answers.Add(1, new KeyValuePair<string, object?>("source", source), new KeyValuePair<string, object?>("status", Name(status)));

    private static string Name(VerifyStatus status) => status switch
    {
        VerifyStatus.Deliverable => "deliverable",
        VerifyStatus.Undeliverable => "undeliverable",
        _ => "unknown",
    };

    public void Dispose()
    {
        _stopping.Cancel();
        _stopping.Dispose();
    }

    [LoggerMessage(EventId = 3200, Level = LogLevel.Information, Message = "Recipient verification for {Domain}: {Recipient} is {Status} ({Reply}) after {Milliseconds:F0} ms")]
    private static partial void LogProbe(ILogger logger, string domain, string recipient, string status, string reply, double milliseconds);

    [LoggerMessage(EventId = 3201, Level = LogLevel.Warning, Message = "Recipient verification for {Domain}: {Limit} probes this minute; answering 450 until the next")]
    private static partial void LogRateLimited(ILogger logger, string domain, int limit);

    [LoggerMessage(EventId = 3202, Level = LogLevel.Warning, Message = "Recipient verification for {Domain}: Redis unavailable ({Reason}); answering 450")]
    private static partial void LogUnavailable(ILogger logger, string domain, string reason);

    [LoggerMessage(EventId = 3203, Level = LogLevel.Warning, Message = "Recipient verification for {Domain}: the answer could not be cached ({Reason})")]
    private static partial void LogStoreFailed(ILogger logger, string domain, string reason);

    [LoggerMessage(EventId = 3204, Level = LogLevel.Error, Message = "Recipient verification for {Domain}: the probe failed")]
    private static partial void LogProbeError(ILogger logger, string domain, Exception exception);
}
