using Gateway.Core.Domains;
using Gateway.Core.Spf;
using Gateway.Core;
using Gateway.Core.Dns;

namespace Gateway.ControlPlane.Onboarding;

/// <summary>What DNS said about a domain's proof of ownership.</summary>
/// <param name="Verified">The TXT record or the MX was found.</param>
/// <param name="Method">Which one (TXT wins when both are there).</param>
/// <param name="DnsProblem">Lookups that failed (SERVFAIL, timeout), so "not found" may be wrong; null when none failed.</param>
public sealed record VerificationCheck(bool Verified, VerificationMethod Method, string? DnsProblem);

/// <summary>
/// Ownership proof of requirements §3.2: a TXT record <c>&lt;prefix&gt;=&lt;token&gt;</c> at the domain,
/// or an MX record of the domain naming the tenant's inbound host <c>&lt;company-id&gt;.in.&lt;gateway-domain&gt;</c>.
/// Only asks DNS; saving the result is <see cref="OnboardingService"/>'s job.
/// </summary>
public sealed class DomainVerifier(IMailDns dns, GatewayOptions options)
{
    /// <summary>The TXT record text that verifies the domain.</summary>
    public string TxtRecord(DomainConfig domain)
    {
        ArgumentNullException.ThrowIfNull(domain);
        return $"{options.VerificationPrefix}={domain.Verification.Token}";
    }

    /// <summary>The MX host that verifies the domain (and receives its mail through the gateway).</summary>
    public string MxHost(DomainConfig domain)
    {
        ArgumentNullException.ThrowIfNull(domain);
        return options.InboundMxHost(domain.CompanyId);
    }

    public async Task<VerificationCheck> CheckAsync(DomainConfig domain, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(domain);
        var txtTask = dns.TxtAsync(domain.Name, cancellationToken);
        var mxTask = dns.MxAsync(domain.Name, cancellationToken);
        var txt = await txtTask.ConfigureAwait(false);
        var mx = await mxTask.ConfigureAwait(false);

        // TXT content is compared whole (surrounding spaces trimmed); case is ignored because the token is
        // hex and DNS tooling sometimes changes case.
        var expected = TxtRecord(domain);
        if (txt.Records.Any(t => t.Trim().Equals(expected, StringComparison.OrdinalIgnoreCase)))
        {
            return new VerificationCheck(true, VerificationMethod.Txt, null);
        }

        var host = MxHost(domain);
        if (mx.Records.Any(m => m.Exchange.Equals(host, StringComparison.OrdinalIgnoreCase)))
        {
            return new VerificationCheck(true, VerificationMethod.Mx, null);
        }

        var problems = new[] { txt.Error, mx.Error }.Where(e => e is not null).ToList();
        return new VerificationCheck(false, VerificationMethod.None, problems.Count == 0 ? null : string.Join("; ", problems));
    }

    /// <summary>What to do when the domain is not verified: the exact TXT record, or the MX alternative.</summary>
    public string NotVerifiedMessage(DomainConfig domain, VerificationCheck? check)
    {
        ArgumentNullException.ThrowIfNull(domain);
        var message = $"Domain {domain.Name} is not verified. Add a TXT record at {domain.Name} with the text \"{TxtRecord(domain)}\" " +
                      $"(or point the MX record of {domain.Name} at {MxHost(domain)}), then verify again; unverified domains are also re-checked " +
                      "automatically. Outbound mail is not relayed until the domain is verified.";
        return check?.DnsProblem is { } problem ? $"{message} The last check could not read DNS: {problem}." : message;
    }

    /// <summary>The record that <see cref="NotVerifiedMessage"/> asks for.</summary>
    public SuggestedRecord SuggestedTxt(DomainConfig domain)
    {
        ArgumentNullException.ThrowIfNull(domain);
        return new SuggestedRecord(domain.Name, "TXT", TxtRecord(domain));
    }
}
