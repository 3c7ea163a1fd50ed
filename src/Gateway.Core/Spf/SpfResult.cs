namespace Gateway.Core.Spf;

/// <summary>The results of <c>check_host()</c> (RFC 7208 §2.6).</summary>
public enum SpfResult
{
    None,
    Neutral,
    Pass,
    Fail,
    SoftFail,
    TempError,
    PermError,
}

/// <summary>
/// The outcome of one <c>check_host()</c> evaluation, with what an administrator needs to fix a
/// record: why it was a permerror/temperror, and which mechanism (reached through which
/// includes/redirects) decided the result.
/// </summary>
/// <param name="Result">The SPF result.</param>
/// <param name="Problem">For none, permerror and temperror: what went wrong, in words; else null.</param>
/// <param name="DecidedBy">
/// The mechanism that matched and the chain of records that led to it, e.g.
/// <c>ip4:192.0.2.10 in _spf.gw.example (example.com → include:_spf.provider.example → include:_spf.gw.example)</c>;
/// null when no mechanism matched.
/// </param>
/// <param name="DnsLookups">DNS-querying terms evaluated (RFC 7208 §4.6.4 allows 10).</param>
/// <param name="VoidLookups">Queries that found nothing (RFC 7208 §4.6.4 allows 2).</param>
public sealed record SpfEvaluation(SpfResult Result, string? Problem, string? DecidedBy, int DnsLookups, int VoidLookups);
