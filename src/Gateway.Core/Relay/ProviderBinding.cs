using System.Net;
using System.Text;
using Gateway.Core.Snapshot;

namespace Gateway.Core.Relay;

/// <summary>
/// requirements §3.9, provider sources tied to the customer's own provider account (security review H1, "EchoSpoofing"):
/// Microsoft 365's sending ranges are shared by every Microsoft 365 customer, so an outbound message that came in through
/// them (and not from one of the domain's own custom IPs) is relayed only when Exchange Online's tenant stamp names the
/// domain's tenant (<see cref="Domains.OutboundSettings.Office365TenantId"/>). Checked by the intake once the whole
/// message is there, answered at DATA with <c>550 5.7.1</c>.
/// <para>
/// Which header: Exchange Online stamps <c>X-MS-Exchange-CrossTenant-Id: &lt;tenant GUID&gt;</c> on mail leaving a
/// tenant. It is the tenant's id, assigned by Microsoft, never reused, and the one value a customer can read in its
/// admin center; <c>X-OriginatorOrg</c> carries the organisation's domain name instead (a name that changes with the
/// tenant's default domain), so it is only logged. The first (topmost) occurrence is Microsoft's own stamp: a header a
/// sender wrote into the message sits below it, so only the first one counts.
/// </para>
/// Google Workspace is bound by the customer's DKIM signature (<see cref="GoogleWorkspaceBinding"/>, checked after this):
/// a client in both providers' ranges whose domain allows both is left to that check.
/// </summary>
public static class ProviderBinding
{
    public const string TenantHeader = "X-MS-Exchange-CrossTenant-Id";

    public const string OrganizationHeader = "X-OriginatorOrg";

    /// <summary>The headers of a message are read up to this many octets (Exchange Online puts its stamps near the top).</summary>
    public const int MaxHeaderBytes = 256 * 1024;

    /// <summary>
    /// Why the outbound copy of <paramref name="domain"/> from <paramref name="client"/> must be refused, or null when it
    /// may be relayed (a custom IP, not from Microsoft's ranges, or stamped with the domain's tenant).
    /// </summary>
    public static string? Refusal(DomainEntry domain, IPAddress client, ProviderRanges providers, ReadOnlySpan<byte> message)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(providers);
        var outbound = domain.Outbound;
        if (domain.CustomIps.Contains(client) || !outbound.Office365 || !providers.Office365.Contains(client) ||
            (outbound.GoogleWorkspace && providers.GoogleWorkspace.Contains(client)))
        {
            return null;
        }

        if (outbound.Office365TenantId is not { } expected)
        {
            return $"{domain.Name} allows Microsoft 365 but has no Microsoft 365 tenant id (outbound.office365_tenant_id): mail from Microsoft 365 cannot be tied to its tenant";
        }

        var stamp = FirstHeader(message, TenantHeader);
        if (stamp is null)
        {
            return $"message from Microsoft 365 without {TenantHeader}: not from {domain.Name}'s Microsoft 365 tenant";
        }

        return Guid.TryParse(stamp, out var tenant) && tenant.ToString("D") == expected
            ? null
            : $"message from another Microsoft 365 tenant than {domain.Name}'s";
    }

    /// <summary>The unfolded, trimmed value of the first header named <paramref name="name"/>, or null.</summary>
    public static string? FirstHeader(ReadOnlySpan<byte> message, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var span = message.Length > MaxHeaderBytes ? message[..MaxHeaderBytes] : message;
        var pos = 0;
        while (pos < span.Length)
        {
            var end = span[pos..].IndexOf((byte)'\n');
            var line = end < 0 ? span[pos..] : span.Slice(pos, end);
            pos = end < 0 ? span.Length : pos + end + 1;
            if (line.Length > 0 && line[^1] == '\r')
            {
                line = line[..^1];
            }

            if (line.Length == 0)
            {
                return null; // end of the header section
            }

            var colon = line.IndexOf((byte)':');
            if (colon != name.Length || line[0] is (byte)' ' or (byte)'\t' || !Ascii.EqualsIgnoreCase(line[..colon], name))
            {
                continue;
            }

            var value = new StringBuilder(Encoding.Latin1.GetString(line[(colon + 1)..]));
            while (pos < span.Length && span[pos] is (byte)' ' or (byte)'\t')
            {
                var next = span[pos..].IndexOf((byte)'\n');
                var folded = next < 0 ? span[pos..] : span.Slice(pos, next);
                pos = next < 0 ? span.Length : pos + next + 1;
                value.Append(Encoding.Latin1.GetString(folded.TrimEnd((byte)'\r')));
            }

            return value.ToString().Trim();
        }

        return null;
    }
}
