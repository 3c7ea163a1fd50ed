using System.Globalization;
using Gateway.ControlPlane.Grpc;
using Gateway.Core;
using Gateway.Core.Errors;
using Gateway.Core.Rules;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using V1 = Gateway.Api.V1;
using Gateway.ControlPlane.Application;

namespace Gateway.ControlPlane.Services;

/// <summary>gateway.v1.PolicyRuleService: thin; validation, tenant scoping and ordering live in <see cref="RuleManager"/>.</summary>
public sealed class PolicyRuleGrpcService(RuleManager rules) : V1.PolicyRuleService.PolicyRuleServiceBase
{
    public override async Task<V1.PolicyRule> CreateRule(V1.CreateRuleRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (rule, position) = await rules.CreateAsync(Caller.TenantOf(context), request.Domain, ToModel(request.Rule), request.Position).ConfigureAwait(false);
        return ToApi(rule, position);
    }

    public override async Task<V1.PolicyRule> GetRule(V1.GetRuleRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (rule, position) = await rules.GetAsync(Caller.TenantOf(context), request.Domain, request.RuleId).ConfigureAwait(false);
        return ToApi(rule, position);
    }

    public override async Task<V1.ListRulesResponse> ListRules(V1.ListRulesRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var violations = new List<FieldViolation>();
        var size = Paging.ResolvePageSize(request.PageSize, violations);
        var start = 0;
        if (Paging.Decode(request.PageToken, violations) is { } key && !int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out start))
        {
            violations.Add(new FieldViolation("page_token", "page_token is not one this server returned"));
        }

        if (violations.Count > 0)
        {
            GatewayException.ThrowInvalid(violations);
        }

        var (_, list) = await rules.ListAsync(Caller.TenantOf(context), request.Domain).ConfigureAwait(false);
        var response = new V1.ListRulesResponse();
        var end = Math.Min(list.Rules.Count, start + size);
        for (var i = start; i < end; i++)
        {
            response.Rules.Add(ToApi(list.Rules[i], i + 1));
        }

        response.NextPageToken = end < list.Rules.Count ? Paging.Encode(end.ToString(CultureInfo.InvariantCulture)) : string.Empty;
        return response;
    }

    public override async Task<V1.PolicyRule> UpdateRule(V1.UpdateRuleRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var paths = request.UpdateMask?.Paths.ToList() ?? [];
        var (rule, position) = await rules.UpdateAsync(Caller.TenantOf(context), request.Domain, request.Rule?.Id, ToModel(request.Rule), paths, request.Rule?.Etag)
            .ConfigureAwait(false);
        return ToApi(rule, position);
    }

    public override async Task<V1.DeleteRuleResponse> DeleteRule(V1.DeleteRuleRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var rule = await rules.DeleteAsync(Caller.TenantOf(context), request.Domain, request.RuleId, request.Etag).ConfigureAwait(false);
        return new V1.DeleteRuleResponse { Rule = ToApi(rule, 0) };
    }

    public override async Task<V1.PolicyRule> MoveRule(V1.MoveRuleRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var (rule, position) = await rules.MoveAsync(Caller.TenantOf(context), request.Domain, request.RuleId, request.Position, request.Etag).ConfigureAwait(false);
        return ToApi(rule, position);
    }

    /// <summary>The API rule as a draft for the domain layer; an unset action becomes an undefined value the validator names.</summary>
    public static PolicyRule ToModel(V1.PolicyRule? api)
    {
        api ??= new V1.PolicyRule();
        return new PolicyRule
        {
            Id = api.Id,
            Description = api.Description,
            Enabled = !api.Disabled,
            Direction = api.Direction switch
            {
                V1.RuleDirection.Both => RuleDirection.Both,
                V1.RuleDirection.Inbound => RuleDirection.Inbound,
                V1.RuleDirection.Outbound => RuleDirection.Outbound,
                _ => (RuleDirection)(-1),
            },
            Senders = [.. api.Senders],
            Recipients = [.. api.Recipients],
            ClientIps = [.. api.ClientIps],
            SizeAbove = api.SizeAbove,
            SubjectContains = api.SubjectContains,
            AttachmentNames = [.. api.AttachmentNames],
            Action = api.Action switch
            {
                V1.RuleAction.Reject => RuleAction.Reject,
                V1.RuleAction.Quarantine => RuleAction.Quarantine,
                V1.RuleAction.Deliver => RuleAction.Deliver,
                _ => (RuleAction)(-1),
            },
            RejectText = api.RejectText,
        };
    }

    public static V1.PolicyRule ToApi(PolicyRule rule, int position)
    {
        ArgumentNullException.ThrowIfNull(rule);
        var api = new V1.PolicyRule
        {
            Id = rule.Id,
            Description = rule.Description,
            Disabled = !rule.Enabled,
            Direction = rule.Direction switch
            {
                RuleDirection.Inbound => V1.RuleDirection.Inbound,
                RuleDirection.Outbound => V1.RuleDirection.Outbound,
                _ => V1.RuleDirection.Both,
            },
            SizeAbove = rule.SizeAbove,
            SubjectContains = rule.SubjectContains,
            Action = rule.Action switch
            {
                RuleAction.Reject => V1.RuleAction.Reject,
                RuleAction.Quarantine => V1.RuleAction.Quarantine,
                _ => V1.RuleAction.Deliver,
            },
            RejectText = rule.RejectText,
            Position = position,
            Etag = rule.Etag,
            ContentRule = rule.HasContentConditions || rule.SizeAbove > 0,
            CreateTime = Timestamp.FromDateTimeOffset(rule.CreateTime),
            UpdateTime = Timestamp.FromDateTimeOffset(rule.UpdateTime),
        };
        api.Senders.AddRange(rule.Senders);
        api.Recipients.AddRange(rule.Recipients);
        api.ClientIps.AddRange(rule.ClientIps);
        api.AttachmentNames.AddRange(rule.AttachmentNames);
        return api;
    }
}
