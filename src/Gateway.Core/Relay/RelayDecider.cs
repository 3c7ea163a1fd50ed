using Gateway.Core.Hosting;
using Gateway.Core.Mail;
using Gateway.Core.MessageLog;
using Gateway.Core.Snapshot;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Gateway.Core.Relay;

/// <summary>
/// The relay decision as a service for front ends: the live snapshot and provider ranges fed to
/// <see cref="RelayEngine"/>. Answers from memory only; it never waits on Redis or DNS.
/// </summary>
public sealed class RelayDecider(ConfigSnapshot snapshot, ProviderRangesService ranges, RelayEngine engine)
{
    public RelayDecision Decide(RelayRequest request) => engine.Evaluate(request, snapshot, ranges.Current);

    /// <summary>
    /// The first outbound domain among <paramref name="outboundDomains"/> whose provider binding refuses the message
    /// (<see cref="ProviderBinding"/>) and why, or null: checked at DATA, once the headers are known.
    /// </summary>
    public (string Domain, string Reason)? ProviderBindingRefusal(IEnumerable<string> outboundDomains, string clientAddress, ReadOnlySpan<byte> message)
    {
        ArgumentNullException.ThrowIfNull(outboundDomains);
        if (!Domains.IpAddressText.TryParseClient(clientAddress, out var client))
        {
            return null;
        }

        foreach (var name in outboundDomains)
        {
            if (snapshot.Find(name) is { } domain && ProviderBinding.Refusal(domain, client, ranges.Current, message) is { } reason)
            {
                return (domain.Name, reason);
            }
        }

        return null;
    }
}

/// <summary>
/// Turns a decision into the message log events of the managed domains involved (requirements §7: logs are per
/// domain). A NO-DOMAIN refusal that concerns no managed domain writes nothing: there is no customer to
/// tell, and one stream per spam attempt would only load Redis (front ends count it in a metric instead).
/// </summary>
public static class RelayLog
{
    /// <param name="reply">What the client was told (e.g. the Postfix action), stored as the event's reply.</param>
    /// <param name="includeAccepts">Also log accepted recipients (<see cref="MessageLogEvents.PolicyAccept"/>).</param>
    public static IReadOnlyList<MessageLogEvent> Events(RelayRequest request, RelayDecision decision, string reply, string program, bool includeAccepts, DateTimeOffset time)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(decision);
        switch (decision.Outcome)
        {
            case RelayOutcome.Accept when includeAccepts && decision.Domain is { } accepted:
                return [Event(request, accepted.Name, MessageLogEvents.PolicyAccept, decision.Direction, reply, null, program, time)];
            case RelayOutcome.Reject or RelayOutcome.TryLater when decision.Reason == RelayReason.EnvelopeRule && decision.Domain is { } ruled:
                return [Event(request, ruled.Name, MessageLogEvents.PolicyReject, decision.Direction, reply, decision.LogDetail, program, time)];
            case RelayOutcome.Reject when decision.Reason == RelayReason.UnknownRecipient && decision.Domain is { } unknown:
                return [Event(request, unknown.Name, MessageLogEvents.PolicyReject, Direction.Inbound, reply, "no inbound server row of the domain routes this recipient",
                    program, time)];
            case RelayOutcome.Reject or RelayOutcome.TryLater when decision.Reason == RelayReason.UnverifiedRecipient && decision.Domain is { } verified:
                return [Event(request, verified.Name, MessageLogEvents.PolicyReject, Direction.Inbound, reply, decision.LogDetail, program, time)];
            case RelayOutcome.Reject when decision.Reason == RelayReason.NoDomain:
                var rcpt = decision.RecipientDomain;
                var sender = decision.SenderDomain;
                if (rcpt is not null && sender is not null && ReferenceEquals(rcpt, sender))
                {
                    var both = $"inbound: {decision.InboundRefusal}; outbound: {decision.OutboundRefusal}";
                    return [Event(request, rcpt.Name, MessageLogEvents.PolicyReject, null, reply, both, program, time)];
                }

                var events = new List<MessageLogEvent>(2);
                if (rcpt is not null)
                {
                    events.Add(Event(request, rcpt.Name, MessageLogEvents.PolicyReject, Direction.Inbound, reply, decision.InboundRefusal, program, time));
                }

                if (sender is not null)
                {
                    events.Add(Event(request, sender.Name, MessageLogEvents.PolicyReject, Direction.Outbound, reply, decision.OutboundRefusal, program, time));
                }

                return events;
            default:
                return [];
        }
    }

    private static MessageLogEvent Event(RelayRequest r, string domain, string name, Direction? direction, string reply, string? detail, string program, DateTimeOffset time) => new()
    {
        Domain = domain,
        Event = name,
        Time = time,
        Direction = direction,
        Sender = r.Sender,
        Recipient = r.Recipient,
        ClientAddress = r.ClientAddress,
        Reply = reply,
        Detail = detail,
        Program = program,
        PostfixQueueId = r.QueueId,
    };
}

public static class RelayServiceCollectionExtensions
{
    /// <summary>
    /// The relay decision for front ends: provider ranges (kept current as a hosted service), the engine with
    /// every registered <see cref="IEnvelopeCheck"/>, and <see cref="RelayDecider"/>. Needs
    /// <c>AddGatewayCore</c> and <c>AddConfigSnapshot</c>.
    /// </summary>
    public static IServiceCollection AddRelayDecisions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ProviderRangesOptions>()
            .Bind(configuration.GetSection(ProviderRangesOptions.Section))
            .Validate(o => o.RefreshInterval >= TimeSpan.Zero, "Gateway:ProviderRanges:RefreshInterval must not be negative (0: never refresh from DNS).")
            .Validate(o => o.CheckInterval > TimeSpan.Zero, "Gateway:ProviderRanges:CheckInterval must be positive.")
            .Validate(o => Domains.DomainName.TryNormalize(o.Office365SpfDomain.TrimStart('_'), out _, out _) &&
                           Domains.DomainName.TryNormalize(o.GoogleWorkspaceSpfDomain.TrimStart('_'), out _, out _),
                "Gateway:ProviderRanges:*SpfDomain must be DNS names.")
            .Validate(o => string.IsNullOrEmpty(o.File) || File.Exists(o.File), "Gateway:ProviderRanges:File does not exist.")
            .ValidateOnStart();
        services.AddSingleton<ProviderRangesService>();
        services.AddHostedService(sp => sp.GetRequiredService<ProviderRangesService>());
        services.AddSingleton(sp => new RelayEngine(sp.GetServices<IEnvelopeCheck>()));
        services.AddSingleton<RelayDecider>();
        services.AddSingleton<GoogleWorkspaceBinding>();
        return services;
    }
}
