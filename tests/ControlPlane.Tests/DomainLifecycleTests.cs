using Gateway.Api.V1;
using Gateway.Core;
using DomainManager = Gateway.ControlPlane.Application.DomainManager;
using Gateway.Core.Storage;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using StackExchange.Redis;

namespace ControlPlane.Tests;

/// <summary>Domains across tenants: uniqueness, isolation, update masks and etags, paging, deletion.</summary>
[Trait("Kind", "Integration")]
public sealed class DomainLifecycleTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    [Fact]
    public async Task CreateDomain_ManagedByAnyTenant_AlreadyExistsWithExactMessage()
    {
        var (_, _, a) = await fx.NewTenantAsync("a");
        var (_, _, b) = await fx.NewTenantAsync("b");
        var name = ControlPlaneFixture.NewDomainName();
        var created = await a.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        Assert.Equal(name, created.Name);
        Assert.Matches("^[0-9a-f]{32}$", created.Verification.Token);
        Assert.Equal("tmes=" + created.Verification.Token, created.Verification.TxtRecord);
        Assert.False(created.Verification.Verified);
        Assert.Equal($"{created.CompanyId}.in.gw.test.example", created.Verification.MxHost);

        foreach (var (client, attempt) in new[] { (b, name.ToUpperInvariant() + "."), (a, name) })
        {
            var e = await RpcAssert.ThrowsAsync(StatusCode.AlreadyExists, client.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = attempt } }));
            Assert.Equal(DomainManager.AlreadyManagedMessage, e.Status.Detail);
            Assert.Equal("Cannot add managed domain: this domain is already managed by the gateway.", e.Status.Detail);
        }

        // A subdomain is a separate domain and can be registered by anyone.
        await b.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = "sales." + name } });
    }

    [Fact]
    public async Task OtherTenantsDomain_CannotBeReadUpdatedDeletedOrListed()
    {
        var (_, _, a) = await fx.NewTenantAsync("a");
        var (_, _, b) = await fx.NewTenantAsync("b");
        var name = ControlPlaneFixture.NewDomainName();
        var created = await a.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });

        await RpcAssert.ThrowsAsync(StatusCode.NotFound, b.GetDomainAsync(new GetDomainRequest { Name = name }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, b.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new OutboundSettings { Enabled = true } },
            UpdateMask = new FieldMask { Paths = { "outbound.enabled" } },
        }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, b.DeleteDomainAsync(new DeleteDomainRequest { Name = name, Force = true }));
        Assert.Empty((await b.ListDomainsAsync(new ListDomainsRequest())).Domains);

        // Untouched for its owner.
        var again = await a.GetDomainAsync(new GetDomainRequest { Name = name });
        Assert.Equal(created.Etag, again.Etag);
        Assert.Equal(name, Assert.Single((await a.ListDomainsAsync(new ListDomainsRequest())).Domains).Name);
    }

    [Fact]
    public async Task UpdateDomain_MaskedFieldsOnly_EtagMovesAndStaleEtagAborted()
    {
        var (_, _, a) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        var create = new Domain { Name = name, InboundEnabled = true, Outbound = new OutboundSettings { Enabled = true, Office365 = true } };
        create.InboundServers.Add(new InboundServer { Recipient = "*@" + name, Host = "192.0.2.1" });
        var v1 = await a.CreateDomainAsync(new CreateDomainRequest { Domain = create });

        var patch = new Domain { Name = name, Etag = v1.Etag, InboundEnabled = false, Outbound = new OutboundSettings { CustomIps = { "198.51.100.9" } } };
        var v2 = await a.UpdateDomainAsync(new UpdateDomainRequest { Domain = patch, UpdateMask = new FieldMask { Paths = { "outbound.custom_ips" } } });
        Assert.NotEqual(v1.Etag, v2.Etag);
        Assert.True(v2.InboundEnabled); // not in the mask
        Assert.True(v2.Outbound.Enabled && v2.Outbound.Office365); // not in the mask
        Assert.Equal(["198.51.100.9"], v2.Outbound.CustomIps);
        Assert.Equal(v1.CreateTime, v2.CreateTime);
        Assert.True(v2.UpdateTime.ToDateTimeOffset() >= v1.UpdateTime.ToDateTimeOffset());

        // The same etag again is stale now.
        var e = await RpcAssert.ThrowsAsync(StatusCode.Aborted, a.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Etag = v1.Etag, Outbound = new OutboundSettings { Enabled = false } },
            UpdateMask = new FieldMask { Paths = { "outbound.enabled" } },
        }));
        Assert.Contains("etag", e.Status.Detail, StringComparison.Ordinal);
        Assert.True((await a.GetDomainAsync(new GetDomainRequest { Name = name })).Outbound.Enabled);

        // Without an etag the update applies to the current state.
        var v3 = await a.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new OutboundSettings { Enabled = false } },
            UpdateMask = new FieldMask { Paths = { "outbound.enabled" } },
        });
        Assert.False(v3.Outbound.Enabled);
        Assert.Equal(["198.51.100.9"], v3.Outbound.CustomIps);
    }

    [Fact]
    public async Task UpdateDomain_InvalidMaskOrValues_InvalidArgument_NothingSaved()
    {
        var (_, _, a) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        var v1 = await a.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });

        foreach (var path in new[] { "name", "verification", "etag", "create_time", "bogus" })
        {
            await RpcAssert.InvalidFieldAsync("update_mask", a.UpdateDomainAsync(new UpdateDomainRequest
            {
                Domain = new Domain { Name = name },
                UpdateMask = new FieldMask { Paths = { path } },
            }));
        }

        await RpcAssert.InvalidFieldAsync("domain.outbound.custom_ips[0]", a.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new OutboundSettings { CustomIps = { "10.0.0.0/8" } } },
            UpdateMask = new FieldMask { Paths = { "outbound" } },
        }));
        Assert.Equal(v1.Etag, (await a.GetDomainAsync(new GetDomainRequest { Name = name })).Etag);
    }

    [Fact]
    public async Task UpdateDomain_EmptyMask_ReplacesAllEditableFields()
    {
        var (_, _, a) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        var create = new Domain { Name = name, Outbound = new OutboundSettings { Enabled = true, GoogleWorkspace = true, CustomIps = { "192.0.2.3" } } };
        await a.CreateDomainAsync(new CreateDomainRequest { Domain = create });
        var replacement = new Domain { Name = name, InboundEnabled = true };
        replacement.InboundServers.Add(new InboundServer { Recipient = "john@" + name, Host = "mail.example.net", Port = 587, Preference = 5 });
        var updated = await a.UpdateDomainAsync(new UpdateDomainRequest { Domain = replacement });
        Assert.True(updated.InboundEnabled);
        Assert.Single(updated.InboundServers);
        Assert.False(updated.Outbound.Enabled);
        Assert.Empty(updated.Outbound.CustomIps);
    }

    [Fact]
    public async Task UpdateDomain_ConcurrentUpdatesWithoutEtag_NoneLost()
    {
        var (_, _, a) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        await a.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        var office = a.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new OutboundSettings { Office365 = true } },
            UpdateMask = new FieldMask { Paths = { "outbound.office365" } },
        }).ResponseAsync;
        var google = a.UpdateDomainAsync(new UpdateDomainRequest
        {
            Domain = new Domain { Name = name, Outbound = new OutboundSettings { GoogleWorkspace = true } },
            UpdateMask = new FieldMask { Paths = { "outbound.google_workspace" } },
        }).ResponseAsync;
        await Task.WhenAll(office, google);
        var final = await a.GetDomainAsync(new GetDomainRequest { Name = name });
        Assert.True(final.Outbound.Office365 && final.Outbound.GoogleWorkspace);
    }

    [Fact]
    public async Task ListDomains_PagesInNameOrder()
    {
        var (_, _, a) = await fx.NewTenantAsync();
        var names = Enumerable.Range(0, 7).Select(i => $"p{i}-{Guid.NewGuid().ToString("N")[..6]}.example.org").ToList();
        foreach (var n in names)
        {
            await a.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = n } });
        }

        var seen = new List<string>();
        var token = string.Empty;
        var pages = 0;
        do
        {
            var page = await a.ListDomainsAsync(new ListDomainsRequest { PageSize = 3, PageToken = token });
            seen.AddRange(page.Domains.Select(d => d.Name));
            token = page.NextPageToken;
            pages++;
        }
        while (token.Length > 0);

        Assert.Equal(3, pages);
        Assert.Equal(names.Order(StringComparer.Ordinal), seen);
        await RpcAssert.InvalidFieldAsync("page_token", a.ListDomainsAsync(new ListDomainsRequest { PageToken = "p1.%%%" }));
    }

    [Fact]
    public async Task DeleteDomain_ReturnsUndoChecklist_ThenNotFound_AndNameIsFree()
    {
        var (company, _, a) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        var created = await a.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });

        await RpcAssert.ThrowsAsync(StatusCode.Aborted, a.DeleteDomainAsync(new DeleteDomainRequest { Name = name, Etag = "999" }));
        var deleted = await a.DeleteDomainAsync(new DeleteDomainRequest { Name = name, Etag = created.Etag });
        Assert.Equal(name, deleted.Name);
        Assert.Equal(["MX", "CONNECTOR", "SPF", "TXT"], deleted.UndoSteps.Select(s => s.Code));
        Assert.Contains($"{company}.in.gw.test.example", deleted.UndoSteps[0].Instruction, StringComparison.Ordinal);
        Assert.Contains("include:_spf.gw.test.example", deleted.UndoSteps[2].Instruction, StringComparison.Ordinal);
        Assert.Contains(created.Verification.TxtRecord, deleted.UndoSteps[3].Instruction, StringComparison.Ordinal);

        await RpcAssert.ThrowsAsync(StatusCode.NotFound, a.GetDomainAsync(new GetDomainRequest { Name = name }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, a.DeleteDomainAsync(new DeleteDomainRequest { Name = name }));
        Assert.False(await fx.RedisClient.GetDatabase().HashExistsAsync(RedisKeys.DomainRegistry, name));

        var (_, _, b) = await fx.NewTenantAsync("b");
        await b.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
    }

    [Fact]
    public async Task DeleteDomain_WithQueuedOrQuarantinedMail_FailedPreconditionUnlessForced()
    {
        var (_, _, a) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        await a.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        var db = fx.RedisClient.GetDatabase();

        // Mail of the domain as the Deliverer and quarantine record it: ids in the domain's indexes.
        await db.SortedSetAddAsync(RedisKeys.DomainQueue(name), "msg-1", 1);
        var e = await RpcAssert.ThrowsAsync(StatusCode.FailedPrecondition, a.DeleteDomainAsync(new DeleteDomainRequest { Name = name }));
        Assert.Contains("queued or quarantined", e.Status.Detail, StringComparison.Ordinal);
        await db.KeyDeleteAsync(RedisKeys.DomainQueue(name));
        await db.SortedSetAddAsync(RedisKeys.DomainQuarantine(name), "msg-2", 1);
        await RpcAssert.ThrowsAsync(StatusCode.FailedPrecondition, a.DeleteDomainAsync(new DeleteDomainRequest { Name = name }));
        await db.StringSetAsync($"gw:{RedisKeys.DomainTag(name)}:quarantine:msg-2", "body");

        await a.DeleteDomainAsync(new DeleteDomainRequest { Name = name, Force = true });
        var server = fx.RedisClient.GetServer(fx.RedisClient.GetEndPoints()[0]);
        var left = new List<RedisKey>();
        await foreach (var k in server.KeysAsync(pattern: RedisKeys.DomainKeyPattern(name)))
        {
            left.Add(k);
        }

        Assert.Empty(left);
    }

    [Fact]
    public async Task SavedChange_PublishedOnChannel_VersionMovesAndStreamRecordsIt()
    {
        var (_, _, a) = await fx.NewTenantAsync();
        var name = ControlPlaneFixture.NewDomainName();
        var subscriber = fx.RedisClient.GetSubscriber();
        var messages = System.Threading.Channels.Channel.CreateUnbounded<string>();
        await subscriber.SubscribeAsync(RedisKeys.ConfigChannel, (_, m) => messages.Writer.TryWrite(m.ToString()));
        try
        {
            var feed = new ConfigChangeFeed(fx.RedisClient, new GatewayOptions());
            var before = await feed.GetVersionAsync();

            await a.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
            await a.UpdateDomainAsync(new UpdateDomainRequest
            {
                Domain = new Domain { Name = name, Outbound = new OutboundSettings { Enabled = true } },
                UpdateMask = new FieldMask { Paths = { "outbound.enabled" } },
            });

            var ours = new List<ConfigChange>();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            while (ours.Count < 2)
            {
                var text = await messages.Reader.ReadAsync(timeout.Token);
                Assert.True(ConfigChangeFeed.TryParseMessage(text, out var change), text);
                if (change.Domain == name)
                {
                    ours.Add(change);
                }
            }

            Assert.Equal([ConfigOps.Create, ConfigOps.Update], ours.Select(c => c.Op));
            Assert.True(ours[0].Version > before && ours[1].Version > ours[0].Version);
            Assert.True(await feed.GetVersionAsync() >= ours[1].Version);

            var fromStream = (await feed.ReadAfterAsync(before)).Where(c => c.Domain == name).ToList();
            Assert.Equal(ours, fromStream);
        }
        finally
        {
            await subscriber.UnsubscribeAllAsync();
        }
    }

    [Fact]
    public async Task OnboardingRpcs_UnknownDomain_NotFound()
    {
        var (_, _, a) = await fx.NewTenantAsync();
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, a.VerifyDomainAsync(new VerifyDomainRequest { Name = "example.com" }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, a.CheckDomainAsync(new CheckDomainRequest { Name = "example.com" }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, a.TestConnectionAsync(new TestConnectionRequest { Name = "example.com" }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, a.SendTestMessageAsync(new SendTestMessageRequest { Name = "example.com", Recipient = "a@example.com" }));
    }
}
