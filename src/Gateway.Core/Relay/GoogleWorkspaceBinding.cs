using System.Globalization;
using System.Net;
using DnsClient;
using Gateway.Core.Dns;
using Gateway.Core.Snapshot;
using MimeKit;
using MimeKit.Cryptography;
using Org.BouncyCastle.Crypto;

namespace Gateway.Core.Relay;

/// <summary>
/// requirements §3.9, Google Workspace tied to the customer's own Google account (security review H1, "EchoSpoofing"):
/// Google's sending ranges are shared by every Google Workspace (and Gmail) user, so an outbound message that came in
/// through them (and not from one of the domain's own custom IPs) is relayed only when it carries a DKIM signature that
/// <list type="bullet">
/// <item>names the domain itself (<c>d=</c> equal to the domain: strict alignment. Google Admin signs with the domain the
/// key was generated for, each Workspace domain (also a secondary or sub-domain) has its own key; accepting a parent or
/// a subdomain would let whoever holds that zone's key, possibly another tenant of this gateway, relay as this domain),</item>
/// <item>was made with the key the customer generated in Google Admin (<c>s=</c> equal to
/// <see cref="Domains.OutboundSettings.GoogleWorkspaceDkimSelector"/>: not the gateway's own signing key, not a
/// marketing service's key under the same domain),</item>
/// <item>covers the whole body (a signature with <c>l=</c> does not count: Google never sets it, and with it anyone could
/// append to a message the customer once sent), is not expired (<c>x=</c>), not dated in the future and at most
/// <see cref="MaxSignatureAge"/> old (<c>t=</c>: bounds replaying an old signed message),</item>
/// <item>and verifies (rsa-sha256 or ed25519-sha256, RSA keys of at least 1024 bits) against the key published at
/// <c>&lt;selector&gt;._domainkey.&lt;domain&gt;</c>, looked up with the gateway's resolver (<c>Gateway:Dns</c>).</item>
/// </list>
/// Why DKIM and not Google's SMTP relay with SMTP AUTH: the Postfix in front of the gateway does not offer AUTH to
/// the internet, and DKIM works with Google's default outbound route and its "outbound gateway" setting alike. A key
/// that cannot be looked up now (timeout, SERVFAIL) is a temporary failure (<c>451 4.7.0</c>): the message comes back.
/// </summary>
public sealed class GoogleWorkspaceBinding(ConfigSnapshot snapshot, ProviderRangesService ranges, ILookupClient dns, TimeProvider clock)
{
    /// <summary>A signature older than this (its <c>t=</c>) does not count. Google signs as the message leaves, and retries a
    /// refused or deferred delivery for days; a week covers that and still stops replays of old messages.</summary>
    public static readonly TimeSpan MaxSignatureAge = TimeSpan.FromDays(7);

    /// <summary>A <c>t=</c> this far ahead of the gateway's clock still counts (clock skew).</summary>
    public static readonly TimeSpan MaxClockSkew = TimeSpan.FromMinutes(15);

    /// <summary>Signatures of the domain with its selector verified per message at most (each costs a DNS lookup and a hash).</summary>
    public const int MaxSignaturesVerified = 3;

    /// <summary>The whole check, DNS included, ends within this.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    /// <summary>A selector Google Admin can produce: one DNS label (letters, digits, hyphen; not starting or ending with a hyphen).</summary>
    public static bool IsSelector(string text) =>
        text is { Length: > 0 and <= 63 } && text[0] != '-' && text[^1] != '-' && text.All(c => char.IsAsciiLetterOrDigit(c) || c == '-');

    /// <summary>Whether the Google binding applies to <paramref name="domain"/>'s mail from <paramref name="client"/>.</summary>
    public static bool Applies(DomainEntry domain, IPAddress client, ProviderRanges providers)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(providers);
        return domain.Outbound.GoogleWorkspace && !domain.CustomIps.Contains(client) && providers.GoogleWorkspace.Contains(client);
    }

    /// <summary>
    /// The first outbound domain among <paramref name="outboundDomains"/> whose Google binding refuses the message, with
    /// the reply for DATA (<c>550 5.7.1</c>, or <c>451 4.7.0</c> when DNS failed), or null. <paramref name="message"/> is
    /// opened only when a domain's binding applies, and parsed in persistent mode: a big message stays in its pieces in Redis
    /// and the signature's body hash reads it block by block (requirements §11, bounded memory). The stream is disposed here.
    /// </summary>
    public async Task<(string Domain, string Reply)?> RefusalAsync(IEnumerable<string> outboundDomains, string clientAddress, Func<Task<Stream?>> message,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(outboundDomains);
        ArgumentNullException.ThrowIfNull(message);
        if (!Domains.IpAddressText.TryParseClient(clientAddress, out var client))
        {
            return null;
        }

        Stream? source = null;
        MimeMessage? parsed = null;
        try
        {
            foreach (var name in outboundDomains)
            {
                if (snapshot.Find(name) is not { } domain || !Applies(domain, client, ranges.Current))
                {
                    continue;
                }

                if (source is null)
                {
                    source = await message().ConfigureAwait(false);
                    parsed = source is null ? null : await ParseAsync(source, cancellationToken).ConfigureAwait(false);
                }

                var verdict = await CheckAsync(domain, parsed, dns, clock.GetUtcNow(), cancellationToken).ConfigureAwait(false);
                if (verdict is not null)
                {
                    return (domain.Name, verdict);
                }
            }

            return null;
        }
        finally
        {
            parsed?.Dispose();
            if (source is not null)
            {
                await source.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task<MimeMessage?> ParseAsync(Stream message, CancellationToken cancellationToken)
    {
        try
        {
            return await MimeMessage.LoadAsync(ParserOptions.Default, message, persistent: true, cancellationToken).ConfigureAwait(false);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>The DATA reply refusing <paramref name="message"/> for <paramref name="domain"/>, or null when a signature passes.</summary>
    public static async Task<string?> CheckAsync(DomainEntry domain, MimeMessage? message, ILookupClient dns, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(domain);
        const string Refused = "550 5.7.1 Sender not authorised: ";
        if (domain.Outbound.GoogleWorkspaceDkimSelector is not { } selector)
        {
            return Refused + $"{domain.Name} allows Google Workspace but has no Google Workspace DKIM selector (outbound.google_workspace_dkim_selector): " +
                   "mail from Google cannot be tied to the domain's own Google account";
        }

        if (message is null)
        {
            return Refused + $"message from Google Workspace that cannot be parsed: no DKIM signature of {domain.Name} found";
        }

        var candidates = Candidates(message, domain.Name, selector, now, out var skipped);
        if (candidates.Count == 0)
        {
            return Refused + $"message from Google Workspace without a DKIM signature of {domain.Name} (d={domain.Name}, s={selector})" +
                   (skipped is null ? string.Empty : $": {skipped}");
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        var locator = new DnsKeyLocator(dns);
        var verifier = new DkimVerifier(locator) { MinimumRsaKeyLength = 1024 };
        verifier.Disable(DkimSignatureAlgorithm.RsaSha1);
        foreach (var header in candidates.Take(MaxSignaturesVerified))
        {
            try
            {
                if (await verifier.VerifyAsync(message, header, timeout.Token).ConfigureAwait(false))
                {
                    return null;
                }
            }
            catch (DnsKeyUnavailableException e)
            {
                return $"451 4.7.0 Try again later: the DKIM key of {domain.Name} cannot be looked up now ({e.Message})";
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                return $"451 4.7.0 Try again later: the DKIM key of {domain.Name} cannot be looked up now (timed out)";
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // A malformed signature, an unusable key (revoked: empty p=, bad base64, too short, unknown algorithm): does not count.
                _ = e;
            }
        }

        return Refused + $"message from Google Workspace whose DKIM signature of {domain.Name} does not verify (altered, or not signed with the key at {selector}._domainkey.{domain.Name})";
    }

    /// <summary>The DKIM-Signature headers with <c>d=</c> the domain, <c>s=</c> the selector, no <c>l=</c>, in date.</summary>
    private static List<Header> Candidates(MimeMessage message, string domain, string selector, DateTimeOffset now, out string? skipped)
    {
        skipped = null;
        var found = new List<Header>();
        foreach (var header in message.Headers)
        {
            if (header.Id != HeaderId.DkimSignature)
            {
                continue;
            }

            var tags = SignatureTags(header.Value);
            if (!tags.TryGetValue("d", out var d) || !string.Equals(d.TrimEnd('.'), domain, StringComparison.OrdinalIgnoreCase) ||
                !tags.TryGetValue("s", out var s) || !string.Equals(s, selector, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }

            if (tags.ContainsKey("l"))
            {
                skipped = "its signature covers only part of the body (l=)";
                continue;
            }

            if (tags.TryGetValue("x", out var x) && (!long.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out var expires) ||
                                                     expires < now.ToUnixTimeSeconds()))
            {
                skipped = "its signature has expired (x=)";
                continue;
            }

            if (tags.TryGetValue("t", out var t))
            {
                if (!long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var signed) || signed > (now + MaxClockSkew).ToUnixTimeSeconds())
                {
                    skipped = "its signature is dated in the future (t=)";
                    continue;
                }

                if (signed < (now - MaxSignatureAge).ToUnixTimeSeconds())
                {
                    skipped = $"its signature is older than {MaxSignatureAge.TotalDays:0} days (t=)";
                    continue;
                }
            }

            found.Add(header);
        }

        return found;
    }

    /// <summary>
    /// The tags of a DKIM-Signature (RFC 6376 §3.2), trimmed; the first of a repeated tag (the verifier refuses such a
    /// signature anyway). Only d, s, l, x and t are read here. (Gateway.Core.Dkim's record parser is not used: Relay does
    /// not depend on the key store's namespace, docs/architecture.md.)
    /// </summary>
    private static Dictionary<string, string> SignatureTags(string value)
    {
        var tags = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var part in value.Split(';'))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                tags.TryAdd(part[..eq].Trim(), part[(eq + 1)..].Trim());
            }
        }

        return tags;
    }

    /// <summary>DKIM key records (RFC 6376 §3.6.2.2) from DNS with the gateway's resolver.</summary>
    private sealed class DnsKeyLocator(ILookupClient client) : DkimPublicKeyLocatorBase
    {
        private readonly MailDns _dns = new(client);

        public override AsymmetricKeyParameter LocatePublicKey(string methods, string domain, string selector, CancellationToken cancellationToken = default) =>
            throw new NotSupportedException("DKIM keys are looked up asynchronously only.");

        public override async Task<AsymmetricKeyParameter> LocatePublicKeyAsync(string methods, string domain, string selector, CancellationToken cancellationToken = default)
        {
            ArgumentNullException.ThrowIfNull(methods);
            if (!methods.Split(':').Any(m => m.Trim().Equals("dns/txt", StringComparison.OrdinalIgnoreCase)))
            {
                throw new NotSupportedException($"no supported key query method in q={methods}");
            }

            var name = $"{selector}._domainkey.{domain}";
            var answer = await _dns.TxtAsync(name, cancellationToken).ConfigureAwait(false);
            if (answer.Outcome == DnsOutcome.Failed)
            {
                cancellationToken.ThrowIfCancellationRequested();
                throw new DnsKeyUnavailableException(answer.Error ?? $"TXT lookup of {name} failed");
            }

            // RFC 6376 §3.6.2.2: more than one record or none is a failure to verify (permanent).
            var keys = answer.Records.Where(r => r.Contains("p=", StringComparison.Ordinal)).ToList();
            if (keys.Count != 1)
            {
                throw new InvalidOperationException($"{name} publishes {keys.Count} DKIM key records");
            }

            return GetPublicKey(keys[0]);
        }
    }

    private sealed class DnsKeyUnavailableException(string message) : Exception(message);
}
