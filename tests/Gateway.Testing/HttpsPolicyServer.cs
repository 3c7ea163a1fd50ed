using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Gateway.Testing;

/// <summary>
/// An HTTPS server (Kestrel) for MTA-STS tests: serves <c>/.well-known/mta-sts.txt</c> for <c>mta-sts.&lt;domain&gt;</c> hosts
/// on one loopback address and port, with a certificate for each host issued by the test CA on demand (SNI), and counts
/// fetches per host. The tests' DNS server points the <c>mta-sts.</c> names at <see cref="Address"/>.
/// </summary>
public sealed class HttpsPolicyServer : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, (string Body, string ContentType)> _policies = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, int> _fetches = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, System.Security.Cryptography.X509Certificates.X509Certificate2> _certificates = new(StringComparer.OrdinalIgnoreCase);
    private readonly WebApplication _app;

    private HttpsPolicyServer(WebApplication app, IPEndPoint endPoint)
    {
        _app = app;
        EndPoint = endPoint;
    }

    public IPEndPoint EndPoint { get; }

    public string Address => EndPoint.Address.ToString();

    public int Port => EndPoint.Port;

    public static async Task<HttpsPolicyServer> StartAsync(TestCertificates ca, IPAddress address, int port)
    {
        ArgumentNullException.ThrowIfNull(ca);
        HttpsPolicyServer? server = null;
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k => k.Listen(address, port, l => l.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificateSelector = (_, name) => name is null ? null : server!._certificates.GetOrAdd(name, n => ca.Issue(n)),
        })));
        var app = builder.Build();
        server = new HttpsPolicyServer(app, new IPEndPoint(address, port));
        app.MapGet("/.well-known/mta-sts.txt", (HttpContext context) =>
        {
            var host = context.Request.Host.Host;
            server._fetches.AddOrUpdate(host, 1, (_, n) => n + 1);
            return server._policies.TryGetValue(host, out var p) ? Results.Text(p.Body, p.ContentType) : Results.NotFound();
        });
        await app.StartAsync().ConfigureAwait(false);
        return server;
    }

    /// <summary>Serves a policy for <c>mta-sts.&lt;domain&gt;</c>.</summary>
    public void Serve(string domain, string policy, string contentType = "text/plain") => _policies["mta-sts." + domain] = (policy, contentType);

    /// <summary>How many times the policy of <paramref name="domain"/> was fetched.</summary>
    public int Fetches(string domain) => _fetches.TryGetValue("mta-sts." + domain, out var n) ? n : 0;

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        foreach (var c in _certificates.Values)
        {
            c.Dispose();
        }
    }
}
