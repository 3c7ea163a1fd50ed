using System.Net;
using Gateway.Api.V1;
using Gateway.Testing;
using Grpc.Core;

namespace ControlPlane.Tests;

/// <summary>/metrics and /healthz on the ControlPlane's HTTP/1.1 listener, scraped over HTTP as Prometheus would.</summary>
[Trait("Kind", "Integration")]
public sealed class TelemetryTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    private const string Requests = "gateway_controlplane_requests_total";

    [Fact]
    public async Task Metrics_RequestsByMethodAndCode_MoveWithGrpcAndJsonCalls()
    {
        var (_, key, domains) = await fx.NewTenantAsync("tm");
        const string Get = "/gateway.v1.DomainService/GetDomain";
        var before = await Scrape.GetAsync(fx.HttpAddress);

        var missing = await Assert.ThrowsAsync<RpcException>(async () => await domains.GetDomainAsync(new GetDomainRequest { Name = "absent.example.com" }));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        await domains.ListDomainsAsync(new ListDomainsRequest());
        using (var http = new HttpClient { BaseAddress = new Uri(fx.HttpAddress) })
        {
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            using var r = await http.GetAsync(new Uri("/v1/domains/absent2.example.com", UriKind.Relative));
            Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        }

        var after = await Scrape.GetAsync(fx.HttpAddress);
        Assert.Equal("counter", after.TypeOf(Requests));
        Assert.True(after.Value(Requests, ("method", Get), ("code", "NOT_FOUND")) >= before.Value(Requests, ("method", Get), ("code", "NOT_FOUND")) + 2, after.Text);
        Assert.True(after.Value(Requests, ("method", "/gateway.v1.DomainService/ListDomains"), ("code", "OK")) >= 1);
        Assert.True(after.Value("gateway_controlplane_request_duration_seconds_count", ("method", Get)) >=
                    before.Value("gateway_controlplane_request_duration_seconds_count", ("method", Get)) + 2);
        Assert.Equal("histogram", after.TypeOf("gateway_controlplane_request_duration_seconds"));
        Assert.True(after.Has("process_cpu_seconds_total"), "process metrics are exported too");
    }

    [Fact]
    public async Task Metrics_Unauthenticated_CountedWithItsCode()
    {
        var before = await Scrape.GetAsync(fx.HttpAddress);
        var client = new DomainService.DomainServiceClient(fx.WithKey("wrong-key"));
        var e = await Assert.ThrowsAsync<RpcException>(async () => await client.ListDomainsAsync(new ListDomainsRequest()));
        Assert.Equal(StatusCode.Unauthenticated, e.StatusCode);
        var after = await Scrape.GetAsync(fx.HttpAddress);
        Assert.True(after.Value(Requests, ("code", "UNAUTHENTICATED")) >= before.Value(Requests, ("code", "UNAUTHENTICATED")) + 1, after.Text);
    }

    [Fact]
    public async Task Healthz_RedisUpWithoutAof_200RedisHealthy_DurabilityDegradedWithReason()
    {
        // The fixture's redis-server runs without AOF (appendonly no, everysec): reachable, but not what the promise needs.
        using var http = new HttpClient { BaseAddress = new Uri(fx.HttpAddress) };
        string body = string.Empty;
        await Eventually.WaitAsync(async () =>
        {
            using var r = await http.GetAsync(new Uri("/healthz", UriKind.Relative));
            body = await r.Content.ReadAsStringAsync();
            return r.StatusCode == HttpStatusCode.OK && body.Contains("redis-durability: Degraded (Redis does not keep", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(20), "durability reported");
        Assert.StartsWith("Degraded\n", body, StringComparison.Ordinal);
        Assert.Contains("redis: Healthy", body, StringComparison.Ordinal);
        Assert.Contains("appendonly is no", body, StringComparison.Ordinal);
        Assert.Contains("gateway_redis_durable 0", (await Scrape.GetAsync(fx.HttpAddress)).Text, StringComparison.Ordinal);
    }
}
