using Gateway.Core.Dkim;
using Gateway.Core.Domains;
using Gateway.Core.Errors;
using Google.Protobuf.WellKnownTypes;
using V1 = Gateway.Api.V1;

namespace Gateway.ControlPlane.Grpc;

/// <summary>DKIM state and TLS modes between gateway.v1 and the model (issue 17). Never maps a private key: the model has none.</summary>
public static class DkimMapper
{
    public static V1.DkimSettings ToApi(string domain, DkimState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var api = new V1.DkimSettings
        {
            Enabled = true,
            State = state.Phase switch
            {
                DkimPhase.Active => V1.DkimState.Active,
                DkimPhase.Rotating => V1.DkimState.Rotating,
                _ => V1.DkimState.PendingDns,
            },
            Selector = state.Current.Selector,
            TxtRecord = Record(domain, state.Current),
            Current = ToApi(domain, state.Current),
        };
        if (state.Next is { } next)
        {
            api.Next = ToApi(domain, next);
        }

        if (state.Retired is { } retired)
        {
            api.Retired = ToApi(domain, retired);
        }

        if (state.RetiredUntil is { } until)
        {
            api.RetiredUntil = Timestamp.FromDateTimeOffset(until);
        }

        if (state.ActiveSince is { } since)
        {
            api.ActiveSince = Timestamp.FromDateTimeOffset(since);
        }

        api.SignedHeaders.AddRange(DkimHeaders.Fields);
        return api;
    }

    public static DkimKeyAlgorithm? ToModel(V1.DkimAlgorithm algorithm) => algorithm switch
    {
        V1.DkimAlgorithm.Unspecified => null,
        V1.DkimAlgorithm.Rsa => DkimKeyAlgorithm.Rsa,
        V1.DkimAlgorithm.Ed25519 => DkimKeyAlgorithm.Ed25519,
        _ => throw new GatewayException(ErrorKind.InvalidArgument, "algorithm must be DKIM_ALGORITHM_RSA or DKIM_ALGORITHM_ED25519",
            [new FieldViolation("algorithm", $"unknown algorithm {(int)algorithm}")]),
    };

    public static V1.TlsMode ToApi(TlsMode mode) => mode switch
    {
        TlsMode.Required => V1.TlsMode.Required,
        TlsMode.Verify => V1.TlsMode.Verify,
        _ => V1.TlsMode.Opportunistic,
    };

    /// <summary>Unknown numbers map to an out-of-range model value, which the validator refuses with a field violation.</summary>
    public static TlsMode ToModel(V1.TlsMode mode) => mode switch
    {
        V1.TlsMode.Unspecified or V1.TlsMode.Opportunistic => TlsMode.Opportunistic,
        V1.TlsMode.Required => TlsMode.Required,
        V1.TlsMode.Verify => TlsMode.Verify,
        _ => (TlsMode)(-1),
    };

    private static V1.DkimKey ToApi(string domain, DkimKey key) => new()
    {
        Selector = key.Selector,
        Algorithm = key.Algorithm == DkimKeyAlgorithm.Ed25519 ? V1.DkimAlgorithm.Ed25519 : V1.DkimAlgorithm.Rsa,
        Record = Record(domain, key),
        CreateTime = Timestamp.FromDateTimeOffset(key.CreateTime),
    };

    private static V1.DnsRecord Record(string domain, DkimKey key) => new() { Name = key.RecordName(domain), Type = "TXT", Value = key.TxtValue };
}
