using Gateway.Core.Domains;
using Gateway.Core.Mail;
using System.Net;
using Gateway.Core.MessageLog;
using Gateway.Core.Routing;
using Gateway.Core.Snapshot;

namespace Gateway.Core.Relay;

/// <summary>
/// The relay decision of requirements §4, as a pure function of the request, the configuration snapshot and the
/// providers' ranges: no I/O, nothing about any MTA. Per recipient:
/// <list type="number">
/// <item>recipient domain managed with inbound enabled → accept, inbound, when a row of the domain routes the recipient
/// (else refused: unknown recipient, requirements §3.6);</item>
/// <item>else sender domain managed, verified, outbound enabled and the client among its sending sources → accept, outbound;</item>
/// <item>else reject (NO-DOMAIN);</item>
/// <item>(envelope checks run after an accept: <see cref="RelayEngine"/>);</item>
/// <item>no snapshot loaded yet → try later.</item>
/// </list>
/// Domains match exactly and case-insensitively (a subdomain is a domain of its own); lookups are O(1)
/// in the number of domains.
/// </summary>
public static class RelayRules
{
    public const string InboundDisabled = "inbound relay is disabled for the domain";
    public const string InboundNotOnListener = "inbound relay is not offered on this listener";
    public const string OutboundNotOnListener = "outbound relay is not offered on this listener";
    public const string NotVerified = "the domain is not verified";
    public const string GraceEnded = "the domain is not verified and its grace period for inbound relay has ended";
    public const string OutboundDisabled = "outbound relay is disabled for the domain";
    public const string NoSendingSource = "outbound relay is enabled but no sending source is configured";

    public static RelayDecision Evaluate(RelayRequest request, ConfigSnapshot snapshot, ProviderRanges providers)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(providers);

        if (request.Stage != SmtpStage.Rcpt)
        {
            return RelayDecision.NotApplicable;
        }

        if (!snapshot.IsLoaded)
        {
            return RelayDecision.NotLoaded;
        }

        if (request.Scope == RelayScope.Unknown)
        {
            return RelayDecision.UnknownScope;
        }

        // RFC 1123 §5.2.16, Postfix's allow_untrusted_routing = no: "a%b@managed", "b!a@managed" and "\"a@b\"@managed"
        // would have the customer's server (or the next relay) forward the message on; no rule may grant that.
        if (request.Problem != EnvelopeProblem.None)
        {
            return request.Problem == EnvelopeProblem.BadSender ? RelayDecision.BadSender : RelayDecision.BadRecipient;
        }

        if (EnvelopeAddress.HasRoutingSyntax(request.Recipient))
        {
            return RelayDecision.SenderRouting;
        }

        // Rule 1: inbound, by the recipient's domain.
        var recipientDomain = snapshot.FindEnvelopeDomain(request.RecipientDomain);
        string? inboundRefusal = null;
        if (recipientDomain is not null)
        {
            if (request.Scope == RelayScope.Outbound)
            {
                inboundRefusal = InboundNotOnListener;
            }
            else if (!recipientDomain.InboundEnabled)
            {
                inboundRefusal = InboundDisabled;
            }
            else if (InboundGraceEnded(recipientDomain, snapshot.UnverifiedInboundGrace, request.Time))
            {
                inboundRefusal = GraceEnded;
            }
            else if (!RoutePlanner.HasRoute(request.Recipient, recipientDomain))
            {
                // No row routes it: accepting it would only keep it for the lifetime and then bounce it to a sender that
                // may be forged (backscatter). Refused now, as Postfix refuses a recipient not in relay_recipient_maps.
                return new RelayDecision
                {
                    Outcome = RelayOutcome.Reject, Reason = RelayReason.UnknownRecipient, Direction = Direction.Inbound,
                    Domain = recipientDomain, RecipientDomain = recipientDomain,
                };
            }
            else
            {
                return new RelayDecision
                {
                    Outcome = RelayOutcome.Accept, Reason = RelayReason.Inbound, Direction = Direction.Inbound,
                    Domain = recipientDomain, RecipientDomain = recipientDomain,
                };
            }
        }

        // Rule 2: outbound, by the sender's domain and the client's address.
        var senderDomain = snapshot.FindEnvelopeDomain(request.SenderDomain);
        string? outboundRefusal = null;
        if (senderDomain is not null)
        {
            outboundRefusal = request.Scope == RelayScope.Inbound
                ? OutboundNotOnListener
                : WhyNotOutbound(senderDomain, request.ClientAddress, providers);
            if (outboundRefusal is null)
            {
                return new RelayDecision
                {
                    Outcome = RelayOutcome.Accept, Reason = RelayReason.Outbound, Direction = Direction.Outbound,
                    Domain = senderDomain, RecipientDomain = recipientDomain, SenderDomain = senderDomain,
                };
            }
        }

        // Rule 3.
        if (recipientDomain is null && senderDomain is null)
        {
            return RelayDecision.NoDomainUnmanaged;
        }

        return new RelayDecision
        {
            Outcome = RelayOutcome.Reject, Reason = RelayReason.NoDomain,
            RecipientDomain = recipientDomain, SenderDomain = senderDomain,
            InboundRefusal = inboundRefusal, OutboundRefusal = outboundRefusal,
        };
    }

    /// <summary>
    /// The optional grace period for unverified domains (docs/requirements.md §3, <c>Gateway:UnverifiedInboundGracePeriod</c>,
    /// off by default): once it has passed since registration, an unverified domain gets no inbound relay until verified.
    /// </summary>
    public static bool InboundGraceEnded(DomainEntry domain, TimeSpan grace, DateTimeOffset? now)
    {
        ArgumentNullException.ThrowIfNull(domain);
        return grace > TimeSpan.Zero && !domain.Verified && now is { } t && t - domain.Config.CreateTime > grace;
    }

    /// <summary>Null when the domain may relay outbound mail from <paramref name="clientAddress"/>; otherwise why not.</summary>
    public static string? WhyNotOutbound(DomainEntry domain, string clientAddress, ProviderRanges providers)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(providers);
        if (!domain.Verified)
        {
            return NotVerified;
        }

        var outbound = domain.Outbound;
        if (!outbound.Enabled)
        {
            return OutboundDisabled;
        }

        if (outbound.HasNoSource)
        {
            return NoSendingSource;
        }

        if (!IpAddressText.TryParseClient(clientAddress, out var client))
        {
            return $"the client address '{clientAddress}' is not an IP address";
        }

        if (domain.CustomIps.Contains(client) || providers.Allows(outbound.Office365, outbound.GoogleWorkspace, client))
        {
            return null;
        }

        return $"the client address {client} is not among the domain's sending sources";
    }
}

/// <summary>
/// The relay rules followed by the envelope checks (requirements §4.4). Pure as long as the checks are:
/// <c>Evaluate(request, snapshot, providers) → decision</c>. Checks may only turn an accept into a
/// refusal (see <see cref="IEnvelopeCheck"/>).
/// </summary>
public sealed class RelayEngine(IEnumerable<IEnvelopeCheck> checks)
{
    private readonly IEnvelopeCheck[] _checks = checks?.ToArray() ?? [];

    public RelayDecision Evaluate(RelayRequest request, ConfigSnapshot snapshot, ProviderRanges providers)
    {
        var decision = RelayRules.Evaluate(request, snapshot, providers);
        if (decision.Outcome != RelayOutcome.Accept)
        {
            return decision;
        }

        foreach (var check in _checks)
        {
            if (check.Check(request, decision) is { } refusal)
            {
                return decision with
                {
                    Outcome = refusal.Temporary ? RelayOutcome.TryLater : RelayOutcome.Reject,
                    Reason = RelayReason.EnvelopeRule,
                    ReplyText = refusal.ReplyText,
                    LogDetail = refusal.LogDetail,
                };
            }
        }

        return decision;
    }
}
