using System.CommandLine;
using Gateway.Api.V1;

namespace Gateway.Cli.Commands;

/// <summary>tenants … and keys …: TenantService (operator key).</summary>
internal static class TenantCommands
{
    public static Command Tenants()
    {
        var tenants = new Command("tenants", "Tenants (operator key)");

        var id = new Argument<string>("company-id") { Description = "The tenant's company id (a DNS label)" };
        var displayName = new Option<string?>("--display-name") { Description = "A readable name" };
        var create = new Command("create", "Create a tenant") { id, displayName };
        CommandRunner.SetAction(create, async (ctx, p, ct) =>
        {
            var t = await Client(ctx).CreateTenantAsync(new CreateTenantRequest { CompanyId = p.GetValue(id), DisplayName = p.GetValue(displayName) ?? string.Empty },
                cancellationToken: ct);
            ctx.Print(t, w => PrintTenant(w, t));
        });

        var getId = new Argument<string>("company-id");
        var get = new Command("get", "Show a tenant") { getId };
        CommandRunner.SetAction(get, async (ctx, p, ct) =>
        {
            var t = await Client(ctx).GetTenantAsync(new GetTenantRequest { CompanyId = p.GetValue(getId) }, cancellationToken: ct);
            ctx.Print(t, w => PrintTenant(w, t));
        });

        var list = new Command("list", "List tenants");
        var pageSize = new Option<int>("--page-size") { Description = "Tenants per request (all pages are read)", DefaultValueFactory = _ => 200 };
        list.Options.Add(pageSize);
        CommandRunner.SetAction(list, async (ctx, p, ct) =>
        {
            var all = new ListTenantsResponse();
            var token = string.Empty;
            do
            {
                var page = await Client(ctx).ListTenantsAsync(new ListTenantsRequest { PageSize = p.GetValue(pageSize), PageToken = token }, cancellationToken: ct);
                all.Tenants.AddRange(page.Tenants);
                token = page.NextPageToken;
            }
            while (token.Length > 0);

            ctx.Print(all, w => Output.Table(w, ["COMPANY", "NAME", "DOMAINS", "MX HOST", "CREATED"],
                all.Tenants.Select(t => (IReadOnlyList<string>)[t.CompanyId, t.DisplayName, t.DomainCount.ToString(System.Globalization.CultureInfo.InvariantCulture), t.InboundMxHost, Output.Time(t.CreateTime)])));
        });

        var delId = new Argument<string>("company-id");
        var force = new Option<bool>("--force") { Description = "Also delete the tenant's domains (their queued and quarantined mail is discarded)" };
        var delete = new Command("delete", "Delete a tenant and revoke its keys") { delId, force };
        CommandRunner.SetAction(delete, async (ctx, p, ct) =>
        {
            var reply = await Client(ctx).DeleteTenantAsync(new DeleteTenantRequest { CompanyId = p.GetValue(delId), Force = p.GetValue(force) }, cancellationToken: ct);
            ctx.Print(reply, w => w.WriteLine($"Deleted tenant {p.GetValue(delId)}."));
        });

        tenants.Subcommands.Add(create);
        tenants.Subcommands.Add(get);
        tenants.Subcommands.Add(list);
        tenants.Subcommands.Add(delete);
        return tenants;
    }

    public static Command Keys()
    {
        var keys = new Command("keys", "Tenant API keys (operator key)");

        var id = new Argument<string>("company-id");
        var description = new Option<string?>("--description") { Description = "What the key is for" };
        var create = new Command("create", "Create an API key for a tenant; the key is shown once") { id, description };
        CommandRunner.SetAction(create, async (ctx, p, ct) =>
        {
            var k = await Client(ctx).CreateApiKeyAsync(new CreateApiKeyRequest { CompanyId = p.GetValue(id), Description = p.GetValue(description) ?? string.Empty },
                cancellationToken: ct);
            ctx.Print(k, w =>
            {
                Output.Fields(w, [("key", k.Key), ("key id", k.KeyId), ("company", k.CompanyId)]);
                w.WriteLine("Store the key now: it is not shown again.");
            });
        });

        var listId = new Argument<string>("company-id");
        var list = new Command("list", "List a tenant's keys (ids only)") { listId };
        CommandRunner.SetAction(list, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).ListApiKeysAsync(new ListApiKeysRequest { CompanyId = p.GetValue(listId) }, cancellationToken: ct);
            ctx.Print(r, w => Output.Table(w, ["KEY ID", "DESCRIPTION", "CREATED"],
                r.ApiKeys.Select(k => (IReadOnlyList<string>)[k.KeyId, k.Description, Output.Time(k.CreateTime)])));
        });

        var keyId = new Argument<string>("key-id") { Description = "The key id (or the whole key)" };
        var revoke = new Command("revoke", "Revoke a key at once") { keyId };
        CommandRunner.SetAction(revoke, async (ctx, p, ct) =>
        {
            var r = await Client(ctx).RevokeApiKeyAsync(new RevokeApiKeyRequest { KeyId = p.GetValue(keyId) }, cancellationToken: ct);
            ctx.Print(r, w => w.WriteLine("Revoked."));
        });

        keys.Subcommands.Add(create);
        keys.Subcommands.Add(list);
        keys.Subcommands.Add(revoke);
        return keys;
    }

    private static TenantService.TenantServiceClient Client(CliContext ctx) => new(ctx.Invoker);

    private static void PrintTenant(TextWriter w, Tenant t) => Output.Fields(w,
    [
        ("company", t.CompanyId), ("name", t.DisplayName), ("MX host", t.InboundMxHost),
        ("domains", t.DomainCount.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("created", Output.Time(t.CreateTime)),
    ]);
}
