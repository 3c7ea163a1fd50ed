using System.Net;
using DnsClient;
using DnsClient.Protocol;

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
    /// <summary>RFC 7208 §4.6.4: at most 10 terms that cause DNS queries.</summary>
    public const int MaxDnsLookups = 10;

    /// <summary>RFC 7208 §4.5: a record starts with "v=spf1" followed by a space or its end (case-insensitive).</summary>
    public static bool IsSpfRecord(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.StartsWith("v=spf1", StringComparison.OrdinalIgnoreCase) && (text.Length == 6 || text[6] == ' ');
    }

    /// <summary>Parses one SPF record; throws <see cref="FormatException"/> on a malformed address term.</summary>
    public static SpfTerms Parse(string record)
    {
        ArgumentNullException.ThrowIfNull(record);
        if (!IsSpfRecord(record))
        {
            throw new FormatException("not an SPF record (must start with v=spf1)");
        }

        var networks = new List<IPNetwork>();
        var includes = new List<string>();
        string? redirect = null;
        var hasAll = false;
        foreach (var raw in record[6..].Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var term = raw;
            var qualifier = '+';
            if (term.Length > 0 && term[0] is '+' or '-' or '~' or '?')
            {
                qualifier = term[0];
                term = term[1..];
            }

            if (term.StartsWith("redirect=", StringComparison.OrdinalIgnoreCase))
            {
                redirect = term["redirect=".Length..].TrimEnd('.');
            }
            else if (term.Equals("all", StringComparison.OrdinalIgnoreCase))
            {
                hasAll = true;
            }
            else if (term.StartsWith("ip4:", StringComparison.OrdinalIgnoreCase) || term.StartsWith("ip6:", StringComparison.OrdinalIgnoreCase))
            {
                var value = term[4..];
                var wantV4 = char.ToLowerInvariant(term[2]) == '4';
                if (!IpRangeSet.TryParseNetwork(value, out var network) ||
                    (network.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork) != wantV4)
                {
                    throw new FormatException($"malformed SPF term '{raw}'");
                }

                if (qualifier == '+')
                {
                    networks.Add(network);
                }
            }
            else if (term.StartsWith("include:", StringComparison.OrdinalIgnoreCase) && qualifier == '+')
            {
                includes.Add(term["include:".Length..].TrimEnd('.'));
            }
        }

        return new SpfTerms(networks, includes, redirect, hasAll);
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
            if (!first && ++lookups > MaxDnsLookups)
            {
                throw new SpfLookupException($"SPF of {root}: more than {MaxDnsLookups} DNS lookups (RFC 7208 §4.6.4)");
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
            .Where(IsSpfRecord)
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
