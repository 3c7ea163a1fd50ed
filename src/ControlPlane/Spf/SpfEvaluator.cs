using System.Collections.Immutable;
using System.Net;
using System.Net.Sockets;
using Gateway.Core.Dns;
using Gateway.Core.Spf;

namespace Gateway.ControlPlane.Spf;

/// <summary>
/// RFC 7208 <c>check_host()</c>: evaluates a domain's SPF record for a client address, following include
/// and redirect, with the processing limits of §4.6.4 (10 DNS-querying terms, 2 void lookups, 10 MX
/// names, 10 PTR names) and an overall time limit (§4.6.4 suggests at least 20 seconds).
/// </summary>
/// <remarks>
/// Written for the gateway rather than taken from ARSoft.Tools.Net's SpfValidator, which has no void
/// lookup limit, silently checks only 9 MX names where RFC 7208 requires a permerror beyond 10, blocks
/// on tasks in its synchronous API, and reports a bare qualifier where an administrator needs to know
/// which record broke and why.
/// </remarks>
public sealed class SpfEvaluator(IMailDns dns)
{
    /// <summary>§4.6.4: more than 2 void lookups is a permerror (the recommended default).</summary>
    public const int MaxVoidLookups = 2;

    /// <summary>§4.6.4: an "mx" mechanism may look at no more than 10 MX names; a "ptr" at no more than 10 names.</summary>
    public const int MaxNamesPerMechanism = 10;

    /// <summary>Overall time for one evaluation (§4.6.4: "SHOULD allow at least 20 seconds").</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// check_host(ip, domain, sender). <paramref name="sender"/> without a local part becomes
    /// <c>postmaster@domain</c> (§4.3). An IPv4-mapped IPv6 address is evaluated as IPv4 (§5).
    /// </summary>
    public async Task<SpfEvaluation> CheckHostAsync(IPAddress ip, string domain, string sender, string? helo = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ip);
        ArgumentNullException.ThrowIfNull(domain);
        domain = domain.TrimEnd('.');
        var at = sender?.LastIndexOf('@') ?? -1;
        sender = at < 0 ? $"postmaster@{(string.IsNullOrEmpty(sender) ? domain : sender)}" : at == 0 ? "postmaster" + sender : sender!;
        var state = new State(ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip, sender, helo ?? "unknown");

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(Timeout);
        try
        {
            var outcome = await CheckAsync(domain, [domain], state, deadline.Token).ConfigureAwait(false);
            return new SpfEvaluation(outcome.Result, outcome.Problem, outcome.DecidedBy, state.Lookups, state.Voids);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new SpfEvaluation(SpfResult.TempError, $"SPF evaluation of {domain} took longer than {Timeout.TotalSeconds:0} seconds",
                null, state.Lookups, state.Voids);
        }
    }

    private sealed class State(IPAddress ip, string sender, string helo)
    {
        public IPAddress Ip { get; } = ip;

        public string Sender { get; } = sender;

        public string Helo { get; } = helo;

        public int Lookups { get; set; }

        public int Voids { get; set; }

        public IReadOnlyList<string>? ValidatedNames { get; set; }
    }

    private readonly record struct Outcome(SpfResult Result, string? Problem = null, string? DecidedBy = null)
    {
        public bool IsError => Result is SpfResult.PermError or SpfResult.TempError;
    }

    /// <summary>A mechanism's match: no, yes (with what decided it inside an include), or an error that ends evaluation.</summary>
    private readonly record struct Match(bool Matched, Outcome? Error = null, string? DecidedBy = null)
    {
        public static readonly Match No = new(false);

        public static Match Stop(SpfResult result, string problem) => new(false, new Outcome(result, problem));
    }

    private async Task<Outcome> CheckAsync(string domain, ImmutableList<string> chain, State state, CancellationToken ct)
    {
        // §4.3: a malformed or single-label domain has no SPF record.
        if (!IsQueryableName(domain))
        {
            return new Outcome(SpfResult.None, $"'{domain}' is not a valid domain name");
        }

        var txt = await dns.TxtAsync(domain, ct).ConfigureAwait(false);
        if (txt.Outcome == DnsOutcome.Failed)
        {
            return new Outcome(SpfResult.TempError, txt.Error);
        }

        var records = txt.Records.Where(SpfRecord.IsSpfRecord).ToList();
        if (records.Count == 0)
        {
            return new Outcome(SpfResult.None, txt.Outcome == DnsOutcome.NxDomain ? $"{domain} does not exist in DNS" : $"{domain} has no SPF record");
        }

        if (records.Count > 1)
        {
            // §4.5: more than one record is a permerror.
            return new Outcome(SpfResult.PermError, $"{domain} has {records.Count} SPF records; RFC 7208 §4.5 allows exactly one");
        }

        if (!SpfRecord.TryParse(records[0], out var record, out var syntax))
        {
            return new Outcome(SpfResult.PermError, $"the SPF record of {domain} is invalid: {syntax}");
        }

        foreach (var mechanism in record.Mechanisms)
        {
            if (mechanism.QueriesDns && ++state.Lookups > SpfRecord.MaxDnsLookups)
            {
                return new Outcome(SpfResult.PermError, TooManyLookups(chain, mechanism.Text));
            }

            var match = await MatchAsync(mechanism, domain, chain, state, ct).ConfigureAwait(false);
            if (match.Error is { } error)
            {
                return error;
            }

            if (match.Matched)
            {
                return new Outcome(mechanism.Qualifier, DecidedBy: match.DecidedBy ?? $"{mechanism.Text} in {domain} ({string.Join(" → ", chain)})");
            }
        }

        if (record.Redirect is not { } redirectSpec)
        {
            // §4.7: no match and no redirect.
            return new Outcome(SpfResult.Neutral);
        }

        if (++state.Lookups > SpfRecord.MaxDnsLookups)
        {
            return new Outcome(SpfResult.PermError, TooManyLookups(chain, "redirect=" + redirectSpec));
        }

        var target = await ExpandAsync(redirectSpec, domain, state, ct).ConfigureAwait(false);
        var redirected = await CheckAsync(target, chain.Add("redirect=" + target), state, ct).ConfigureAwait(false);

        // §6.1: a redirect to a domain without SPF record is a permerror.
        return redirected.Result == SpfResult.None
            ? new Outcome(SpfResult.PermError, $"redirect={target} in {domain}: {redirected.Problem}")
            : redirected;
    }

    private async Task<Match> MatchAsync(SpfMechanism m, string domain, ImmutableList<string> chain, State state, CancellationToken ct)
    {
        switch (m.Kind)
        {
            case SpfMechanismKind.All:
                return new Match(true);

            case SpfMechanismKind.Ip4:
                return new Match(state.Ip.AddressFamily == AddressFamily.InterNetwork && InPrefix(state.Ip, m.Network!, m.Cidr4 ?? 32));

            case SpfMechanismKind.Ip6:
                return new Match(state.Ip.AddressFamily == AddressFamily.InterNetworkV6 && InPrefix(state.Ip, m.Network!, m.Cidr6 ?? 128));

            case SpfMechanismKind.Include:
            {
                var target = await ExpandAsync(m.DomainSpec!, domain, state, ct).ConfigureAwait(false);
                var inner = await CheckAsync(target, chain.Add("include:" + target), state, ct).ConfigureAwait(false);

                // §5.2: pass matches; fail, softfail and neutral do not; errors propagate; none is a permerror.
                return inner.Result switch
                {
                    SpfResult.Pass => new Match(true, DecidedBy: inner.DecidedBy),
                    SpfResult.Fail or SpfResult.SoftFail or SpfResult.Neutral => Match.No,
                    SpfResult.None => Match.Stop(SpfResult.PermError, $"{m.Text} in {domain}: {inner.Problem}"),
                    _ => new Match(false, inner),
                };
            }

            case SpfMechanismKind.A:
            {
                var target = m.DomainSpec is null ? domain : await ExpandAsync(m.DomainSpec, domain, state, ct).ConfigureAwait(false);
                return await MatchAddressesAsync(m, target, state, countVoid: true, ct).ConfigureAwait(false);
            }

            case SpfMechanismKind.Mx:
                return await MatchMxAsync(m, domain, state, ct).ConfigureAwait(false);

            case SpfMechanismKind.Ptr:
                return await MatchPtrAsync(m, domain, state, ct).ConfigureAwait(false);

            case SpfMechanismKind.Exists:
            {
                var target = await ExpandAsync(m.DomainSpec!, domain, state, ct).ConfigureAwait(false);
                if (!IsQueryableName(target))
                {
                    return Match.No;
                }

                // §5.7: always an A query, whatever the client's address family.
                var answer = await dns.AddressesAsync(target, AddressFamily.InterNetwork, ct).ConfigureAwait(false);
                return answer.Outcome == DnsOutcome.Failed ? Match.Stop(SpfResult.TempError, answer.Error!)
                    : answer.IsVoid ? Void(state, m, domain)
                    : new Match(true);
            }

            default:
                return Match.Stop(SpfResult.PermError, $"unsupported mechanism {m.Text}");
        }
    }

    private async Task<Match> MatchAddressesAsync(SpfMechanism m, string target, State state, bool countVoid, CancellationToken ct)
    {
        if (!IsQueryableName(target))
        {
            // A name DNS cannot carry: treated as non-existent (RFC 7208 leaves this open; the test suite accepts it).
            return Match.No;
        }

        var family = state.Ip.AddressFamily;
        var answer = await dns.AddressesAsync(target, family, ct).ConfigureAwait(false);
        if (answer.Outcome == DnsOutcome.Failed)
        {
            return Match.Stop(SpfResult.TempError, answer.Error!);
        }

        if (answer.IsVoid)
        {
            return countVoid ? Void(state, m, target) : Match.No;
        }

        var prefix = family == AddressFamily.InterNetwork ? m.Cidr4 ?? 32 : m.Cidr6 ?? 128;
        return new Match(answer.Records.Any(a => a.AddressFamily == family && InPrefix(state.Ip, a, prefix)));
    }

    private async Task<Match> MatchMxAsync(SpfMechanism m, string domain, State state, CancellationToken ct)
    {
        var target = m.DomainSpec is null ? domain : await ExpandAsync(m.DomainSpec, domain, state, ct).ConfigureAwait(false);
        if (!IsQueryableName(target))
        {
            return Match.No;
        }

        var mx = await dns.MxAsync(target, ct).ConfigureAwait(false);
        if (mx.Outcome == DnsOutcome.Failed)
        {
            return Match.Stop(SpfResult.TempError, mx.Error!);
        }

        if (mx.IsVoid)
        {
            // §5.4: no MX means no match; the target's own A record is NOT used.
            return Void(state, m, target);
        }

        if (mx.Records.Count > MaxNamesPerMechanism)
        {
            return Match.Stop(SpfResult.PermError,
                $"{m.Text} in {domain}: {target} has {mx.Records.Count} MX records; RFC 7208 §4.6.4 allows an mx mechanism at most {MaxNamesPerMechanism}");
        }

        foreach (var host in mx.Records)
        {
            if (host.IsNullMx)
            {
                continue;
            }

            var match = await MatchAddressesAsync(m, host.Exchange, state, countVoid: false, ct).ConfigureAwait(false);
            if (match.Matched || match.Error is not null)
            {
                return match;
            }
        }

        return Match.No;
    }

    private async Task<Match> MatchPtrAsync(SpfMechanism m, string domain, State state, CancellationToken ct)
    {
        var target = m.DomainSpec is null ? domain : await ExpandAsync(m.DomainSpec, domain, state, ct).ConfigureAwait(false);
        var names = await ValidatedNamesAsync(state, ct).ConfigureAwait(false);
        if (names.Count == 0)
        {
            return Match.No;
        }

        // §5.5: a validated name equal to the target or ending in "." + target.
        return new Match(names.Any(n => n.Equals(target, StringComparison.OrdinalIgnoreCase) ||
            n.EndsWith("." + target, StringComparison.OrdinalIgnoreCase)));
    }

    /// <summary>
    /// §5.5: the PTR names of the client (at most 10) whose A/AAAA records include the client address.
    /// A DNS error on the PTR query means no match; on a name's address query the name is skipped.
    /// </summary>
    private async Task<IReadOnlyList<string>> ValidatedNamesAsync(State state, CancellationToken ct)
    {
        var ptr = await dns.PtrAsync(state.Ip, ct).ConfigureAwait(false);
        if (ptr.Outcome != DnsOutcome.Ok)
        {
            return [];
        }

        var validated = new List<string>();
        foreach (var name in ptr.Records.Take(MaxNamesPerMechanism))
        {
            if (!IsQueryableName(name))
            {
                continue;
            }

            var addresses = await dns.AddressesAsync(name, state.Ip.AddressFamily, ct).ConfigureAwait(false);
            if (addresses.Outcome == DnsOutcome.Ok && addresses.Records.Any(a => a.Equals(state.Ip)))
            {
                validated.Add(name);
            }
        }

        return validated;
    }

    private async Task<string> ExpandAsync(string spec, string domain, State state, CancellationToken ct)
    {
        var validated = "unknown";
        if (SpfMacro.UsesValidatedName(spec))
        {
            // §7.3 "p": a validated name of the client, preferring the domain itself, then a subdomain of it.
            var names = state.ValidatedNames ??= await ValidatedNamesAsync(state, ct).ConfigureAwait(false);
            validated = names.FirstOrDefault(n => n.Equals(domain, StringComparison.OrdinalIgnoreCase))
                ?? names.FirstOrDefault(n => n.EndsWith("." + domain, StringComparison.OrdinalIgnoreCase))
                ?? (names.Count > 0 ? names[0] : "unknown");
        }

        return SpfMacro.ExpandDomain(spec, new SpfMacroContext(state.Sender, domain, state.Ip, state.Helo, validated));
    }

    private static Match Void(State state, SpfMechanism m, string target) =>
        ++state.Voids > MaxVoidLookups
            ? Match.Stop(SpfResult.PermError,
                $"more than {MaxVoidLookups} lookups found nothing (the last: {m.Text} → {target}); RFC 7208 §4.6.4 makes that a permerror")
            : Match.No;

    private static string TooManyLookups(ImmutableList<string> chain, string term)
    {
        var text = $"the SPF evaluation needs more than {SpfRecord.MaxDnsLookups} DNS lookups (include, a, mx, ptr, exists, redirect; RFC 7208 §4.6.4), " +
                   $"exceeded at '{term}' after {string.Join(" → ", chain)}";
        var names = chain.Select(c => c[(c.IndexOfAny([':', '=']) + 1)..]).ToList();
        return names.Distinct(StringComparer.OrdinalIgnoreCase).Count() < names.Count ? text + "; the records include each other in a loop" : text;
    }

    /// <summary>A name DNS can carry: at most 253 characters, labels of 1-63, at least two labels (§4.3).</summary>
    internal static bool IsQueryableName(string name)
    {
        if (name.Length is 0 or > 253)
        {
            return false;
        }

        var labels = name.Split('.');
        return labels.Length >= 2 && Array.TrueForAll(labels, l => l.Length is > 0 and <= 63);
    }

    /// <summary>True when <paramref name="ip"/> lies in <paramref name="network"/>/<paramref name="prefix"/> (same family).</summary>
    internal static bool InPrefix(IPAddress ip, IPAddress network, int prefix)
    {
        if (network.IsIPv4MappedToIPv6 && ip.AddressFamily == AddressFamily.InterNetwork)
        {
            network = network.MapToIPv4();
        }

        if (ip.AddressFamily != network.AddressFamily)
        {
            return false;
        }

        Span<byte> a = stackalloc byte[16];
        Span<byte> b = stackalloc byte[16];
        ip.TryWriteBytes(a, out var length);
        network.TryWriteBytes(b, out _);
        var full = prefix / 8;
        if (!a[..full].SequenceEqual(b[..full]))
        {
            return false;
        }

        var bits = prefix % 8;
        if (bits == 0 || full >= length)
        {
            return true;
        }

        var mask = (byte)(0xFF << (8 - bits));
        return (a[full] & mask) == (b[full] & mask);
    }
}
