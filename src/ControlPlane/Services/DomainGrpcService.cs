using Gateway.ControlPlane.Grpc;
using Gateway.Core.Domains;
using Gateway.ControlPlane.Onboarding;
using Grpc.Core;
using V1 = Gateway.Api.V1;
using Gateway.ControlPlane.Application;

namespace Gateway.ControlPlane.Services;

/// <summary>
/// gateway.v1.DomainService: thin; validation and rules live in <see cref="DomainManager"/> and
/// <see cref="OnboardingService"/>; SendTestMessage in <see cref="TestMessageSender"/>.
/// </summary>
public sealed class DomainGrpcService(DomainManager domains, DomainMapper mapper, OnboardingService onboarding, TestMessageSender testMessages,
    Gateway.ControlPlane.Dkim.DkimManager dkim,
    Onboarding.DomainTakeover takeover)
    : V1.DomainService.DomainServiceBase
{
    public override async Task<V1.Domain> EnableDkim(V1.EnableDkimRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var algorithm = DkimMapper.ToModel(request.Algorithm) ?? Gateway.Core.Domains.DkimKeyAlgorithm.Rsa;
        return mapper.ToApi(await dkim.EnableAsync(Caller.TenantOf(context), request.Name, algorithm, request.Selector).ConfigureAwait(false));
    }

    public override async Task<V1.Domain> DisableDkim(V1.DisableDkimRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        return mapper.ToApi(await dkim.DisableAsync(Caller.TenantOf(context), request.Name).ConfigureAwait(false));
    }

    public override async Task<V1.Domain> RotateDkimKey(V1.RotateDkimKeyRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        return mapper.ToApi(await dkim.RotateAsync(Caller.TenantOf(context), request.Name, DkimMapper.ToModel(request.Algorithm), request.Selector).ConfigureAwait(false));
    }

    public override async Task<V1.SendTestMessageResponse> SendTestMessage(V1.SendTestMessageRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var id = await testMessages.SendAsync(Caller.TenantOf(context), request.Name, request.Recipient, context.CancellationToken).ConfigureAwait(false);
        return new V1.SendTestMessageResponse { MessageId = id };
    }

    public override async Task<V1.Domain> CreateDomain(V1.CreateDomainRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var company = Caller.TenantOf(context);
        // CreateDomain, or the takeover of an unverified registration by a tenant that proves ownership (DomainTakeover).
        var created = await takeover.CreateAsync(company, request.Domain?.Name, DomainMapper.ToSettings(request.Domain), context.CancellationToken).ConfigureAwait(false);
        return mapper.ToApi(created);
    }

    public override async Task<V1.Domain> GetDomain(V1.GetDomainRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var domain = await domains.GetAsync(Caller.TenantOf(context), request.Name).ConfigureAwait(false);
        return (await WithHealthAsync([domain]).ConfigureAwait(false))[0];
    }

    public override async Task<V1.ListDomainsResponse> ListDomains(V1.ListDomainsRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (items, next) = await domains.ListAsync(Caller.TenantOf(context), request.PageSize, request.PageToken).ConfigureAwait(false);
        var response = new V1.ListDomainsResponse { NextPageToken = next };
        response.Domains.AddRange(await WithHealthAsync(items).ConfigureAwait(false));
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

    public override async Task<V1.VerifyDomainResponse> VerifyDomain(V1.VerifyDomainRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var outcome = await onboarding.VerifyAsync(Caller.TenantOf(context), request.Name, context.CancellationToken).ConfigureAwait(false);
        return new V1.VerifyDomainResponse { Domain = mapper.ToApi(outcome.Domain), Verified = outcome.Verified, Message = outcome.Message };
    }

    public override async Task<V1.CheckDomainResponse> CheckDomain(V1.CheckDomainRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var (_, report) = await onboarding.CheckAsync(Caller.TenantOf(context), request.Name, context.CancellationToken).ConfigureAwait(false);
        return OnboardingMapper.ToApi(report);
    }

    public override async Task<V1.TestConnectionResponse> TestConnection(V1.TestConnectionRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var rows = request.InboundServers.Select(DomainMapper.ToModel).ToList();
        var result = await onboarding.TestConnectionAsync(Caller.TenantOf(context), request.Name, rows, context.CancellationToken).ConfigureAwait(false);
        return OnboardingMapper.ToApi(result);
    }

    /// <summary>Domains with their stored health (requirements §3: ListDomains shows each domain's status).</summary>
    private async Task<List<V1.Domain>> WithHealthAsync(IReadOnlyList<DomainConfig> items)
    {
        var health = await onboarding.StoredHealthAsync(items).ConfigureAwait(false);
        return items.Select((d, i) =>
        {
            var api = mapper.ToApi(d);
            api.Health = OnboardingMapper.ToApi(health[i], d.Revision);
            return api;
        }).ToList();
    }
}
