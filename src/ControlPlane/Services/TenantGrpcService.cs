using Gateway.ControlPlane.Grpc;
using Gateway.Core;
using Gateway.Core.Domains;
using Gateway.Core.Storage;
using Gateway.ControlPlane.Application;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using V1 = Gateway.Api.V1;

namespace Gateway.ControlPlane.Services;

/// <summary>gateway.v1.TenantService: operator key only.</summary>
public sealed class TenantGrpcService(TenantManager tenants, DomainManager domains, GatewayOptions options) : V1.TenantService.TenantServiceBase
{
    public override async Task<V1.Tenant> CreateTenant(V1.CreateTenantRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.RequireOperator(context);
        return ToApi(await tenants.CreateAsync(request.CompanyId, request.DisplayName).ConfigureAwait(false), 0);
    }

    public override async Task<V1.Tenant> GetTenant(V1.GetTenantRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.RequireOperator(context);
        var tenant = await tenants.GetAsync(request.CompanyId).ConfigureAwait(false);
        return ToApi(tenant, await tenants.CountDomainsAsync(tenant.CompanyId).ConfigureAwait(false));
    }

    public override async Task<V1.ListTenantsResponse> ListTenants(V1.ListTenantsRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.RequireOperator(context);
        var (items, next) = await tenants.ListAsync(request.PageSize, request.PageToken).ConfigureAwait(false);
        var counts = await Task.WhenAll(items.Select(t => tenants.CountDomainsAsync(t.CompanyId))).ConfigureAwait(false);
        var response = new V1.ListTenantsResponse { NextPageToken = next };
        response.Tenants.AddRange(items.Select((t, i) => ToApi(t, counts[i])));
        return response;
    }

    public override async Task<Empty> DeleteTenant(V1.DeleteTenantRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.RequireOperator(context);
        await tenants.DeleteAsync(request.CompanyId, request.Force,
            (company, name) => domains.DeleteAsync(company, name, force: true, etag: null)).ConfigureAwait(false);
        return new Empty();
    }

    public override async Task<V1.CreateApiKeyResponse> CreateApiKey(V1.CreateApiKeyRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.RequireOperator(context);
        var (record, key) = await tenants.CreateApiKeyAsync(request.CompanyId, request.Description).ConfigureAwait(false);
        return new V1.CreateApiKeyResponse
        {
            Key = key,
            KeyId = record.KeyId,
            CompanyId = record.CompanyId,
            CreateTime = Timestamp.FromDateTimeOffset(record.CreateTime),
        };
    }

    public override async Task<V1.ListApiKeysResponse> ListApiKeys(V1.ListApiKeysRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.RequireOperator(context);
        var keys = await tenants.ListApiKeysAsync(request.CompanyId).ConfigureAwait(false);
        var response = new V1.ListApiKeysResponse();
        response.ApiKeys.AddRange(keys.Select(k => new V1.ApiKey
        {
            KeyId = k.KeyId,
            CompanyId = k.CompanyId,
            Description = k.Description,
            CreateTime = Timestamp.FromDateTimeOffset(k.CreateTime),
        }));
        return response;
    }

    public override async Task<Empty> RevokeApiKey(V1.RevokeApiKeyRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        Caller.RequireOperator(context);
        await tenants.RevokeApiKeyAsync(request.KeyId).ConfigureAwait(false);
        return new Empty();
    }

    private V1.Tenant ToApi(TenantRecord t, long domainCount) => new()
    {
        CompanyId = t.CompanyId,
        DisplayName = t.DisplayName,
        InboundMxHost = options.InboundMxHost(t.CompanyId),
        CreateTime = Timestamp.FromDateTimeOffset(t.CreateTime),
        DomainCount = (int)Math.Min(domainCount, int.MaxValue),
    };
}
