using Gateway.Core.Domains;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using DnsClient;
using Gateway.Core.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Gateway.Core.Relay;

/// <summary>Where the providers' sending ranges come from and how often they are refreshed (<c>Gateway:ProviderRanges</c>).</summary>
public sealed class ProviderRangesOptions
{
    public const string Section = "Gateway:ProviderRanges";

    /// <summary>
    /// How old the shared ranges may get before a program refreshes them from the providers' SPF records.
    /// Zero: never query DNS (use the copy in Redis, else the shipped data file) — for hosts without outside DNS.
    /// </summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromDays(1);

    /// <summary>How often the shared copy in Redis is read again (it picks up a refresh made by another program).</summary>
    public TimeSpan CheckInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The SPF record that lists Microsoft 365's sending ranges.</summary>
    public string Office365SpfDomain { get; set; } = "spf.protection.outlook.com";

    /// <summary>The SPF record that lists Google Workspace's sending ranges.</summary>
    public string GoogleWorkspaceSpfDomain { get; set; } = "_spf.google.com";

    /// <summary>A ranges file in the shipped format to use instead of the built-in one (optional).</summary>
    public string? File { get; set; }

    public string SpfDomain(string provider) => provider == SendingProviders.Office365 ? Office365SpfDomain : GoogleWorkspaceSpfDomain;
}

/// <summary>
/// Holds the providers' sending ranges the relay rules use (<see cref="Current"/>, swapped atomically) and
/// keeps them current: starts from the shipped data file, then reads the copy shared in Redis
/// (<see cref="RedisKeys.ProviderRanges"/>) every <see cref="ProviderRangesOptions.CheckInterval"/>, and when
/// that copy is older than <see cref="ProviderRangesOptions.RefreshInterval"/> refreshes it from the providers'
/// SPF records over DNS and stores the result for every other program. A refresh that fails or looks wrong
/// (empty, or a network wider than /8 or /16 that would let a forged DNS answer open the relay) keeps what is there.
/// </summary>
public sealed partial class ProviderRangesService : BackgroundService
{
    /// <summary>Narrowest IPv4 prefix a refreshed list may contain.</summary>
    public const int MinIPv4Prefix = 8;

    /// <summary>Narrowest IPv6 prefix a refreshed list may contain.</summary>
    public const int MinIPv6Prefix = 16;

    private readonly IConnectionMultiplexer _redis;
    private readonly ILookupClient _dns;
    private readonly ProviderRangesOptions _options;
    private readonly TimeProvider _clock;
    private readonly ILogger<ProviderRangesService> _logger;
    private volatile ProviderRanges _current;

    public ProviderRangesService(IConnectionMultiplexer redis, ILookupClient dns, IOptions<ProviderRangesOptions> options, TimeProvider clock, ILogger<ProviderRangesService> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _redis = redis;
        _dns = dns;
        _options = options.Value;
        _clock = clock;
        _logger = logger;
        if (string.IsNullOrEmpty(_options.File))
        {
            _current = ProviderRanges.Shipped;
        }
        else
        {
            using var stream = System.IO.File.OpenRead(_options.File);
            _current = ProviderRanges.Load(stream);
        }
    }

    /// <summary>The ranges to decide with now; never waits.</summary>
    public ProviderRanges Current => _current;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                await SyncAsync(stoppingToken).ConfigureAwait(false);
                await Task.Delay(_options.CheckInterval, _clock, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Reads the shared copy, then refreshes the providers whose copy is missing or stale.</summary>
    public async Task SyncAsync(CancellationToken cancellationToken)
    {
        Dictionary<string, ProviderRangeList> stored;
        try
        {
            stored = await ReadSharedAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException)
        {
            // Redis away: keep deciding with what we have; no refresh either, it could not be shared.
            LogSharedUnavailable(_logger, e.Message);
            return;
        }

        foreach (var (provider, list) in stored)
        {
            if (list.AsOf != _current.Info(provider).AsOf || list.Source != _current.Info(provider).Source)
            {
                _current = _current.With(provider, list);
                LogApplied(_logger, provider, list.Ranges.Count, list.Source, list.AsOf);
            }
        }

        if (_options.RefreshInterval <= TimeSpan.Zero)
        {
            return;
        }

        foreach (var provider in SendingProviders.All)
        {
            var age = stored.TryGetValue(provider, out var list) ? _clock.GetUtcNow() - list.AsOf : TimeSpan.MaxValue;
            if (age >= _options.RefreshInterval)
            {
                await RefreshAsync(provider, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Fetches one provider's ranges from DNS; on success applies and shares them. Returns whether it did.</summary>
    public async Task<bool> RefreshAsync(string provider, CancellationToken cancellationToken)
    {
        var root = _options.SpfDomain(provider);
        IReadOnlyList<IPNetwork> networks;
        try
        {
            networks = await SpfRanges.FetchAsync(_dns, root, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SpfLookupException or DnsResponseException or FormatException)
        {
            LogRefreshFailed(_logger, provider, root, e.Message);
            return false;
        }

        if (Implausible(networks) is { } problem)
        {
            LogRefreshFailed(_logger, provider, root, problem);
            return false;
        }

        var list = new ProviderRangeList("dns:" + root, _clock.GetUtcNow(), IpRangeSet.Create(networks).Networks);
        _current = _current.With(provider, list);
        LogApplied(_logger, provider, list.Ranges.Count, list.Source, list.AsOf);
        try
        {
            await _redis.GetDatabase().HashSetAsync(RedisKeys.ProviderRanges, provider, JsonSerializer.Serialize(list)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is RedisException or RedisTimeoutException)
        {
            LogSharedUnavailable(_logger, e.Message);
        }

        return true;
    }

    /// <summary>Why a refreshed list must not be used, or null.</summary>
    public static string? Implausible(IReadOnlyList<IPNetwork> networks)
    {
        ArgumentNullException.ThrowIfNull(networks);
        if (networks.Count == 0)
        {
            return "the SPF records list no address ranges";
        }

        foreach (var n in networks)
        {
            var min = n.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? MinIPv4Prefix : MinIPv6Prefix;
            if (n.PrefixLength < min)
            {
                return $"the range {n} is wider than /{min}; refusing it";
            }
        }

        return null;
    }

    private async Task<Dictionary<string, ProviderRangeList>> ReadSharedAsync()
    {
        var result = new Dictionary<string, ProviderRangeList>(StringComparer.Ordinal);
        foreach (var entry in await _redis.GetDatabase().HashGetAllAsync(RedisKeys.ProviderRanges).ConfigureAwait(false))
        {
            var provider = entry.Name.ToString();
            if (!SendingProviders.All.Contains(provider))
            {
                continue;
            }

            try
            {
                var list = JsonSerializer.Deserialize<ProviderRangeList>(entry.Value.ToString());
                if (list?.Ranges is { Count: > 0 } ranges && Implausible(ranges.Select(r => IpRangeSet.TryParseNetwork(r, out var n) ? n : throw new FormatException(r)).ToList()) is null)
                {
                    result[provider] = list;
                }
            }
            catch (Exception e) when (e is JsonException or FormatException)
            {
                LogSharedInvalid(_logger, provider, e.Message);
            }
        }

        return result;
    }

    [LoggerMessage(EventId = 3100, Level = LogLevel.Information, Message = "Sending ranges of {Provider}: {Count} networks from {Source} as of {AsOf}")]
    private static partial void LogApplied(ILogger logger, string provider, int count, string source, DateTimeOffset asOf);

    [LoggerMessage(EventId = 3101, Level = LogLevel.Warning, Message = "Refreshing the sending ranges of {Provider} from the SPF record of {Root} failed; keeping the current ones: {Reason}")]
    private static partial void LogRefreshFailed(ILogger logger, string provider, string root, string reason);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Warning, Message = "Shared sending ranges in Redis unavailable; keeping the current ones: {Reason}")]
    private static partial void LogSharedUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 3103, Level = LogLevel.Warning, Message = "Shared sending ranges of {Provider} in Redis are invalid and ignored: {Reason}")]
    private static partial void LogSharedInvalid(ILogger logger, string provider, string reason);
}
