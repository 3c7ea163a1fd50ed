using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Gateway.Api.V1;
using Gateway.Core.Delivery;
using Gateway.Core.Quarantine;
using Gateway.Testing;
using CoreQuarantined = Gateway.Core.Quarantine.QuarantinedMessage;
using Gateway.Core.Mail;

namespace ControlPlane.Tests;

/// <summary>Rules and quarantine through gatewayctl (a real process) and HTTP/JSON, against the ControlPlane and Redis.</summary>
[Trait("Kind", "Integration")]
public sealed class RuleCliTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    private async Task<(string Domain, string Key)> DomainAsync()
    {
        var (_, key, domains) = await fx.NewTenantAsync("rc");
        var name = ControlPlaneFixture.NewDomainName("rc");
        var domain = new Domain { Name = name, InboundEnabled = true };
        domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + name, Host = "192.0.2.1" });
        await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        return (name, key);
    }

    private Task<CliResult> CtlAsync(string key, params string[] args) =>
        GatewayCtl.RunAsync(new Dictionary<string, string> { ["GATEWAY_ENDPOINT"] = fx.Address, ["GATEWAY_KEY"] = key }, args);

    private static async Task<CliResult> OkAsync(Task<CliResult> run)
    {
        var r = await run;
        Assert.True(r.ExitCode == 0, r.ToString());
        return r;
    }

    [Fact]
    public async Task RulesCommands_AddListGetUpdateMoveDelete_AsAProcess()
    {
        var (d, key) = await DomainAsync();
        var added = await OkAsync(CtlAsync(key, "rules", "add", d, "--sender", "*@spam.example", "--action", "reject", "--reject-text", "No spam", "--json"));
        string first;
        using (var doc = JsonDocument.Parse(added.Out))
        {
            first = doc.RootElement.GetProperty("id").GetString()!;
        }

        var second = await OkAsync(CtlAsync(key, "rules", "add", d, "--attachment", "*.exe", "--attachment", "*.scr", "--action", "quarantine",
            "--description", "executables", "--position", "1"));
        Assert.Contains("intake", second.Out, StringComparison.Ordinal);
        Assert.Contains("attachment *.exe|*.scr", second.Out, StringComparison.Ordinal);

        var list = await OkAsync(CtlAsync(key, "rules", "list", d));
        var lines = list.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("quarantine", lines[1], StringComparison.Ordinal);
        Assert.Contains(first, lines[2], StringComparison.Ordinal);
        Assert.Contains("reject \"No spam\"", lines[2], StringComparison.Ordinal);
        Assert.Contains("sender *@spam.example", lines[2], StringComparison.Ordinal);

        var get = await OkAsync(CtlAsync(key, "rules", "get", d, first));
        Assert.Contains("RCPT", get.Out, StringComparison.Ordinal);
        Assert.Contains("2", get.Out, StringComparison.Ordinal);

        var updated = await OkAsync(CtlAsync(key, "rules", "update", d, first, "--client-ip", "2001:db8::/32", "--disabled", "true", "--etag", "1"));
        Assert.Contains("client 2001:db8::/32", updated.Out, StringComparison.Ordinal);
        Assert.Contains("disabled", updated.Out, StringComparison.Ordinal);
        var stale = await CtlAsync(key, "rules", "update", d, first, "--description", "x", "--etag", "1");
        Assert.Equal(5, stale.ExitCode);
        Assert.Contains("ABORTED", stale.Err, StringComparison.Ordinal);

        var moved = await OkAsync(CtlAsync(key, "rules", "move", d, first, "1"));
        Assert.Contains("now number 1", moved.Out, StringComparison.Ordinal);

        var bad = await CtlAsync(key, "rules", "add", d, "--client-ip", "10.0.0.0/33", "--action", "reject");
        Assert.Equal(5, bad.ExitCode);
        Assert.Contains("rule.client_ips[0]", bad.Err, StringComparison.Ordinal);
        var noAction = await CtlAsync(key, "rules", "add", d, "--sender", "a@b.example", "--action", "drop");
        Assert.Equal(2, noAction.ExitCode);

        await OkAsync(CtlAsync(key, "rules", "delete", d, first));
        var gone = await CtlAsync(key, "rules", "get", d, first);
        Assert.Equal(4, gone.ExitCode);
        Assert.Contains("NOT_FOUND", gone.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task QuarantineCommands_ListReleaseDelete_AsAProcess()
    {
        var (d, key) = await DomainAsync();
        var store = new QuarantineStore(fx.RedisClient);
        var now = DateTimeOffset.UtcNow;
        CoreQuarantined Held(string sender, int minutesAgo) => new()
        {
            Id = MessageId.New(now.AddMinutes(-minutesAgo)), Domain = d, Direction = Direction.Inbound, Sender = sender, Recipients = ["u@" + d],
            QuarantineTime = now.AddMinutes(-minutesAgo), RuleId = "r0123456789ab", Subject = "Subject of " + sender,
        };
        var a = Held("alice@one.example", 10);
        var b = Held("bob@two.example", 5);
        await store.AddManyAsync([(a, "Subject: a\r\n\r\nx\r\n"u8.ToArray()), (b, "Subject: b\r\n\r\ny\r\n"u8.ToArray())]);

        var list = await OkAsync(CtlAsync(key, "quarantine", "list", d));
        Assert.True(list.Out.IndexOf(b.Id, StringComparison.Ordinal) < list.Out.IndexOf(a.Id, StringComparison.Ordinal), list.Out);
        Assert.Contains("Subject of alice@one.example", list.Out, StringComparison.Ordinal);
        var filtered = await OkAsync(CtlAsync(key, "quarantine", "list", d, "--sender", "one.example", "--json"));
        using (var doc = JsonDocument.Parse(filtered.Out))
        {
            var m = Assert.Single(doc.RootElement.GetProperty("messages").EnumerateArray());
            Assert.Equal(a.Id, m.GetProperty("message_id").GetString());
        }

        var release = await OkAsync(CtlAsync(key, "quarantine", "release", d, a.Id));
        Assert.Contains($"Released {a.Id}", release.Out, StringComparison.Ordinal);
        var queue = new MessageQueue(fx.RedisClient, new QueueOptions(), TimeProvider.System);
        var queued = await queue.LoadAsync(d, a.Id);
        Assert.NotNull(queued);
        Assert.Equal("alice@one.example", queued!.Value.Message.Sender);
        Assert.Equal("Subject: a\r\n\r\nx\r\n", Encoding.ASCII.GetString(queued.Value.Body));
        Assert.Null(await store.GetAsync(d, a.Id));

        await OkAsync(CtlAsync(key, "quarantine", "delete", d, b.Id));
        Assert.Equal(0, await store.CountAsync(d));
        var again = await CtlAsync(key, "quarantine", "delete", d, b.Id);
        Assert.Equal(4, again.ExitCode);
    }

    [Fact]
    public async Task RulesOverHttpJson_CreateAndList()
    {
        var (d, key) = await DomainAsync();
        using var http = new HttpClient { BaseAddress = new Uri(fx.HttpAddress) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using (var r = await http.PostAsync($"/v1/domains/{d}/rules",
            new StringContent("""{"senders":["*@x.example"],"action":"RULE_ACTION_REJECT","rejectText":"nope"}""", Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }

        using (var r = await http.GetAsync($"/v1/domains/{d}/rules"))
        {
            var body = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("nope", body.GetProperty("rules")[0].GetProperty("rejectText").GetString());
        }

        using (var r = await http.GetAsync($"/v1/domains/{d}/quarantine"))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
    }
}
