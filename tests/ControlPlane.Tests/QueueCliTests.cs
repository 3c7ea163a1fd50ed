using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Gateway.Api.V1;
using Gateway.Core.Delivery;
using Gateway.Testing;
using Gateway.Core.Mail;

namespace ControlPlane.Tests;

/// <summary>The queue through gatewayctl (a real process) and through HTTP/JSON, against the ControlPlane and Redis.</summary>
[Trait("Kind", "Integration")]
public sealed class QueueCliTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    private MessageQueue Store => new(fx.RedisClient, new QueueOptions { HostName = "gw.test" }, TimeProvider.System);

    private async Task<(string Domain, string Key)> DomainAsync()
    {
        var (_, key, domains) = await fx.NewTenantAsync("qc");
        var name = ControlPlaneFixture.NewDomainName("qc");
        var domain = new Domain { Name = name, InboundEnabled = true };
        domain.InboundServers.Add(new Gateway.Api.V1.InboundServer { Recipient = "*@" + name, Host = "192.0.2.1" });
        await domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        return (name, key);
    }

    private Task<string> EnqueueAsync(string domain, string sender) =>
        Store.EnqueueAsync(new QueueEnvelope(domain, Direction.Inbound, sender, ["u@" + domain]), "Subject: q\r\n\r\nx\r\n"u8.ToArray());

    private Task<CliResult> CtlAsync(string key, params string[] args) =>
        GatewayCtl.RunAsync(new Dictionary<string, string> { ["GATEWAY_ENDPOINT"] = fx.Address, ["GATEWAY_KEY"] = key }, args);

    [Fact]
    public async Task QueueCommands_ListGetRetryBounceDelete_AsAProcess()
    {
        var (d, key) = await DomainAsync();
        var a = await EnqueueAsync(d, "alice@remote.test");
        var b = await EnqueueAsync(d, string.Empty);

        var list = await CtlAsync(key, "queue", "list", d);
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Contains(a, list.Out, StringComparison.Ordinal);
        Assert.Contains(b, list.Out, StringComparison.Ordinal);
        Assert.Contains("alice@remote.test", list.Out, StringComparison.Ordinal);
        Assert.Contains("1/1", list.Out, StringComparison.Ordinal);

        var json = await CtlAsync(key, "queue", "list", d, "--json");
        using (var doc = JsonDocument.Parse(json.Out))
        {
            Assert.Equal(2, doc.RootElement.GetProperty("messages").GetArrayLength());
        }

        var get = await CtlAsync(key, "queue", "get", d, a);
        Assert.True(get.ExitCode == 0, get.ToString());
        Assert.Contains("u@" + d, get.Out, StringComparison.Ordinal);
        Assert.Contains("pending", get.Out, StringComparison.Ordinal);

        var retry = await CtlAsync(key, "queue", "retry", d, a);
        Assert.True(retry.ExitCode == 0, retry.ToString());
        Assert.Contains("due now", retry.Out, StringComparison.Ordinal);

        var bounce = await CtlAsync(key, "queue", "bounce", d, a, "--reason", "operator test");
        Assert.True(bounce.ExitCode == 0, bounce.ToString());
        Assert.Contains("DSN", bounce.Out, StringComparison.Ordinal);
        Assert.Contains("alice@remote.test", bounce.Out, StringComparison.Ordinal);

        var delete = await CtlAsync(key, "queue", "delete", d, b);
        Assert.True(delete.ExitCode == 0, delete.ToString());
        Assert.Null(await Store.GetAsync(d, b));

        var gone = await CtlAsync(key, "queue", "get", d, b);
        Assert.Equal(4, gone.ExitCode);
        Assert.Contains("NOT_FOUND", gone.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", gone.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task QueueOverHttpJson_ListGetRetryDelete_AndNotFound()
    {
        var (d, key) = await DomainAsync();
        var id = await EnqueueAsync(d, "bob@remote.test");
        using var http = new HttpClient { BaseAddress = new Uri(fx.HttpAddress) };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);

        using (var r = await http.GetAsync($"/v1/domains/{d}/queue"))
        {
            var body = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal(id, body.GetProperty("messages")[0].GetProperty("messageId").GetString());
        }

        using (var r = await http.GetAsync($"/v1/domains/{d}/queue/{id}"))
        {
            var body = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal("bob@remote.test", body.GetProperty("sender").GetString());
            Assert.Equal("RECIPIENT_STATE_PENDING", body.GetProperty("recipients")[0].GetProperty("state").GetString());
        }

        using (var r = await http.PostAsync($"/v1/domains/{d}/queue/{id}:retry", new StringContent("{}", System.Text.Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }

        using (var r = await http.DeleteAsync($"/v1/domains/{d}/queue/{id}"))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }

        using (var r = await http.GetAsync($"/v1/domains/{d}/queue/{id}"))
        {
            Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        }
    }
}
