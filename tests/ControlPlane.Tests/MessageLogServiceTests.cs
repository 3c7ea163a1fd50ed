using Gateway.Api.V1;
using Gateway.Core;
using Gateway.Core.MessageLog;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Gateway.ControlPlane.Application;
using Gateway.Core.Mail;

namespace ControlPlane.Tests;

/// <summary>gateway.v1.MessageLogService over real gRPC and Redis: filters, paging, tenant isolation, validation, follow.</summary>
[Trait("Kind", "Integration")]
public sealed class MessageLogServiceTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    private MessageLogWriter Writer => new(fx.RedisClient, new GatewayOptions(), TimeProvider.System);

    private async Task<(string Domain, string CompanyId, MessageLogService.MessageLogServiceClient Log)> DomainAsync()
    {
        var (name, companyId, _, log) = await DomainWithKeyAsync();
        return (name, companyId, log);
    }

    private async Task<(string Domain, string CompanyId, string Key, MessageLogService.MessageLogServiceClient Log)> DomainWithKeyAsync()
    {
        var (companyId, key, domains) = await fx.NewTenantAsync("log");
        var name = ControlPlaneFixture.NewDomainName("log");
        await domains.CreateDomainAsync(new CreateDomainRequest { Domain = new Domain { Name = name } });
        return (name, companyId, key, new MessageLogService.MessageLogServiceClient(fx.WithKey(key)));
    }

    [Fact]
    public async Task QueryLog_OverHttpJson_FiltersFromTheQueryString()
    {
        var (d, _, key, _) = await DomainWithKeyAsync();
        await Writer.AppendManyAsync([
            new MessageLogEvent { Domain = d, Event = MessageLogEvents.Intake, MessageId = "h1" },
            new MessageLogEvent { Domain = d, Event = MessageLogEvents.Delivered, MessageId = "h1", Host = "192.0.2.1:25", Reply = "250 ok" },
            new MessageLogEvent { Domain = d, Event = MessageLogEvents.Delivered, MessageId = "h2" },
        ]);
        using var http = new HttpClient { BaseAddress = new Uri(fx.HttpAddress) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        using var r = await http.GetAsync($"/v1/domains/{d}/log?events=delivered&order=LOG_ORDER_OLDEST_FIRST&pageSize=1");
        Assert.Equal(System.Net.HttpStatusCode.OK, r.StatusCode);
        using var doc = System.Text.Json.JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        var e = Assert.Single(doc.RootElement.GetProperty("events").EnumerateArray());
        Assert.Equal("h1", e.GetProperty("messageId").GetString());
        Assert.Equal("192.0.2.1:25", e.GetProperty("host").GetString());
        Assert.NotEmpty(doc.RootElement.GetProperty("nextPageToken").GetString()!);

        using var bad = await http.GetAsync($"/v1/domains/{d}/log?direction=sideways");
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
    }

    private static async Task<List<LogEvent>> AllPagesAsync(MessageLogService.MessageLogServiceClient log, QueryLogRequest request)
    {
        var all = new List<LogEvent>();
        string token = string.Empty;
        do
        {
            var page = await log.QueryLogAsync(new QueryLogRequest(request) { PageToken = token });
            all.AddRange(page.Events);
            token = page.NextPageToken;
        }
        while (token.Length > 0);
        return all;
    }

    private static int CompareIds(string a, string b)
    {
        var (am, aseq) = Split(a);
        var (bm, bseq) = Split(b);
        return am != bm ? am.CompareTo(bm) : aseq.CompareTo(bseq);

        static (long, long) Split(string id) => (long.Parse(id[..id.IndexOf('-')], System.Globalization.CultureInfo.InvariantCulture),
            long.Parse(id[(id.IndexOf('-') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task QueryLog_ThousandsOfEvents_EveryPageInOrder_CompleteWithoutDuplicates()
    {
        var (d, _, log) = await DomainAsync();
        const int Count = 3000;
        foreach (var chunk in Enumerable.Range(0, Count).Chunk(500))
        {
            await Writer.AppendManyAsync(chunk.Select(i => new MessageLogEvent
            {
                Domain = d, Event = MessageLogEvents.Intake, MessageId = $"m{i:d5}", Direction = Direction.Inbound, Sender = "s@remote.test", Recipient = "u@" + d,
            }).ToList());
        }

        foreach (var order in new[] { LogOrder.Unspecified, LogOrder.OldestFirst })
        {
            var all = await AllPagesAsync(log, new QueryLogRequest { Domain = d, PageSize = 137, Order = order });
            Assert.Equal(Count, all.Count);
            Assert.Equal(Count, all.Select(e => e.Id).Distinct().Count());
            for (var i = 1; i < all.Count; i++)
            {
                var cmp = CompareIds(all[i - 1].Id, all[i].Id);
                Assert.True(order == LogOrder.OldestFirst ? cmp < 0 : cmp > 0, $"{order}: {all[i - 1].Id} then {all[i].Id}");
            }

            var expected = Enumerable.Range(0, Count).Select(i => $"m{i:d5}");
            Assert.Equal(order == LogOrder.OldestFirst ? expected : expected.Reverse(), all.Select(e => e.MessageId));
        }
    }

    [Fact]
    public async Task QueryLog_EachFilter_OnlyMatchingEvents()
    {
        var (d, _, log) = await DomainAsync();
        MessageLogEvent E(string ev, string id, string dir, string sender, string rcpt, string? pqid = null) => new()
        {
            Domain = d, Event = ev, MessageId = id, Direction = DirectionText.TryParse(dir, out var parsed) ? parsed : null, Sender = sender, Recipient = rcpt, PostfixQueueId = pqid,
        };

        await Writer.AppendManyAsync([
            E("intake", "a1", "inbound", "Alice@Remote.test", "bob@" + d, "4XyZ1"),
            E("attempt", "a1", "inbound", "alice@remote.test", "bob@" + d),
            E("delivered", "a1", "inbound", "alice@remote.test", "bob@" + d),
        ]);
        var early = await log.QueryLogAsync(new QueryLogRequest { Domain = d, Order = LogOrder.OldestFirst });
        // Let the stream's millisecond clock move on, so the second batch has later ids than the boundary.
        // Time filters apply to when an event was logged: its stream id's milliseconds.
        var boundary = DateTimeOffset.FromUnixTimeMilliseconds(MessageLogFields.IdMilliseconds(early.Events[^1].Id) + 1);
        await Task.Delay(20);
        await Writer.AppendManyAsync([
            E("intake", "b2", "outbound", "carol@" + d, "dave@far.test"),
            E("bounced", "b2", "outbound", "carol@" + d, "dave@far.test"),
            E("policy_reject", "", "inbound", "eve@spam.test", "x@" + d),
        ]);

        async Task<List<string>> Q(QueryLogRequest r)
        {
            r.Domain = d;
            r.Order = LogOrder.OldestFirst;
            return (await AllPagesAsync(log, r)).Select(e => $"{e.Event}:{e.MessageId}").ToList();
        }

        Assert.Equal(["intake:b2", "bounced:b2"], await Q(new QueryLogRequest { Direction = DirectionText.Outbound }));
        Assert.Equal(["intake:a1", "attempt:a1", "delivered:a1"], await Q(new QueryLogRequest { Sender = "ALICE@remote.test" }));
        Assert.Equal(["intake:b2", "bounced:b2"], await Q(new QueryLogRequest { Sender = "@" + d }));
        Assert.Equal(["intake:b2", "bounced:b2"], await Q(new QueryLogRequest { Recipient = "dave@far.test" }));
        Assert.Equal(["policy_reject:"], await Q(new QueryLogRequest { Recipient = "x@" + d }));
        Assert.Equal(["intake:a1", "attempt:a1", "delivered:a1"], await Q(new QueryLogRequest { MessageId = "a1" }));
        Assert.Equal(["intake:a1"], await Q(new QueryLogRequest { PostfixQueueId = "4XyZ1" }));
        Assert.Equal(["delivered:a1", "bounced:b2"], await Q(new QueryLogRequest { Events = { "delivered", "bounced" } }));
        Assert.Equal(["intake:b2", "bounced:b2", "policy_reject:"], await Q(new QueryLogRequest { StartTime = Timestamp.FromDateTimeOffset(boundary) }));
        Assert.Equal(["intake:a1", "attempt:a1", "delivered:a1"], await Q(new QueryLogRequest { EndTime = Timestamp.FromDateTimeOffset(boundary) }));
        Assert.Equal(["bounced:b2"], await Q(new QueryLogRequest { StartTime = Timestamp.FromDateTimeOffset(boundary), Events = { "bounced" }, Direction = DirectionText.Outbound }));
    }

    [Fact]
    public async Task QueryLog_SparseFilter_BoundedScanPerPage_TokenLeadsToTheMatch()
    {
        var (d, _, log) = await DomainAsync();
        await Writer.AppendAsync(new MessageLogEvent { Domain = d, Event = MessageLogEvents.Expired, MessageId = "old1" });
        foreach (var chunk in Enumerable.Range(0, MessageLogQueries.ScanBudget + 500).Chunk(1000))
        {
            await Writer.AppendManyAsync(chunk.Select(i => new MessageLogEvent { Domain = d, Event = MessageLogEvents.Intake, MessageId = "n" + i }).ToList());
        }

        var first = await log.QueryLogAsync(new QueryLogRequest { Domain = d, Events = { "expired" } });
        Assert.Empty(first.Events);
        Assert.NotEmpty(first.NextPageToken);
        var second = await log.QueryLogAsync(new QueryLogRequest { Domain = d, Events = { "expired" }, PageToken = first.NextPageToken });
        Assert.Equal("old1", Assert.Single(second.Events).MessageId);
        Assert.Empty(second.NextPageToken);
    }

    [Fact]
    public async Task QueryLog_OtherTenantsDomain_NotFound_OperatorForTenantAllowed()
    {
        var (d, companyId, _) = await DomainAsync();
        var (_, _, other) = await DomainAsync();
        await Writer.AppendAsync(new MessageLogEvent { Domain = d, Event = MessageLogEvents.Intake, MessageId = "x1" });
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, other.QueryLogAsync(new QueryLogRequest { Domain = d }));
        await RpcAssert.ThrowsAsync(StatusCode.NotFound, async () =>
        {
            using var call = other.FollowLog(new FollowLogRequest { Domain = d });
            await call.ResponseStream.MoveNext();
        });

        var op = new MessageLogService.MessageLogServiceClient(fx.WithKey(ControlPlaneFixture.OperatorKey, companyId));
        Assert.Equal("x1", Assert.Single((await op.QueryLogAsync(new QueryLogRequest { Domain = d })).Events).MessageId);
        await RpcAssert.ThrowsAsync(StatusCode.Unauthenticated, new MessageLogService.MessageLogServiceClient(fx.WithKey("gwk_bad")).QueryLogAsync(new QueryLogRequest { Domain = d }));
    }

    [Fact]
    public async Task QueryLog_BadInput_FieldViolations()
    {
        var (d, _, log) = await DomainAsync();
        var now = DateTimeOffset.UtcNow;
        await RpcAssert.InvalidFieldAsync("direction", log.QueryLogAsync(new QueryLogRequest { Domain = d, Direction = "sideways" }));
        var unknown = await RpcAssert.InvalidFieldAsync("events", log.QueryLogAsync(new QueryLogRequest { Domain = d, Events = { "delivered", "teleported" } }));
        Assert.Contains("teleported", unknown.Description, StringComparison.Ordinal);
        await RpcAssert.InvalidFieldAsync("end_time", log.QueryLogAsync(new QueryLogRequest
        {
            Domain = d, StartTime = Timestamp.FromDateTimeOffset(now), EndTime = Timestamp.FromDateTimeOffset(now.AddMinutes(-1)),
        }));
        await RpcAssert.InvalidFieldAsync("message_id", log.QueryLogAsync(new QueryLogRequest { Domain = d, MessageId = "gw:{d:x}:*" }));
        await RpcAssert.InvalidFieldAsync("sender", log.QueryLogAsync(new QueryLogRequest { Domain = d, Sender = "a b@c" }));
        await RpcAssert.InvalidFieldAsync("page_size", log.QueryLogAsync(new QueryLogRequest { Domain = d, PageSize = -1 }));
        await RpcAssert.InvalidFieldAsync("page_token", log.QueryLogAsync(new QueryLogRequest { Domain = d, PageToken = "nonsense" }));
        await RpcAssert.InvalidFieldAsync("name", log.QueryLogAsync(new QueryLogRequest { Domain = "" }));

        // A token of a newest-first query is refused by an oldest-first one.
        foreach (var chunk in Enumerable.Range(0, 3))
        {
            await Writer.AppendAsync(new MessageLogEvent { Domain = d, Event = MessageLogEvents.Intake, MessageId = "m" + chunk });
        }

        var page = await log.QueryLogAsync(new QueryLogRequest { Domain = d, PageSize = 1 });
        await RpcAssert.InvalidFieldAsync("page_token", log.QueryLogAsync(new QueryLogRequest { Domain = d, PageToken = page.NextPageToken, Order = LogOrder.OldestFirst }));
        await RpcAssert.ThrowsAsync(StatusCode.InvalidArgument, async () =>
        {
            using var call = log.FollowLog(new FollowLogRequest { Domain = d, Direction = "up" });
            await call.ResponseStream.MoveNext();
        });
    }

    [Fact]
    public async Task FollowLog_FromNow_OnlyNewMatchingEvents_EndsWhenClientCancels()
    {
        var (d, _, log) = await DomainAsync();
        await Writer.AppendAsync(new MessageLogEvent { Domain = d, Event = MessageLogEvents.Delivered, MessageId = "before" });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var call = log.FollowLog(new FollowLogRequest { Domain = d, Events = { "delivered" } }, cancellationToken: cts.Token);
        var first = call.ResponseStream.MoveNext(cts.Token);

        // Keep writing until the follower reports one: it starts from "now", so which of them it sees first
        // depends on when the server began, but never "before", and only delivered events.
        var i = 0;
        while (!first.IsCompleted)
        {
            await Writer.AppendManyAsync([
                new MessageLogEvent { Domain = d, Event = MessageLogEvents.Attempt, MessageId = "a" + i },
                new MessageLogEvent { Domain = d, Event = MessageLogEvents.Delivered, MessageId = "d" + i },
            ]);
            i++;
            await Task.WhenAny(first, Task.Delay(100, cts.Token));
        }

        Assert.True(await first);
        Assert.Equal("delivered", call.ResponseStream.Current.Event);
        Assert.StartsWith("d", call.ResponseStream.Current.MessageId, StringComparison.Ordinal);
        var next = call.ResponseStream.Current.MessageId;
        await Writer.AppendAsync(new MessageLogEvent { Domain = d, Event = MessageLogEvents.Delivered, MessageId = "last" });
        var seen = new List<string>();
        while (await call.ResponseStream.MoveNext(cts.Token))
        {
            seen.Add(call.ResponseStream.Current.MessageId);
            if (call.ResponseStream.Current.MessageId == "last")
            {
                break;
            }
        }

        Assert.DoesNotContain("before", seen);
        Assert.DoesNotContain(next, seen);
        Assert.All(seen, s => Assert.True(s.StartsWith('d') || s == "last", s));
        await cts.CancelAsync();
        await RpcAssert.ThrowsAsync(StatusCode.Cancelled, () => call.ResponseStream.MoveNext(CancellationToken.None));
    }
}
