namespace Gateway.Core.Verification;

/// <summary>
/// Fleet settings of recipient verification (<c>Gateway:RecipientVerification</c>; docs/operations.md "Recipient
/// verification"). Whether a domain is verified at all, and how long its answers are kept, is the domain's own setting
/// (<see cref="Domains.RecipientVerificationSettings"/>); these bound what any domain's probes may cost.
/// </summary>
public sealed class VerificationOptions
{
    public const string Section = "Gateway:RecipientVerification";

    /// <summary>
    /// How long RCPT waits for a probe before answering <c>450 4.1.1</c> (the probe goes on and fills the cache for the
    /// sender's retry). Postfix polls its verify service 3 times 3 s apart (address_verify_poll_count/delay): about as long.
    /// </summary>
    public TimeSpan ProbeWait { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>TCP connect per address.</summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Each SMTP reply (greeting, EHLO, MAIL, RCPT). Postfix's smtp_*_timeout are minutes; a probe has no message to lose.</summary>
    public TimeSpan CommandTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The whole probe, every address included; then the answer is "unknown" (450, cached briefly).</summary>
    public TimeSpan ProbeDeadline { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long "unknown" (a 4xx, a timeout, no connection) is kept, so a dead server is not probed per RCPT.</summary>
    public TimeSpan TempfailTtl { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// A cached "deliverable" older than this is renewed: the RCPT is answered from the cache at once and a probe runs in the
    /// background (within <see cref="MaxProbesPerDomainPerMinute"/>), as Postfix's <c>address_verify_positive_refresh_time</c>
    /// (7 d of a 31 d expiry there). 12 h of the 7-day positive lifetime: a mailbox removed at the customer's server is refused
    /// at RCPT within about half a day of its next mail rather than a week, for at most two probes a day per recipient that
    /// gets mail. A refresh that learns nothing (4xx, timeout) keeps the answer (Postfix's optimistic caching); a 5xx to RCPT
    /// replaces it. Zero turns refreshing off (the answer is asked again only when it expires).
    /// </summary>
    public TimeSpan PositiveRefresh { get; set; } = TimeSpan.FromHours(12);

    /// <summary>Probes per domain per minute, fleet-wide (a Redis counter): a dictionary attack of random recipients costs the customer's server at most this.</summary>
    public int MaxProbesPerDomainPerMinute { get; set; } = 60;

    /// <summary>Probes at once to one server address (ip:port), per process.</summary>
    public int MaxConcurrentPerDestination { get; set; } = 2;

    /// <summary>Cached answers per domain; beyond it the answer that expires soonest is dropped (negative ones go first).</summary>
    public int MaxEntriesPerDomain { get; set; } = 10_000;

    /// <summary>Server addresses tried per probe (the route's hosts in order; Postfix's smtp_mx_address_limit is 5).</summary>
    public int MaxAddresses { get; set; } = 3;

    /// <summary>The probe's envelope sender; empty: the null sender <c>&lt;&gt;</c> (Postfix's address_verify_sender default is <c>double-bounce</c>; see docs/operations.md).</summary>
    public string ProbeSender { get; set; } = string.Empty;

    /// <summary>EHLO name; empty: <c>Gateway:Queue:HostName</c>, else the machine's host name.</summary>
    public string HeloName { get; set; } = string.Empty;

    public static bool IsValid(VerificationOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        return o.ProbeWait > TimeSpan.Zero && o.ConnectTimeout > TimeSpan.Zero && o.CommandTimeout > TimeSpan.Zero &&
               o.ProbeDeadline > TimeSpan.Zero && o.TempfailTtl > TimeSpan.Zero && o.PositiveRefresh >= TimeSpan.Zero && o.MaxProbesPerDomainPerMinute > 0 &&
               o.MaxConcurrentPerDestination > 0 && o.MaxEntriesPerDomain > 0 && o.MaxAddresses > 0 &&
               (o.ProbeSender.Length == 0 || Mail.EnvelopeAddress.TryParse(o.ProbeSender, out _, out _)) &&
               !o.HeloName.Any(c => c is ' ' or '\r' or '\n');
    }
}
