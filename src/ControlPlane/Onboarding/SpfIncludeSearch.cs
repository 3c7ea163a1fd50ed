using System.Collections.Immutable;
using Gateway.Core.Spf;
using Gateway.Core.Dns;

namespace Gateway.ControlPlane.Onboarding;

/// <summary>How a search for the gateway's SPF mechanism ended.</summary>
public enum SpfIncludeOutcome
{
    /// <summary>The record reaches the gateway's mechanism with a pass qualifier on the whole way.</summary>
    Reached,

    /// <summary>The evaluation of the record ends (an <c>all</c>, the end of the record) without it, or reaches it with a qualifier other than pass.</summary>
    NotReached,

    /// <summary>RFC 7208 permerror on the way: too many lookups, an include of a domain without SPF record, a syntax error.</summary>
    PermError,

    /// <summary>A DNS failure on the way: try again later.</summary>
    TempError,
}

/// <summary>The result of <see cref="SpfIncludeSearch.SearchAsync"/>.</summary>
/// <param name="Outcome">How it ended.</param>
/// <param name="Chain">Where it ended: the records walked, e.g. <c>example.com → include:_spf.provider.example → include:_spf.gw.example</c>.</param>
/// <param name="Problem">For everything but <see cref="SpfIncludeOutcome.Reached"/>: why, in words.</param>
/// <param name="DnsLookups">DNS-querying terms counted up to there (RFC 7208 §4.6.4 allows 10).</param>
public sealed record SpfIncludeSearchResult(SpfIncludeOutcome Outcome, string Chain, string? Problem, int DnsLookups);

/// <summary>
/// Does a domain's SPF record authorise the gateway when the gateway's own sending addresses are not configured
/// (<c>Gateway:SendingAddresses</c> empty, as shipped)? It follows the record as <c>check_host()</c> would for an
/// address that only the gateway's mechanism (<c>Gateway:SpfInclude</c>) matches: terms in order, <c>include:</c>
/// and <c>redirect=</c> followed, every DNS-querying term counted against RFC 7208 §4.6.4's limit of 10, evaluation
/// of a record ending at its <c>all</c> (§4.6.2, §6.1: a redirect is then ignored). The gateway is authorised when
/// the walk reaches its mechanism with a pass qualifier on every include on the way (docs/requirements.md §3
/// "Health"). Mechanisms whose target holds a macro (<c>%{i}</c>, …) depend on the sending address and are counted
/// but not followed. The gateway's own record is walked too, so its lookups count.
/// </summary>
public sealed class SpfIncludeSearch(IMailDns dns)
{
    /// <summary>Searches the SPF record of <paramref name="domain"/> for <paramref name="gatewayMechanism"/> (e.g. <c>include:_spf.gw.example</c>).</summary>
    public async Task<SpfIncludeSearchResult> SearchAsync(string domain, string gatewayMechanism, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(gatewayMechanism);
        if (!SpfRecord.TryParse("v=spf1 " + gatewayMechanism.Trim(), out var parsed, out var why) || parsed.Mechanisms.Count != 1)
        {
            return new SpfIncludeSearchResult(SpfIncludeOutcome.PermError, domain,
                $"the gateway's SPF mechanism '{gatewayMechanism}' (Gateway:SpfInclude) is not one valid SPF mechanism: {why}", 0);
        }

        var state = new State(Key(parsed.Mechanisms[0]));
        var step = await WalkAsync(domain.TrimEnd('.'), [domain.TrimEnd('.')], state, cancellationToken).ConfigureAwait(false);
        return new SpfIncludeSearchResult(step.Outcome, string.Join(" → ", step.Chain), step.Problem, state.Lookups);
    }

    private sealed class State(string target)
    {
        public string Target { get; } = target;

        public int Lookups { get; set; }
    }

    private readonly record struct Step(SpfIncludeOutcome Outcome, ImmutableList<string> Chain, string? Problem = null);

    private async Task<Step> WalkAsync(string domain, ImmutableList<string> chain, State state, CancellationToken ct)
    {
        var txt = await dns.TxtAsync(domain, ct).ConfigureAwait(false);
        if (txt.Outcome == DnsOutcome.Failed)
        {
            return new Step(SpfIncludeOutcome.TempError, chain, txt.Error);
        }

        var records = txt.Records.Where(SpfRecord.IsSpfRecord).ToList();
        if (records.Count == 0)
        {
            // §5.2, §6.1: an include or redirect of a domain without SPF record is a permerror.
            return new Step(SpfIncludeOutcome.PermError, chain,
                txt.Outcome == DnsOutcome.NxDomain ? $"{domain} does not exist in DNS" : $"{domain} has no SPF record");
        }

        if (records.Count > 1)
        {
            return new Step(SpfIncludeOutcome.PermError, chain, $"{domain} has {records.Count} SPF records; RFC 7208 §4.5 allows exactly one");
        }

        if (!SpfRecord.TryParse(records[0], out var record, out var syntax))
        {
            return new Step(SpfIncludeOutcome.PermError, chain, $"the SPF record of {domain} is invalid: {syntax}");
        }

        foreach (var m in record.Mechanisms)
        {
            if (m.QueriesDns && ++state.Lookups > SpfRecord.MaxDnsLookups)
            {
                return TooManyLookups(chain, m.Text);
            }

            if (m.Kind == SpfMechanismKind.All)
            {
                // Evaluation of this record ends here, for any address; terms after it and a redirect are never used.
                return new Step(SpfIncludeOutcome.NotReached, chain, $"the SPF record of {domain} ends at '{m.Text}' without it");
            }

            var isTarget = Key(m) == state.Target;
            if (!isTarget && m.Kind != SpfMechanismKind.Include)
            {
                continue;
            }

            if (m.DomainSpec?.Contains('%', StringComparison.Ordinal) == true)
            {
                continue; // a macro: where it leads depends on the sending address
            }

            if (isTarget && m.Kind != SpfMechanismKind.Include)
            {
                return Matched(m, chain.Add(m.Text), domain);
            }

            var target = Target(m.DomainSpec!);
            var inner = await WalkAsync(target, chain.Add("include:" + target), state, ct).ConfigureAwait(false);
            if (isTarget)
            {
                // The gateway's own record: its lookups count; its problems are the operator's, not the customer's.
                if (inner.Outcome == SpfIncludeOutcome.PermError && state.Lookups > SpfRecord.MaxDnsLookups)
                {
                    return inner;
                }

                return Matched(m, chain.Add("include:" + target), domain);
            }

            switch (inner.Outcome)
            {
                case SpfIncludeOutcome.Reached:
                    return Matched(m, inner.Chain, domain);
                case SpfIncludeOutcome.PermError or SpfIncludeOutcome.TempError:
                    return inner;
            }

            // NotReached: the include does not match (§5.2); go on with the next term.
        }

        if (record.Redirect is not { } redirect)
        {
            return new Step(SpfIncludeOutcome.NotReached, chain, $"the SPF record of {domain} ends without it");
        }

        if (++state.Lookups > SpfRecord.MaxDnsLookups)
        {
            return TooManyLookups(chain, "redirect=" + redirect);
        }

        if (redirect.Contains('%', StringComparison.Ordinal))
        {
            return new Step(SpfIncludeOutcome.NotReached, chain, $"the SPF record of {domain} ends in 'redirect={redirect}', which depends on the sending address");
        }

        var next = Target(redirect);
        var redirected = await WalkAsync(next, chain.Add("redirect=" + next), state, ct).ConfigureAwait(false);
        if (state.Target == "include:" + next)
        {
            // redirect= the gateway's own record: the same authorisation as its include (its own problems are the operator's).
            return redirected.Outcome == SpfIncludeOutcome.PermError && state.Lookups > SpfRecord.MaxDnsLookups
                ? redirected
                : new Step(SpfIncludeOutcome.Reached, chain.Add("redirect=" + next));
        }

        return redirected;
    }

    /// <summary>The walk reached the gateway's mechanism through <paramref name="m"/>: a pass only with a pass qualifier.</summary>
    private static Step Matched(SpfMechanism m, ImmutableList<string> chain, string domain) =>
        m.Qualifier == SpfResult.Pass
            ? new Step(SpfIncludeOutcome.Reached, chain)
            : new Step(SpfIncludeOutcome.NotReached, chain,
                $"'{m.Text}' in {domain} reaches it with the qualifier '{m.Text[0]}', which gives the gateway's mail {m.Qualifier.ToString().ToLowerInvariant()}, not pass");

    private static Step TooManyLookups(ImmutableList<string> chain, string term)
    {
        var names = chain.Select(c => c[(c.IndexOfAny([':', '=']) + 1)..]).ToList();
        var text = $"the SPF evaluation needs more than {SpfRecord.MaxDnsLookups} DNS lookups (include, a, mx, ptr, exists, redirect; RFC 7208 §4.6.4) " +
                   $"before it reaches the gateway, exceeded at '{term}' after {string.Join(" → ", chain)}";
        return new Step(SpfIncludeOutcome.PermError, chain,
            names.Distinct(StringComparer.OrdinalIgnoreCase).Count() < names.Count ? text + "; the records include each other in a loop" : text);
    }

    private static string Target(string domainSpec) => domainSpec.TrimEnd('.').ToLowerInvariant();

    /// <summary>A mechanism without its qualifier, domain lower-cased and without a trailing dot, to compare with the gateway's.</summary>
    private static string Key(SpfMechanism m) => m.Kind switch
    {
        SpfMechanismKind.Include or SpfMechanismKind.Exists => $"{m.Kind}:{Target(m.DomainSpec!)}".ToLowerInvariant(),
        _ => (m.Text[0] is '+' or '-' or '~' or '?' ? m.Text[1..] : m.Text).ToLowerInvariant(),
    };
}
