using System.Net;
using Gateway.Core.Snapshot;
using Gateway.Deliverer;
using Gateway.PolicyDaemon;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Gateway.Testing;

/// <summary>
/// The whole gateway on one machine, every part real: redis-server, a DNS server, the ControlPlane
/// (gRPC), the PolicyDaemon and the Deliverer (in-process on real sockets) and a private Postfix built
/// from deploy/postfix that asks the PolicyDaemon and hands accepted mail to the Deliverer's intake
/// (before-queue, as deployed; after-queue with <c>smtpd_proxy_filter</c> empty).
/// Outbound delivery goes to <see cref="OutboundPort"/> of whatever the DNS server's MX records name,
/// so sinks on 127.0.0.x stand in for the internet.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class WholeGateway : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _parts = [];
    private Func<Task<RedisServer>>? _startRedis;

    private WholeGateway()
    {
    }

    public RedisServer Redis { get; private set; } = null!;

    public DnsTestServer Dns { get; private set; } = null!;

    public ControlPlaneHost ControlPlane { get; private set; } = null!;

    public WebApplication PolicyDaemon { get; private set; } = null!;

    public WebApplication Deliverer { get; private set; } = null!;

    public PostfixInstance Postfix { get; private set; } = null!;

    /// <summary>
    /// Stands in for the internet senders' MX for the notices Postfix writes itself (main.cf's
    /// <c>gateway_bounce_transport</c>): e.g. in after-queue mode the bounce after the intake refused a message Postfix had queued.
    /// </summary>
    public SmtpSink PostfixBounces { get; private set; } = null!;

    public IPEndPoint Intake { get; private set; } = null!;

    /// <summary>The intake's Unix socket when the Deliverer listens on one (<see cref="Intake"/> is then a placeholder).</summary>
    public string? IntakeSocket { get; private set; }

    /// <summary>The SMTP port outbound delivery connects to (port 25 in production).</summary>
    public int OutboundPort { get; private set; }

    /// <param name="configure">More settings for all three programs (e.g. <c>--Gateway:Queue:FirstRetryDelay=00:00:01</c>).</param>
    public static Task<WholeGateway> StartAsync(params string[] configure) => StartAsync(new Dictionary<string, string>(), configure);

    /// <param name="postfixMain">main.cf settings over the deploy file's, e.g. <c>smtpd_proxy_filter</c> empty for after-queue mode.</param>
    /// <param name="configure">More settings for all three programs.</param>
    public static Task<WholeGateway> StartAsync(IReadOnlyDictionary<string, string> postfixMain, params string[] configure) =>
        StartAsync(postfixMain, null, configure);

    /// <param name="redis">Starts the Redis to use (e.g. from deploy/redis/ with ACL users); default: an AOF redis-server.</param>
    public static async Task<WholeGateway> StartAsync(IReadOnlyDictionary<string, string> postfixMain, Func<Task<RedisServer>>? redis, params string[] configure)
    {
        ArgumentNullException.ThrowIfNull(postfixMain);
        ArgumentNullException.ThrowIfNull(configure);
        var stack = new WholeGateway { _startRedis = redis };
        try
        {
            await stack.StartPartsAsync(postfixMain, configure).ConfigureAwait(false);
            return stack;
        }
        catch
        {
            await stack.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartPartsAsync(IReadOnlyDictionary<string, string> postfixMain, string[] configure)
    {
        Redis = _startRedis is null ? await RedisServer.StartAsync(appendOnly: true).ConfigureAwait(false) : await _startRedis().ConfigureAwait(false);
        _parts.Add(Redis);
        Dns = DnsTestServer.Start();
        _parts.Add(Dns);
        OutboundPort = FreePort.Get();
        string[] common =
        [
            $"--Gateway:Redis={Redis.ConnectionString}",
            $"--Gateway:GatewayDomain={ControlPlaneHost.GatewayDomain}",
            $"--Gateway:Dns:Servers:0={Dns.Address}",
            "--Gateway:Dns:UseCache=false",
            "--Gateway:Dns:Timeout=00:00:02",
            "--Gateway:AllowLoopbackDestinations=true",
            "--Gateway:SnapshotReconcileInterval=00:00:00.200",
            "--Gateway:ProviderRanges:RefreshInterval=00:00:00",
            "--Logging:LogLevel:Default=Warning",
            // No scanning engines unless a test starts them and passes Gateway:Protection:* in `configure` (ScanningEngines).
            "--Gateway:Protection:Mode=Off",
        ];

        ControlPlane = await ControlPlaneHost.StartAsync(Redis.ConnectionString, [.. common, .. configure]).ConfigureAwait(false);
        _parts.Add(ControlPlane);

        Deliverer = DelivererApp.Build(
        [
            .. common,
            "--Gateway:Deliverer:Listen=127.0.0.1:0",
            "--Gateway:Deliverer:HttpUrl=http://127.0.0.1:0",
            $"--Gateway:Deliverer:OutboundPort={OutboundPort}",
            "--Gateway:Deliverer:ConnectTimeout=00:00:03",
            "--Gateway:Deliverer:PollInterval=00:00:00.200",
            "--Gateway:Queue:HostName=gateway.test",
            .. configure,
        ]);
        await Deliverer.StartAsync().ConfigureAwait(false);
        _parts.Add(Deliverer);
        // The intake on a Unix socket (Gateway:Deliverer:Listen=unix:/path): Postfix's proxy filter connects to the file.
        var intakeListener = Deliverer.Services.GetRequiredService<DelivererListeners>().Intake!;
        IntakeSocket = (intakeListener.EndPoint as System.Net.Sockets.UnixDomainSocketEndPoint)?.ToString();
        Intake = IntakeSocket is null ? DelivererApp.IntakeEndPoint(Deliverer) : new IPEndPoint(IPAddress.Loopback, 1);

        PolicyDaemon = PolicyDaemonApp.Build(
        [
            .. common,
            "--PolicyDaemon:PolicyEndpoint=127.0.0.1:0",
            "--PolicyDaemon:SocketmapEndpoint=127.0.0.1:0",
            "--PolicyDaemon:HttpUrl=http://127.0.0.1:0",
            // The socketmap's transport answer sends accepted mail to this Deliverer's intake.
            $"--PolicyDaemon:DelivererNextHop=smtp:[{Intake.Address}]:{Intake.Port}",
            .. configure,
        ]);
        await PolicyDaemon.StartAsync().ConfigureAwait(false);
        _parts.Add(PolicyDaemon);

        var endpoints = PolicyDaemon.Services.GetRequiredService<PolicyDaemonEndpoints>();
        static string PostfixEndPoint(EndPoint e) => e is IPEndPoint ip ? $"inet:{ip.Address}:{ip.Port}" : $"unix:{e}";
        await Eventually.WaitAsync(() => PolicyDaemon.Services.GetRequiredService<ConfigSnapshot>().IsLoaded
            && Deliverer.Services.GetRequiredService<ConfigSnapshot>().IsLoaded, TimeSpan.FromSeconds(20), "snapshots loaded").ConfigureAwait(false);

        var options = new PostfixOptions();
        options.Main["gateway_policy_service"] = PostfixEndPoint(endpoints.PolicyEndPoint);
        options.Main["gateway_socketmap"] = PostfixEndPoint(endpoints.SocketmapEndPoint);
        options.Main["gateway_intake"] = $"smtp:[{Intake.Address}]:{Intake.Port}";
        if (IntakeSocket is not null)
        {
            options.Main["gateway_intake_proxy"] = "unix:" + IntakeSocket;
        }
        PostfixBounces = SmtpSink.Start("127.0.0.1");
        _parts.Add(PostfixBounces);
        options.Main["gateway_bounce_transport"] = $"smtp:[{PostfixBounces.Host}]:{PostfixBounces.Port}";
        foreach (var (name, value) in postfixMain)
        {
            options.Main[name] = value;
        }

        Postfix = await PostfixInstance.StartAsync(options).ConfigureAwait(false);
        _parts.Add(Postfix);
    }

    /// <summary>Waits until both deciding programs applied a domain's saved revision.</summary>
    public Task WaitAppliedAsync(string domain, string etag) =>
        Eventually.WaitAsync(() =>
            new[] { PolicyDaemon, Deliverer }.All(app => app.Services.GetRequiredService<ConfigSnapshot>().Find(domain)?.Config.Etag == etag),
            TimeSpan.FromSeconds(5), $"{domain} revision {etag} applied");

    public async ValueTask DisposeAsync()
    {
        for (var i = _parts.Count - 1; i >= 0; i--)
        {
            switch (_parts[i])
            {
                case WebApplication app:
                    await app.StopAsync().ConfigureAwait(false);
                    await app.DisposeAsync().ConfigureAwait(false);
                    break;
                case var part:
                    await part.DisposeAsync().ConfigureAwait(false);
                    break;
            }
        }
    }
}
