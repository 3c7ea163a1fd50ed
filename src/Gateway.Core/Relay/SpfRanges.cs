using Gateway.Core.Domains;
using System.Net;
using DnsClient;
using DnsClient.Protocol;
using Gateway.Core.Spf;

namespace Gateway.Core.Relay;

/// <summary>The terms of one SPF record that matter for collecting a provider's sending ranges.</summary>
/// <param name="Networks">Networks of <c>ip4:</c>/<c>ip6:</c> mechanisms with the pass qualifier (<c>+</c> or none).</param>
/// <param name="Includes">Domains of <c>include:</c> mechanisms with the pass qualifier.</param>
/// <param name="Redirect">The <c>redirect=</c> modifier's domain, if any.</param>
/// <param name="HasAll">An <c>all</c> mechanism is present (RFC 7208 §6.1: then <c>redirect</c> is ignored).</param>
public sealed record SpfTerms(IReadOnlyList<IPNetwork> Networks, IReadOnlyList<string> Includes, string? Redirect, bool HasAll);

/// <summary>
/// Reads providers' sending ranges out of their SPF records (RFC 7208): a pure parser for one record and a
/// DNS walk over <c>include:</c> and <c>redirect=</c> with the RFC's limit of 10 DNS-querying terms
/// (§4.6.4). Only address mechanisms are collected: <c>a</c>, <c>mx</c>, <c>ptr</c>, <c>exists</c> and
/// macros describe no fixed ranges and are skipped (the providers publish none).
/// </summary>
public static class SpfRanges
{
    /// <summary>Parses one SPF record with <see cref="SpfRecord"/>; throws <see cref="FormatException"/> when it is not valid SPF.</summary>
    public static SpfTerms Parse(string record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!SpfRecord.IsSpfRecord(record))
        {
            throw new FormatException("not an SPF record (must start with v=spf1)");
        }

        if (!SpfRecord.TryParse(record, out var parsed, out var error))
        {
            throw new FormatException(error);
        }

        var networks = new List<IPNetwork>();
        var includes = new List<string>();
        var hasAll = false;
        foreach (var m in parsed.Mechanisms)
        {
            switch (m.Kind)
            {
                case SpfMechanismKind.All:
                    hasAll = true;
                    break;
                case SpfMechanismKind.Ip4 or SpfMechanismKind.Ip6 when m.Qualifier == SpfResult.Pass:
                    var prefix = m.Kind == SpfMechanismKind.Ip4 ? m.Cidr4 ?? 32 : m.Cidr6 ?? 128;
                    if (!IpRangeSet.TryParseNetwork($"{m.Network}/{prefix}", out var network))
                    {
                        throw new FormatException($"malformed SPF term '{m.Text}'");
                    }

                    networks.Add(network);
                    break;
                case SpfMechanismKind.Include when m.Qualifier == SpfResult.Pass && m.DomainSpec is { } include:
                    includes.Add(include.TrimEnd('.'));
                    break;
            }
        }

        return new SpfTerms(networks, includes, parsed.Redirect?.TrimEnd('.'), hasAll);
    }

    /// <summary>
    /// Collects the pass networks of <paramref name="root"/>'s SPF record and everything it includes or
    /// redirects to. Throws <see cref="SpfLookupException"/> when a record is missing, duplicated or
    /// unreachable, or the lookup limit is exceeded: a partial list must never replace a complete one.
    /// </summary>
    public static async Task<IReadOnlyList<IPNetwork>> FetchAsync(ILookupClient dns, string root, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dns);
        ArgumentException.ThrowIfNullOrWhiteSpace(root);
        var networks = new List<IPNetwork>();
        var lookups = 0;
        var pending = new Stack<string>();
        pending.Push(root.TrimEnd('.'));
        var first = true;
        while (pending.Count > 0)
        {
            var name = pending.Pop();
            if (!first && ++lookups > SpfRecord.MaxDnsLookups)
            {
                throw new SpfLookupException($"SPF of {root}: more than {SpfRecord.MaxDnsLookups} DNS lookups (RFC 7208 §4.6.4)");
            }

            first = false;
            var terms = Parse(await GetRecordAsync(dns, name, cancellationToken).ConfigureAwait(false));
            networks.AddRange(terms.Networks);
            if (terms.Redirect is { } redirect && !terms.HasAll)
            {
                pending.Push(redirect);
            }

            // Reverse, so includes are walked in the record's order.
            for (var i = terms.Includes.Count - 1; i >= 0; i--)
            {
                pending.Push(terms.Includes[i]);
            }
        }

        return networks;
    }

    private static async Task<string> GetRecordAsync(ILookupClient dns, string name, CancellationToken cancellationToken)
    {
        var response = await dns.QueryAsync(name, QueryType.TXT, QueryClass.IN, cancellationToken).ConfigureAwait(false);
        if (response.HasError)
        {
            throw new SpfLookupException($"TXT {name}: {response.ErrorMessage}");
        }

        // RFC 7208 §3.3: the strings of one TXT record are joined without spaces.
        var records = response.Answers.TxtRecords()
            .Select(r => string.Concat(r.Text))
            .Where(SpfRecord.IsSpfRecord)
            .ToList();
        return records.Count switch
        {
            0 => throw new SpfLookupException($"TXT {name}: no SPF record"),
            1 => records[0],
            _ => throw new SpfLookupException($"TXT {name}: {records.Count} SPF records (RFC 7208 §4.5 allows one)"),
        };
    }
}

/// <summary>A provider's SPF could not be read completely.</summary>
public sealed class SpfLookupException : Exception
{
    public SpfLookupException()
    {
    }

    public SpfLookupException(string message)
        : base(message)
    {
    }

    public SpfLookupException(string message, Exception inner)
        : base(message, inner)
    {
    }
}
