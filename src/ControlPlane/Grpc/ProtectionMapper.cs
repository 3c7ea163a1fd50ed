using Gateway.Core.Domains;
using V1 = Gateway.Api.V1;

namespace Gateway.ControlPlane.Grpc;

/// <summary>
/// Between gateway.v1's <c>ProtectionSettings</c> and the model. Out: every value in force, defaults included (so
/// <c>GetDomain</c> and <c>gatewayctl setup</c> show them). In: an unset field means its default; an enum number
/// the API does not define becomes a value the validator refuses with a field violation.
/// </summary>
public static class ProtectionMapper
{
    public static V1.ProtectionSettings ToApi(ProtectionSettings p)
    {
        ArgumentNullException.ThrowIfNull(p);
        return new V1.ProtectionSettings
        {
            Spam = new V1.SpamProtection
            {
                TagScore = p.Spam.TagScore,
                QuarantineScore = p.Spam.QuarantineScore,
                RejectScore = p.Spam.RejectScore,
                SubjectTag = p.Spam.SubjectTag,
                OutboundRejectScore = p.Spam.OutboundRejectScore,
            },
            Malware = ToApi(p.Malware),
            DmarcEnforce = p.DmarcEnforce,
            Spoofing = ToApi(p.Spoofing),
            OnScannerFailure = p.OnScannerFailure == ScannerFailureAction.Pass ? V1.ScannerFailureAction.Pass : V1.ScannerFailureAction.Tempfail,
        };
    }

    public static ProtectionSettings ToModel(V1.ProtectionSettings? p)
    {
        if (p is null)
        {
            return ProtectionSettings.Default;
        }

        var d = ProtectionSettings.Default;
        var s = p.Spam;
        return new ProtectionSettings
        {
            Spam = s is null
                ? d.Spam
                : new SpamProtection
                {
                    TagScore = s.HasTagScore ? s.TagScore : d.Spam.TagScore,
                    QuarantineScore = s.HasQuarantineScore ? s.QuarantineScore : d.Spam.QuarantineScore,
                    RejectScore = s.HasRejectScore ? s.RejectScore : d.Spam.RejectScore,
                    SubjectTag = s.SubjectTag,
                    OutboundRejectScore = s.HasOutboundRejectScore ? s.OutboundRejectScore : d.Spam.OutboundRejectScore,
                },
            Malware = ToModel(p.Malware, d.Malware),
            DmarcEnforce = p.HasDmarcEnforce ? p.DmarcEnforce : d.DmarcEnforce,
            Spoofing = ToModel(p.Spoofing, d.Spoofing),
            OnScannerFailure = p.OnScannerFailure switch
            {
                V1.ScannerFailureAction.Unspecified => d.OnScannerFailure,
                V1.ScannerFailureAction.Tempfail => ScannerFailureAction.TempFail,
                V1.ScannerFailureAction.Pass => ScannerFailureAction.Pass,
                _ => (ScannerFailureAction)(-1),
            },
        };
    }

    private static V1.ProtectionAction ToApi(ProtectionAction a) => a switch
    {
        ProtectionAction.Deliver => V1.ProtectionAction.Deliver,
        ProtectionAction.Tag => V1.ProtectionAction.Tag,
        ProtectionAction.Quarantine => V1.ProtectionAction.Quarantine,
        _ => V1.ProtectionAction.Reject,
    };

    private static ProtectionAction ToModel(V1.ProtectionAction a, ProtectionAction unset) => a switch
    {
        V1.ProtectionAction.Unspecified => unset,
        V1.ProtectionAction.Deliver => ProtectionAction.Deliver,
        V1.ProtectionAction.Tag => ProtectionAction.Tag,
        V1.ProtectionAction.Quarantine => ProtectionAction.Quarantine,
        V1.ProtectionAction.Reject => ProtectionAction.Reject,
        _ => (ProtectionAction)(-1),
    };
}
