namespace Gateway.Core.Delivery;

/// <summary>A message a worker holds under a lease: its schedule shard member and the token that proves the lease.</summary>
public sealed record ScheduledItem(string Domain, string Id, int Shard, string Token)
{
    /// <summary>The schedule member, <c>&lt;domain&gt;|&lt;id&gt;</c>.</summary>
    public string Member => Domain + "|" + Id;

    public static bool TryParseMember(string member, out string domain, out string id)
    {
        ArgumentNullException.ThrowIfNull(member);
        var bar = member.IndexOf('|', StringComparison.Ordinal);
        domain = bar > 0 ? member[..bar] : string.Empty;
        id = bar > 0 ? member[(bar + 1)..] : string.Empty;
        return bar > 0 && id.Length > 0;
    }
}
