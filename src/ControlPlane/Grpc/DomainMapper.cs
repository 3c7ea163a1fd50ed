using Gateway.Core;
using Gateway.Core.Domains;
using Google.Protobuf.WellKnownTypes;
using V1 = Gateway.Api.V1;

namespace Gateway.ControlPlane.Grpc;

/// <summary>Between the gateway.v1 messages and the domain model.</summary>
public sealed class DomainMapper(GatewayOptions options)
{
    public V1.Domain ToApi(DomainConfig d)
    {
        ArgumentNullException.ThrowIfNull(d);
        var api = new V1.Domain
        {
            Name = d.Name,
            CompanyId = d.CompanyId,
            InboundEnabled = d.Settings.InboundEnabled,
            Outbound = new V1.OutboundSettings
            {
                Enabled = d.Settings.Outbound.Enabled,
                Office365 = d.Settings.Outbound.Office365,
                GoogleWorkspace = d.Settings.Outbound.GoogleWorkspace,
                Office365TenantId = d.Settings.Outbound.Office365TenantId ?? string.Empty,
                GoogleWorkspaceDkimSelector = d.Settings.Outbound.GoogleWorkspaceDkimSelector ?? string.Empty,
            },
            Verification = new V1.Verification
            {
                Token = d.Verification.Token,
                TxtRecord = $"{options.VerificationPrefix}={d.Verification.Token}",
                Verified = d.Verification.Verified,
                Method = (V1.VerificationMethod)d.Verification.Method,
                MxHost = options.InboundMxHost(d.CompanyId),
            },
            Etag = d.Etag,
            CreateTime = Timestamp.FromDateTimeOffset(d.CreateTime),
            UpdateTime = Timestamp.FromDateTimeOffset(d.UpdateTime),
            InboundMxHost = options.InboundMxHost(d.CompanyId),
            SpfInclude = options.EffectiveSpfInclude,
            Protection = ProtectionMapper.ToApi(d.Settings.Protection),
            RecipientVerification = ToApi(d.Settings.RecipientVerification),
            OutboundRelayHost = options.EffectiveOutboundRelayHost,
        };
        if (d.Verification.VerifyTime is { } t)
        {
            api.Verification.VerifyTime = Timestamp.FromDateTimeOffset(t);
        }

        if (d.Dkim is { } dkim)
        {
            api.Dkim = DkimMapper.ToApi(d.Name, dkim);
        }

        api.Outbound.CustomIps.AddRange(d.Settings.Outbound.CustomIps);
        api.InboundServers.AddRange(d.Settings.InboundServers.Select(ToApi));
        return api;
    }

    public static V1.InboundServer ToApi(InboundServer s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return new() { Recipient = s.Recipient, Host = s.Host, Port = s.Port, Preference = s.Preference, Tls = DkimMapper.ToApi(s.Tls), TlsName = s.TlsName ?? string.Empty };
    }

    /// <summary>The editable part of a request's domain, as given (validation normalises it).</summary>
    public static DomainSettings ToSettings(V1.Domain? d)
    {
        if (d is null)
        {
            return DomainSettings.Empty;
        }

        var o = d.Outbound;
        return new DomainSettings(
            d.InboundEnabled,
            d.InboundServers.Select(ToModel).ToList(),
            o is null ? OutboundSettings.Disabled : new OutboundSettings(o.Enabled, o.Office365, o.GoogleWorkspace, o.CustomIps.ToList())
            {
                // Stored lower case; an empty string means none. The validator checks the GUID syntax.
                Office365TenantId = o.Office365TenantId.Trim() is { Length: > 0 } tenant ? tenant.ToLowerInvariant() : null,
                GoogleWorkspaceDkimSelector = o.GoogleWorkspaceDkimSelector.Trim() is { Length: > 0 } selector ? selector.ToLowerInvariant() : null,
            })
        {
            Protection = ProtectionMapper.ToModel(d.Protection),
            RecipientVerification = ToModel(d.RecipientVerification),
        };
    }

    /// <summary>The lifetimes as stored (zero: the default), in whole seconds.</summary>
    public static V1.RecipientVerification ToApi(RecipientVerificationSettings v)
    {
        ArgumentNullException.ThrowIfNull(v);
        return new() { Enabled = v.Enabled, PositiveTtlSeconds = (uint)v.PositiveTtl.TotalSeconds, NegativeTtlSeconds = (uint)v.NegativeTtl.TotalSeconds };
    }

    /// <summary>As given (validation checks the ranges); absent: off with the default lifetimes.</summary>
    public static RecipientVerificationSettings ToModel(V1.RecipientVerification? v) => v is null
        ? RecipientVerificationSettings.Off
        : new RecipientVerificationSettings(v.Enabled, TimeSpan.FromSeconds(v.PositiveTtlSeconds), TimeSpan.FromSeconds(v.NegativeTtlSeconds));

    public static InboundServer ToModel(V1.InboundServer s)
    {
        ArgumentNullException.ThrowIfNull(s);
        return new(s.Recipient, s.Host, s.Port, s.Preference) { Tls = DkimMapper.ToModel(s.Tls), TlsName = s.TlsName.Length == 0 ? null : s.TlsName };
    }
}
