namespace Gateway.PolicyDaemon.Protocol;

/// <summary>
/// The attributes of one Postfix SMTP access policy request (SMTPD_POLICY_README, "Protocol description")
/// that the gateway decides on or logs. Attributes it does not use are counted by the parser and otherwise
/// ignored, as the protocol asks (and not decoded: a request costs a few strings, not thirty). A value is
/// null when the attribute was not sent, empty when sent empty.
/// </summary>
public sealed class PolicyRequest
{
    /// <summary>The only request type Postfix's SMTP server sends.</summary>
    public const string SmtpdAccessPolicy = "smtpd_access_policy";

    internal static ReadOnlySpan<byte> SmtpdAccessPolicyUtf8 => "smtpd_access_policy"u8;

    internal readonly string?[] Values = new string?[(int)PolicyAttribute.Count];

    public string? Request => Values[(int)PolicyAttribute.Request];

    public string? ProtocolState => Values[(int)PolicyAttribute.ProtocolState];

    public string? Sender => Values[(int)PolicyAttribute.Sender];

    public string? Recipient => Values[(int)PolicyAttribute.Recipient];

    public string? ClientAddress => Values[(int)PolicyAttribute.ClientAddress];

    public string? ClientName => Values[(int)PolicyAttribute.ClientName];

    public string? HeloName => Values[(int)PolicyAttribute.HeloName];

    public string? QueueId => Values[(int)PolicyAttribute.QueueId];

    public string? Size => Values[(int)PolicyAttribute.Size];

    /// <summary>Postfix 3.1+: <c>smtpd_policy_service_policy_context</c> of the listener.</summary>
    public string? PolicyContext => Values[(int)PolicyAttribute.PolicyContext];

    /// <summary>Every attribute line of the request, used or not.</summary>
    public int AttributeCount { get; internal set; }
}

/// <summary>The attributes <see cref="PolicyRequest"/> keeps.</summary>
internal enum PolicyAttribute
{
    Request,
    ProtocolState,
    Sender,
    Recipient,
    ClientAddress,
    ClientName,
    HeloName,
    QueueId,
    Size,
    PolicyContext,
    Count,
}
