using Gateway.ControlPlane.Grpc;
using Gateway.Core.Domains;
using Grpc.Core;
using V1 = Gateway.Api.V1;

namespace Gateway.ControlPlane.Services;

/// <summary>gateway.v1.DomainService: thin; validation and rules live in <see cref="DomainManager"/>.</summary>
public sealed class DomainGrpcService(DomainManager domains, DomainMapper mapper) : V1.DomainService.DomainServiceBase
{
    public override async Task<V1.Domain> CreateDomain(V1.CreateDomainRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var company = Caller.TenantOf(context);
        var created = await domains.CreateAsync(company, request.Domain?.Name, DomainMapper.ToSettings(request.Domain)).ConfigureAwait(false);
        return mapper.ToApi(created);
    }

    public override async Task<V1.Domain> GetDomain(V1.GetDomainRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        return mapper.ToApi(await domains.GetAsync(Caller.TenantOf(context), request.Name).ConfigureAwait(false));
    }

    public override async Task<V1.ListDomainsResponse> ListDomains(V1.ListDomainsRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (items, next) = await domains.ListAsync(Caller.TenantOf(context), request.PageSize, request.PageToken).ConfigureAwait(false);
        var response = new V1.ListDomainsResponse { NextPageToken = next };
        response.Domains.AddRange(items.Select(mapper.ToApi));
        return response;
    }

    public override async Task<V1.Domain> UpdateDomain(V1.UpdateDomainRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var company = Caller.TenantOf(context);
        var paths = request.UpdateMask?.Paths.ToList() ?? [];
        var updated = await domains.UpdateAsync(company, request.Domain?.Name, DomainMapper.ToSettings(request.Domain), paths, request.Domain?.Etag)
            .ConfigureAwait(false);
        return mapper.ToApi(updated);
    }

    public override async Task<V1.DeleteDomainResponse> DeleteDomain(V1.DeleteDomainRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (deleted, undo) = await domains.DeleteAsync(Caller.TenantOf(context), request.Name, request.Force, request.Etag).ConfigureAwait(false);
        var response = new V1.DeleteDomainResponse { Name = deleted.Name };
        response.UndoSteps.AddRange(undo.Select(u => new V1.UndoStep { Code = u.Code, Instruction = u.Instruction }));
        return response;
    }
}
