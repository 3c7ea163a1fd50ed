using Gateway.Api.V1;
using Gateway.ControlPlane.Jobs;
using Gateway.Core;
using Gateway.Core.MessageLog;
using Gateway.Core.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Tests;

/// <summary>The ControlPlane's periodic maintenance: message logs trimmed to the retention, quiet domains included.</summary>
[Trait("Kind", "Integration")]
public sealed class MaintenanceTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    [Fact]
    public async Task RunOnce_EventsOlderThanRetention_GoneAlsoFromQuietDomains_RecentKept()
    {
        var (_, _, domains) = await fx.NewTenantAsync("mt");
        var quiet = ControlPlaneFixture.NewDomainName("quiet");
        var busy = ControlPlaneFixture.NewDomainName("busy");
        await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = quiet } });
        await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = busy } });
        var db = fx.RedisClient.GetDatabase();
        var options = new GatewayOptions { MessageLogRetention = TimeSpan.FromDays(90) };
        var old = DateTimeOffset.UtcNow.AddDays(-91).ToUnixTimeMilliseconds();
        foreach (var d in new[] { quiet, busy })
        {
            // More than one stream node (100 entries) of old events: the append path's approximate trim keeps some.
            for (var i = 0; i < 250; i++)
            {
                await db.ExecuteAsync("XADD", RedisKeys.DomainLog(d), $"{old + i}-0", "event", "intake");
            }
        }

        var writer = new MessageLogWriter(fx.RedisClient, options, TimeProvider.System);
        await writer.AppendAsync(new MessageLogEvent { Domain = busy, Event = MessageLogEvents.Delivered, MessageId = "recent" });

        var maintenance = new MaintenanceService(fx.RedisClient, fx.Services.GetRequiredService<DomainStore>(), writer,
            fx.Services.GetRequiredService<Gateway.ControlPlane.Application.QuarantineAdmin>(), options, TimeProvider.System, NullLogger<MaintenanceService>.Instance);
        Assert.True((await maintenance.RunOnceAsync(CancellationToken.None)).Trimmed >= 250);

        Assert.Equal(0, await db.StreamLengthAsync(RedisKeys.DomainLog(quiet)));
        var left = await db.StreamRangeAsync(RedisKeys.DomainLog(busy));
        Assert.Equal("recent", Assert.Single(left)["message_id"].ToString());
    }
}
