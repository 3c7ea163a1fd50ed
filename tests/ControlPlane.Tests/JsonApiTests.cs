using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace ControlPlane.Tests;

/// <summary>The same API as HTTP/JSON (gRPC JSON transcoding) on the HTTP/1.1 listener, as curl would use it.</summary>
[Trait("Kind", "Integration")]
public sealed class JsonApiTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    private HttpClient Client(string? key)
    {
        var http = new HttpClient { BaseAddress = new Uri(fx.HttpAddress) };
        if (key is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return http;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> ReadAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public async Task TenantKeyDomain_RoundTripOverHttpJson()
    {
        using var op = Client(ControlPlaneFixture.OperatorKey);
        Assert.Equal(HttpVersion.Version11, op.DefaultRequestVersion);
        var company = "json-" + Guid.NewGuid().ToString("N")[..8];
        using (var r = await op.PostAsync("/v1/tenants", Json($$"""{"company_id":"{{company}}","display_name":"JSON Inc"}""")))
        {
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
            Assert.Equal(company, (await ReadAsync(r)).GetProperty("companyId").GetString());
        }

        string key;
        using (var r = await op.PostAsync($"/v1/tenants/{company}/apiKeys", Json("""{"description":"curl"}""")))
        {
            key = (await ReadAsync(r)).GetProperty("key").GetString()!;
        }

        using var tenant = Client(key);
        var name = ControlPlaneFixture.NewDomainName("json");
        using (var r = await tenant.PostAsync("/v1/domains", Json($$"""
            {"name":"{{name}}","inboundEnabled":true,"inboundServers":[{"recipient":"*@{{name}}","host":"192.0.2.1","preference":20}]}
            """)))
        {
            var body = await ReadAsync(r);
            Assert.True(r.StatusCode == HttpStatusCode.OK, body.ToString());
            Assert.Equal(25, body.GetProperty("inboundServers")[0].GetProperty("port").GetInt32());
            Assert.StartsWith("tmes=", body.GetProperty("verification").GetProperty("txtRecord").GetString(), StringComparison.Ordinal);
        }

        using (var r = await tenant.PatchAsync($"/v1/domains/{name}?updateMask=outbound.enabled,outbound.customIps",
                   Json("""{"outbound":{"enabled":true,"customIps":["198.51.100.4"]}}""")))
        {
            var body = await ReadAsync(r);
            Assert.True(r.StatusCode == HttpStatusCode.OK, body.ToString());
            Assert.True(body.GetProperty("outbound").GetProperty("enabled").GetBoolean());
            Assert.True(body.GetProperty("inboundEnabled").GetBoolean());
        }

        using (var r = await tenant.GetAsync("/v1/domains?pageSize=10"))
        {
            var names = (await ReadAsync(r)).GetProperty("domains").EnumerateArray().Select(d => d.GetProperty("name").GetString()).ToList();
            Assert.Equal([name], names);
        }

        using (var r = await tenant.DeleteAsync($"/v1/domains/{name}"))
        {
            Assert.Equal(4, (await ReadAsync(r)).GetProperty("undoSteps").GetArrayLength());
        }

        using (var r = await tenant.GetAsync($"/v1/domains/{name}"))
        {
            Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        }
    }

    [Fact]
    public async Task Errors_MapToHttpStatus_WithFieldViolationsInTheBody()
    {
        var (_, key, _) = await fx.NewTenantAsync("json");
        using var tenant = Client(key);
        using (var r = await tenant.PostAsync("/v1/domains", Json("""{"name":"*.example.com"}""")))
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            var body = await ReadAsync(r);
            Assert.Equal(3, body.GetProperty("code").GetInt32());
            var violation = body.GetProperty("details")[0].GetProperty("fieldViolations")[0];
            Assert.Equal("domain.name", violation.GetProperty("field").GetString());
        }

        using var anonymous = Client(null);
        using (var r = await anonymous.GetAsync("/v1/domains"))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, r.StatusCode);
        }

        using (var r = await tenant.GetAsync("/v1/tenants"))
        {
            Assert.Equal(HttpStatusCode.Forbidden, r.StatusCode);
        }
    }

    [Fact]
    public async Task CurlDefaults_FormTypedAndMissingBodies_AreReadAsJson()
    {
        // curl -d '{…}' sends application/x-www-form-urlencoded; curl -X POST alone sends no body and no type.
        using var op = Client(ControlPlaneFixture.OperatorKey);
        var company = "curl-" + Guid.NewGuid().ToString("N")[..8];
        using (var form = new StringContent($$"""{"company_id":"{{company}}"}""", Encoding.UTF8, "application/x-www-form-urlencoded"))
        using (var r = await op.PostAsync("/v1/tenants", form))
        {
            var body = await ReadAsync(r);
            Assert.True(r.StatusCode == HttpStatusCode.OK, body.ToString());
            Assert.Equal(company, body.GetProperty("companyId").GetString());
        }

        using (var r = await op.PostAsync($"/v1/tenants/{company}/apiKeys", content: null))
        {
            var body = await ReadAsync(r);
            Assert.True(r.StatusCode == HttpStatusCode.OK, body.ToString());
            Assert.StartsWith("gwk_", body.GetProperty("key").GetString(), StringComparison.Ordinal);
        }

        using (var text = new StringContent("{}", Encoding.UTF8, "text/plain"))
        using (var r = await op.PostAsync($"/v1/tenants/{company}/apiKeys", text))
        {
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
        }
    }
}
