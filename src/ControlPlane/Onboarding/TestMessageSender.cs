using Gateway.Core.Mail;
using Gateway.Core.Delivery;
using Gateway.Core.Domains;
using Gateway.Core.Errors;
using Gateway.Core.MessageLog;
using MimeKit;
using MimeKit.Utils;
using Gateway.ControlPlane.Application;
using Gateway.Core;
using Gateway.Core.Routing;

namespace Gateway.ControlPlane.Onboarding;

/// <summary>
/// requirements §3.13: a generated message to an address of the domain, put into the Deliverer's
/// queue. It travels through the SAVED configuration because the Deliverer routes from its snapshot of
/// what is stored, never from a request's unsaved rows. The envelope sender is null (<c>&lt;&gt;</c>), as for
/// other probes, so a failure never produces a bounce to nowhere; the message log shows the outcome.
/// </summary>
public sealed class TestMessageSender(DomainManager domains, MessageQueue queue, MessageLogWriter log, GatewayOptions options, TimeProvider clock)
{
    public async Task<string> SendAsync(string companyId, string? name, string? recipient, CancellationToken cancellationToken)
    {
        var domain = await domains.GetAsync(companyId, name).ConfigureAwait(false);
        var violations = new List<FieldViolation>();
        var address = DomainValidator.NormalizeRecipient(domain.Name, recipient, "recipient", violations);
        if (violations.Count == 0 && address.StartsWith("*@", StringComparison.Ordinal))
        {
            violations.Add(new FieldViolation("recipient", $"give one address in {domain.Name}, such as postmaster@{domain.Name}"));
        }

        if (violations.Count > 0)
        {
            GatewayException.ThrowInvalid(violations);
        }

        if (!domain.Settings.InboundEnabled)
        {
            GatewayException.ThrowFailedPrecondition(
                $"Inbound relay is disabled for {domain.Name}: enable it and save the inbound servers before sending a test message.");
        }

        if (RoutePlanner.Plan(address, domain.Name, domain.Settings.InboundServers).Count == 0)
        {
            GatewayException.ThrowFailedPrecondition(
                $"No saved inbound server receives mail for {address}: add a row for *@{domain.Name} or for this address and save it first.");
        }

        var now = clock.GetUtcNow();
        var message = new MimeMessage
        {
            Subject = $"Mail gateway test message for {domain.Name}",
            Date = now,
            MessageId = MimeUtils.GenerateMessageId(options.GatewayDomain),
            Body = new TextPart("plain")
            {
                Text = $"""
                    This is a test message from the mail gateway ({options.GatewayDomain}).

                    It was sent to {address} at {now:yyyy-MM-dd HH:mm:ss} UTC through the saved inbound server
                    settings of {domain.Name}. If you can read it, inbound delivery from the gateway to your mail
                    server works. Nothing needs to be done.
                    """,
            },
        };
        message.From.Add(new MailboxAddress("Mail gateway test", $"no-reply@{options.GatewayDomain}"));
        message.To.Add(MailboxAddress.Parse(address));
        message.Headers.Add("Auto-Submitted", "auto-generated");

        using var buffer = new MemoryStream();
        await message.WriteToAsync(FormatOptions.Default, buffer, cancellationToken).ConfigureAwait(false);
        // Queued leased to this process, logged, then released to the Deliverers: the intake event comes before
        // any attempt in the log, so the message's events read in order by its id.
        var item = await queue.EnqueueLeasedAsync(new QueueEnvelope(domain.Name, Direction.Inbound, string.Empty, [address]), buffer.ToArray(), cancellationToken)
            .ConfigureAwait(false);
        try
        {
            await log.AppendAsync(new MessageLogEvent
            {
                Domain = domain.Name, Event = MessageLogEvents.Intake, Time = now, MessageId = item.Id, Direction = Direction.Inbound,
                Sender = string.Empty, Recipient = address, Detail = "test message (SendTestMessage)", Program = "controlplane",
            }).ConfigureAwait(false);
        }
        finally
        {
            await queue.CompleteAsync(item, clock.GetUtcNow()).ConfigureAwait(false);
            await queue.WakeAsync(item.Shard).ConfigureAwait(false);
        }

        return item.Id;
    }
}
