using Gateway.ControlPlane.Onboarding;
using Google.Protobuf.WellKnownTypes;
using V1 = Gateway.Api.V1;

namespace Gateway.ControlPlane.Grpc;

/// <summary>Between the onboarding results (verification, health, connection test) and gateway.v1.</summary>
public static class OnboardingMapper
{
    public static V1.CheckDomainResponse ToApi(HealthReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var response = new V1.CheckDomainResponse
        {
            Name = report.Domain,
            Status = (V1.DomainStatus)report.Status,
            CheckTime = Timestamp.FromDateTimeOffset(report.CheckTime),
        };
        response.Findings.AddRange(report.Findings.Select(ToApi));
        return response;
    }

    /// <summary>The stored health shown with a domain; stale when the domain changed after the check.</summary>
    public static V1.DomainHealth? ToApi(StoredHealth stored, long currentRevision)
    {
        ArgumentNullException.ThrowIfNull(stored);
        if (stored.Report is not { } report)
        {
            return null;
        }

        var health = new V1.DomainHealth
        {
            Status = (V1.DomainStatus)report.Status,
            CheckTime = Timestamp.FromDateTimeOffset(report.CheckTime),
            Stale = report.Revision != currentRevision,
        };
        health.Findings.AddRange(report.Findings.Select(ToApi));
        return health;
    }

    public static V1.Finding ToApi(Finding finding)
    {
        ArgumentNullException.ThrowIfNull(finding);
        var api = new V1.Finding { Code = finding.Code, Severity = (V1.Severity)finding.Severity, Message = finding.Message };
        if (finding.Record is { } r)
        {
            api.Record = new V1.DnsRecord { Name = r.Name, Type = r.Type, Value = r.Value };
        }

        return api;
    }

    public static V1.TestConnectionResponse ToApi(ConnectionTestResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var response = new V1.TestConnectionResponse { Success = result.Success, Message = result.Message };
        response.Results.AddRange(result.Results.Select(r => new V1.HostConnectionResult
        {
            Host = r.Host,
            Port = r.Port,
            Connected = r.Connected,
            ElapsedMs = (int)Math.Min(int.MaxValue, Math.Round(r.Elapsed.TotalMilliseconds)),
            Error = r.Error ?? string.Empty,
            Address = r.Address ?? string.Empty,
            Smtp = r.Smtp?.Smtp ?? false,
            StarttlsOffered = r.Smtp?.Observation.StartTlsOffered ?? false,
            TlsVersion = r.Smtp?.Observation.Protocol ?? string.Empty,
            CertificateVerified = r.Smtp?.Observation.Verified ?? false,
            TlsError = r.Smtp is { } smtp ? smtp.Problem ?? (smtp.Observation.Protocol is not null && !smtp.Observation.Verified ? smtp.Observation.Problem ?? string.Empty : string.Empty) : string.Empty,
            Tls = DkimMapper.ToApi(r.Tls),
        }));
        return response;
    }
}
