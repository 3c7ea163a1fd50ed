using System.Net;
using Gateway.Core.Domains;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Gateway.Core.Relay;

/// <summary>The hosted mail providers whose published sending ranges a domain can allow (requirements §3.8).</summary>
public static class SendingProviders
{
    /// <summary>Microsoft 365 (Exchange Online).</summary>
    public const string Office365 = "office365";

    /// <summary>Google Workspace.</summary>
    public const string GoogleWorkspace = "google_workspace";

    public static readonly IReadOnlyList<string> All = [Office365, GoogleWorkspace];
}

/// <summary>One provider's ranges with where they came from.</summary>
/// <param name="Source">Where the ranges were read: the data file's note, or <c>dns:&lt;SPF root&gt;</c>.</param>
/// <param name="AsOf">When the ranges were published/fetched.</param>
public sealed record ProviderRangeList(
    [property: JsonPropertyName("source")] string Source,
    [property: JsonPropertyName("as_of")] DateTimeOffset AsOf,
    [property: JsonPropertyName("ranges")] IReadOnlyList<string> Ranges);

/// <summary>
/// The sending ranges of Microsoft 365 and Google Workspace as the relay rules use them: immutable,
/// swapped whole when refreshed. <see cref="Shipped"/> is the data file compiled into the program
/// (<c>provider-ranges.json</c>, source and date noted inside); <see cref="ProviderRangesService"/>
/// replaces it with ranges refreshed from the providers' SPF records.
/// </summary>
public sealed class ProviderRanges
{
    private static readonly Lazy<ProviderRanges> ShippedLazy = new(LoadShipped);

    public ProviderRanges(ProviderRangeList office365, ProviderRangeList googleWorkspace)
    {
        ArgumentNullException.ThrowIfNull(office365);
        ArgumentNullException.ThrowIfNull(googleWorkspace);
        Office365Info = office365;
        GoogleWorkspaceInfo = googleWorkspace;
        Office365 = IpRangeSet.Parse(office365.Ranges);
        GoogleWorkspace = IpRangeSet.Parse(googleWorkspace.Ranges);
    }

    /// <summary>No ranges at all (tests; a provider with nothing allows nobody).</summary>
    public static ProviderRanges None { get; } = new(
        new ProviderRangeList("none", DateTimeOffset.UnixEpoch, []),
        new ProviderRangeList("none", DateTimeOffset.UnixEpoch, []));

    /// <summary>The ranges shipped with the program (embedded <c>provider-ranges.json</c>).</summary>
    public static ProviderRanges Shipped => ShippedLazy.Value;

    public IpRangeSet Office365 { get; }

    public IpRangeSet GoogleWorkspace { get; }

    public ProviderRangeList Office365Info { get; }

    public ProviderRangeList GoogleWorkspaceInfo { get; }

    public ProviderRangeList Info(string provider) => provider switch
    {
        SendingProviders.Office365 => Office365Info,
        SendingProviders.GoogleWorkspace => GoogleWorkspaceInfo,
        _ => throw new ArgumentOutOfRangeException(nameof(provider), provider, "unknown provider"),
    };

    /// <summary>A copy with one provider's list replaced.</summary>
    public ProviderRanges With(string provider, ProviderRangeList list) => provider switch
    {
        SendingProviders.Office365 => new ProviderRanges(list, GoogleWorkspaceInfo),
        SendingProviders.GoogleWorkspace => new ProviderRanges(Office365Info, list),
        _ => throw new ArgumentOutOfRangeException(nameof(provider), provider, "unknown provider"),
    };

    /// <summary>Reads a ranges file (the shipped format): <c>{"providers": {"office365": {...}, "google_workspace": {...}}}</c>.</summary>
    public static ProviderRanges Load(Stream json)
    {
        var file = JsonSerializer.Deserialize<RangesFile>(json) ?? throw new FormatException("provider ranges file is empty");
        if (file.Providers is null ||
            !file.Providers.TryGetValue(SendingProviders.Office365, out var o365) ||
            !file.Providers.TryGetValue(SendingProviders.GoogleWorkspace, out var google))
        {
            throw new FormatException($"provider ranges file must list '{SendingProviders.Office365}' and '{SendingProviders.GoogleWorkspace}'");
        }

        return new ProviderRanges(o365, google);
    }

    /// <summary>True when <paramref name="address"/> is inside the ranges of a provider the domain allows.</summary>
    public bool Allows(bool office365, bool googleWorkspace, IPAddress address) =>
        (office365 && Office365.Contains(address)) || (googleWorkspace && GoogleWorkspace.Contains(address));

    private static ProviderRanges LoadShipped()
    {
        using var stream = typeof(ProviderRanges).Assembly.GetManifestResourceStream("Gateway.Core.Relay.provider-ranges.json")
            ?? throw new InvalidOperationException("embedded provider-ranges.json is missing");
        return Load(stream);
    }

    private sealed record RangesFile(
        [property: JsonPropertyName("providers")] Dictionary<string, ProviderRangeList>? Providers);
}
