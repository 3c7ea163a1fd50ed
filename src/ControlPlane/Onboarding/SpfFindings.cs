using System.Net;
using Gateway.Core.Domains;
using Gateway.Core.Spf;
using Gateway.ControlPlane.Spf;
using Gateway.Core;
using Gateway.Core.Dns;

namespace Gateway.ControlPlane.Onboarding;

/// <summary>
/// The SPF part of requirements §3.11 for a domain with outbound enabled: the domain must have exactly
/// one SPF record, and evaluating it (RFC 7208, includes and redirects followed, lookup limits applied)
/// for each of the gateway's sending addresses must give "pass". Without sending addresses (the shipped
/// default) the record must reach the gateway's include within the same limits (<see cref="SpfIncludeSearch"/>).
/// Each finding names the include to add and, where it can, the whole record to publish.
/// </summary>
public sealed class SpfFindings(IMailDns dns, SpfEvaluator evaluator, GatewayOptions options, SpfIncludeSearch includeSearch)
{
    private readonly IReadOnlyList<IPAddress> _sendingAddresses = options.SendingAddresses
        .Select(a => IpAddressText.TryParseSingle(a, out var ip, out _) ? ip : null)
        .OfType<IPAddress>()
        .ToList();

    public async Task<IReadOnlyList<Finding>> CheckAsync(string domain, CancellationToken cancellationToken)
    {
        var include = options.EffectiveSpfInclude;
        var txt = await dns.TxtAsync(domain, cancellationToken).ConfigureAwait(false);
        if (txt.Outcome == DnsOutcome.Failed)
        {
            return [new Finding(FindingCodes.SpfTempError, FindingSeverity.Warning,
                $"Could not read the SPF record of {domain} ({txt.Error}); the check is repeated automatically, or run it again later.")];
        }

        var records = txt.Records.Where(SpfRecord.IsSpfRecord).ToList();
        if (records.Count == 0)
        {
            var suggested = $"v=spf1 {include} ~all";
            return [new Finding(FindingCodes.SpfMissing, FindingSeverity.Error,
                $"{domain} has no SPF record, so receivers cannot tell that the gateway may send its mail. Publish a TXT record at {domain}: " +
                $"\"{suggested}\" (add your other sending services, e.g. 'mx' or 'ip4:…', before '~all').",
                new SuggestedRecord(domain, "TXT", suggested))];
        }

        if (records.Count > 1)
        {
            // RFC 7208 §4.5: several records make every evaluation a permerror.
            return [new Finding(FindingCodes.SpfMultipleRecords, FindingSeverity.Error,
                $"{domain} has {records.Count} SPF records ({string.Join(" | ", records.Select(r => $"\"{r}\""))}); RFC 7208 allows exactly one, " +
                $"so receivers treat SPF as broken (permerror). Merge them into a single TXT record that contains '{include}'.")];
        }

        if (_sendingAddresses.Count == 0)
        {
            return [await IncludeFindingAsync(domain, records[0], include, cancellationToken).ConfigureAwait(false)];
        }

        var results = new List<(IPAddress Ip, SpfEvaluation Evaluation)>();
        foreach (var ip in _sendingAddresses)
        {
            results.Add((ip, await evaluator.CheckHostAsync(ip, domain, "postmaster@" + domain, options.GatewayDomain, cancellationToken).ConfigureAwait(false)));
        }

        var record = records[0];
        if (results.FirstOrDefault(r => r.Evaluation.Result == SpfResult.PermError) is { Evaluation: not null } perm)
        {
            return [new Finding(FindingCodes.SpfPermError, FindingSeverity.Error,
                $"The SPF record of {domain} (\"{record}\") cannot be evaluated: {perm.Evaluation.Problem}. Receivers treat this as a permanent " +
                $"SPF error. Fix the record so that it stays within RFC 7208's limits and contains '{include}'.")];
        }

        if (results.FirstOrDefault(r => r.Evaluation.Result == SpfResult.TempError) is { Evaluation: not null } temp)
        {
            return [new Finding(FindingCodes.SpfTempError, FindingSeverity.Warning,
                $"The SPF record of {domain} could not be evaluated because of a DNS failure ({temp.Evaluation.Problem}); the check is " +
                "repeated automatically, or run it again later.")];
        }

        var failing = results.Where(r => r.Evaluation.Result != SpfResult.Pass).ToList();
        if (failing.Count > 0)
        {
            var suggested = WithInclude(record, include);
            var outcomes = string.Join(", ", failing.Select(f => $"{f.Ip}: {f.Evaluation.Result.ToString().ToLowerInvariant()}" +
                (f.Evaluation.DecidedBy is { } by ? $" by {by}" : string.Empty)));
            return [new Finding(FindingCodes.SpfGatewayNotAuthorized, FindingSeverity.Error,
                $"The SPF record of {domain} does not authorise the gateway's sending addresses ({outcomes}), so receivers may reject or " +
                $"junk mail the gateway relays for {domain}. Add '{include}' to the record, before its final 'all' or 'redirect': \"{suggested}\".",
                new SuggestedRecord(domain, "TXT", suggested))];
        }

        var via = results[0].Evaluation.DecidedBy;
        return [new Finding(FindingCodes.SpfPass, FindingSeverity.Info,
            $"The SPF record of {domain} authorises the gateway's sending addresses ({via}; {results.Max(r => r.Evaluation.DnsLookups)} of " +
            $"{SpfRecord.MaxDnsLookups} DNS lookups used).")];
    }

    /// <summary>Without the gateway's sending addresses: does the record reach the gateway's include (<see cref="SpfIncludeSearch"/>)?</summary>
    private async Task<Finding> IncludeFindingAsync(string domain, string record, string include, CancellationToken cancellationToken)
    {
        var search = await includeSearch.SearchAsync(domain, include, cancellationToken).ConfigureAwait(false);
        switch (search.Outcome)
        {
            case SpfIncludeOutcome.Reached:
                return new Finding(FindingCodes.SpfPass, FindingSeverity.Info,
                    $"The SPF record of {domain} includes the gateway ({search.Chain}; {search.DnsLookups} of {SpfRecord.MaxDnsLookups} DNS lookups used).");
            case SpfIncludeOutcome.TempError:
                return new Finding(FindingCodes.SpfTempError, FindingSeverity.Warning,
                    $"The SPF record of {domain} could not be followed because of a DNS failure ({search.Problem}); the check is repeated automatically, " +
                    "or run it again later.");
            case SpfIncludeOutcome.PermError:
                return new Finding(FindingCodes.SpfPermError, FindingSeverity.Error,
                    $"The SPF record of {domain} (\"{record}\") cannot be evaluated: {search.Problem}. Receivers treat this as a permanent " +
                    $"SPF error. Fix the record so that it stays within RFC 7208's limits and contains '{include}'.");
            default:
                var suggested = WithInclude(record, include);
                return new Finding(FindingCodes.SpfGatewayNotAuthorized, FindingSeverity.Error,
                    $"The SPF record of {domain} does not include the gateway's '{include}' ({search.Problem}), so receivers may reject or junk " +
                    $"mail the gateway relays for {domain}. Add '{include}' to the record, before its final 'all' or 'redirect': \"{suggested}\".",
                    new SuggestedRecord(domain, "TXT", suggested));
        }
    }

    /// <summary>The record with the include inserted right after the version, where it is evaluated first.</summary>
    public static string WithInclude(string record, string include)
    {
        ArgumentNullException.ThrowIfNull(record);
        var rest = record.Length > 6 ? record[6..].Trim() : string.Empty;
        return rest.Length == 0 ? $"v=spf1 {include} ~all" : $"v=spf1 {include} {rest}";
    }
}
