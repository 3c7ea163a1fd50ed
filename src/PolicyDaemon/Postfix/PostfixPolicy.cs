using System.Globalization;
using System.Text;
using Gateway.Core.Mail;
using Gateway.Core.Relay;
using Gateway.PolicyDaemon.Protocol;

namespace Gateway.PolicyDaemon.Postfix;

/// <summary>
/// The Postfix side of the policy front end, as pure functions: a policy request in relay terms, and a
/// decision as a Postfix access(5) action. Replies (requirements §4):
/// <list type="table">
/// <item><term>accept</term><description><c>OK</c> (<see cref="PolicyDaemonOptions.AcceptAction"/>)</description></item>
/// <item><term>NO-DOMAIN</term><description><c>REJECT NO-DOMAIN</c>; Postfix tells the client
/// <c>554 5.7.1 &lt;rcpt&gt;: Recipient address rejected: NO-DOMAIN</c></description></item>
/// <item><term>no snapshot yet</term><description><c>DEFER_IF_PERMIT</c> + <see cref="NotLoadedText"/> (4xx)</description></item>
/// <item><term>unknown policy_context</term><description><c>DEFER_IF_PERMIT</c> + <see cref="UnknownContextText"/></description></item>
/// <item><term>REJECT rule</term><description><c>550 5.7.1 &lt;rule text&gt;</c></description></item>
/// <item><term>other protocol states</term><description><c>DUNNO</c></description></item>
/// </list>
/// </summary>
public sealed class PostfixPolicy
{
    public const string RejectNoDomain = "REJECT NO-DOMAIN";
    public const string Dunno = "DUNNO";
    public const string NotLoadedText = RelayDecision.NotLoadedText;
    public const string UnknownContextText = RelayDecision.UnknownScopeText;
    public const string ContextInbound = "inbound";
    public const string ContextOutbound = "outbound";

    /// <summary>The action prefix of a policy rule's refusal (docs/rules.md).</summary>
    public const string RuleRejectPrefix = Gateway.Core.Rules.RuleDefaults.RejectPrefix;

    private readonly string _accept;
    private readonly byte[] _acceptReply;
    private static readonly byte[] DunnoReply = Frame(Dunno);
    private static readonly byte[] RejectReply = Frame(RejectNoDomain);
    private static readonly byte[] NotLoadedReply = Frame("DEFER_IF_PERMIT " + NotLoadedText);
    private static readonly byte[] UnknownContextReply = Frame("DEFER_IF_PERMIT " + UnknownContextText);

    public PostfixPolicy(string acceptAction)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(acceptAction);
        _accept = acceptAction;
        _acceptReply = Frame(acceptAction);
    }

    /// <summary>
    /// The request in MTA-neutral terms, its addresses in canonical form (<see cref="EnvelopeAddress"/>). Postfix passes
    /// them in its internal, unquoted form (<c>"john smith"@example.com</c> arrives as <c>john smith@example.com</c>).
    /// </summary>
    public static RelayRequest ToRelayRequest(PolicyRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var problem = EnvelopeProblem.None;
        var sender = Canonical(request.Sender, ref problem, EnvelopeProblem.BadSender);
        var recipient = Canonical(request.Recipient, ref problem, EnvelopeProblem.BadRecipient);
        return new RelayRequest
        {
            Stage = Stage(request.ProtocolState),
            Scope = Scope(request.PolicyContext),
            Sender = sender,
            Recipient = recipient,
            Problem = problem,
            ClientAddress = request.ClientAddress ?? string.Empty,
            ClientName = request.ClientName,
            HeloName = request.HeloName,
            QueueId = string.IsNullOrEmpty(request.QueueId) ? null : request.QueueId,
            Size = long.TryParse(request.Size, NumberStyles.None, CultureInfo.InvariantCulture, out var size) ? size : null,
        };
    }

    /// <summary>An address in canonical form; one that is not an address is kept as given and noted in <paramref name="problem"/>.</summary>
    private static string Canonical(string? address, ref EnvelopeProblem problem, EnvelopeProblem ifBad)
    {
        if (string.IsNullOrEmpty(address))
        {
            return string.Empty;
        }

        if (EnvelopeAddress.TryFromUnquoted(address, out var canonical, out _))
        {
            return canonical.Address;
        }

        if (problem == EnvelopeProblem.None)
        {
            problem = ifBad;
        }

        return address;
    }

    /// <summary>Postfix protocol states (SMTPD_POLICY_README): CONNECT, EHLO, HELO, MAIL, RCPT, DATA, END-OF-MESSAGE, VRFY, ETRN.</summary>
    public static SmtpStage Stage(string? protocolState) => protocolState switch
    {
        "RCPT" => SmtpStage.Rcpt,
        "CONNECT" => SmtpStage.Connect,
        "EHLO" or "HELO" => SmtpStage.Helo,
        "MAIL" => SmtpStage.Mail,
        "DATA" => SmtpStage.Data,
        "END-OF-MESSAGE" => SmtpStage.EndOfMessage,
        _ => SmtpStage.Other,
    };

    /// <summary>
    /// <c>policy_context</c> as set per listener (<c>-o smtpd_policy_service_policy_context=inbound</c>): empty
    /// for both directions, <c>inbound</c> or <c>outbound</c> for one; anything else is a configuration
    /// error that is answered "try later" rather than guessed.
    /// </summary>
    public static RelayScope Scope(string? policyContext) => policyContext switch
    {
        null or "" => RelayScope.Any,
        ContextInbound => RelayScope.Inbound,
        ContextOutbound => RelayScope.Outbound,
        _ => RelayScope.Unknown,
    };

    /// <summary>The action text (without <c>action=</c>).</summary>
    public string Action(RelayDecision decision)
    {
        ArgumentNullException.ThrowIfNull(decision);
        return decision.Outcome switch
        {
            RelayOutcome.NotApplicable => Dunno,
            RelayOutcome.Accept => _accept,
            RelayOutcome.Reject when decision.Reason == RelayReason.NoDomain => RejectNoDomain,
            // access(5) "5NN text" with an enhanced code: Postfix answers "550 5.7.1 <rcpt>: Recipient address rejected: text".
            RelayOutcome.Reject => decision.Refusal is { } r ? $"{r.Code} {r.Status} {r.Text}" : RejectNoDomain,
            // Recipient verification: "450 4.1.1 text" at once, as Postfix's own unverified_recipient_defer_code (not
            // DEFER_IF_PERMIT's 4.7.1: the recipient is what is unknown, not the client's permission).
            RelayOutcome.TryLater when decision.Reason == RelayReason.UnverifiedRecipient && decision.Refusal is { } v => $"{v.Code} {v.Status} {v.Text}",
            _ => "DEFER_IF_PERMIT " + (decision.Refusal?.Text ?? NotLoadedText),
        };
    }

    /// <summary>The whole reply on the wire: <c>action=…</c> LF, empty line. Constant replies are cached.</summary>
    public ReadOnlySpan<byte> Reply(RelayDecision decision, string action)
    {
        ArgumentNullException.ThrowIfNull(decision);
        return decision.Reason switch
        {
            RelayReason.NotRecipientStage => DunnoReply,
            RelayReason.Inbound or RelayReason.Outbound => _acceptReply,
            RelayReason.NoDomain => RejectReply,
            RelayReason.NotLoaded => NotLoadedReply,
            RelayReason.UnknownScope => UnknownContextReply,
            _ => Frame(action),
        };
    }

    /// <summary><c>action=&lt;action&gt;\n\n</c>.</summary>
    public static byte[] Frame(string action) => Encoding.UTF8.GetBytes("action=" + action + "\n\n");
}
