using System.Diagnostics;
using System.Net;
using Gateway.Api.V1;
using Gateway.ControlPlane;
using Gateway.Core.Delivery;
using Gateway.Core.Domains;
using Gateway.Core.Storage;
using Gateway.Deliverer;
using Gateway.Testing;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using MailKit.Net.Smtp;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;
using StackExchange.Redis;
using Gateway.ControlPlane.Application;

namespace Deliverer.Tests;

/// <summary>
/// Real parts for delivery tests: a redis-server, a DNS server, the ControlPlane (gRPC on Kestrel) to
/// configure domains, and the Deliverer (intake on Kestrel, delivery over real SMTP) in-process or as
/// its own OS process. Subclasses change the Deliverer's settings.
/// </summary>
public class GatewayFixture : IAsyncLifetime
{
    public const string OperatorKey = ControlPlaneHost.OperatorKey;
    public const string GatewayDomain = ControlPlaneHost.GatewayDomain;

    private ControlPlaneHost? _controlPlane;
    private WebApplication? _deliverer;
    private Process? _process;

    public RedisServer Redis { get; private set; } = null!;

    public ConnectionMultiplexer RedisClient { get; private set; } = null!;

    public DnsTestServer Dns { get; private set; } = null!;

    public GrpcChannel Channel { get; private set; } = null!;

    /// <summary>The port outbound delivery uses (Gateway:Deliverer:OutboundPort); outbound sinks listen on it at their own 127.0.0.x.</summary>
    public int OutboundPort { get; private set; }

    public IPEndPoint Intake { get; private set; } = null!;

    /// <summary>The in-process Deliverer's /healthz and /metrics listener (http://ip:port).</summary>
    public string? DelivererHttp { get; private set; }

    public string CompanyId { get; private set; } = string.Empty;

    public DomainService.DomainServiceClient Domains { get; private set; } = null!;

    public QueueService.QueueServiceClient Queue { get; private set; } = null!;

    public MessageLogService.MessageLogServiceClient Log { get; private set; } = null!;

    /// <summary>The in-process Deliverer's queue (or a store on the same Redis when it runs as a process).</summary>
    public MessageQueue Store { get; private set; } = null!;

    public IServiceProvider ControlPlaneServices => _controlPlane!.Services;

    /// <summary>The in-process Deliverer's services (null when it runs as a process or is stopped).</summary>
    public IServiceProvider? DelivererServices => _deliverer?.Services;

    /// <summary>Run the Deliverer as a separate process (the "killed at any moment" test).</summary>
    protected virtual bool DelivererAsProcess => false;

    /// <summary>Redis with AOF (restart keeps data).</summary>
    protected virtual bool AppendOnly => false;

    /// <summary>Redis as production runs it: AOF with <c>appendfsync always</c> (restart loses no acknowledged write).</summary>
    protected virtual bool DurableRedis => false;

    /// <summary>Extra ControlPlane settings, as <c>--Key=value</c> pairs.</summary>
    protected virtual IEnumerable<string> ControlPlaneSettings => [];

    /// <summary>The ControlPlane's gRPC address (for gatewayctl).</summary>
    public string ControlPlaneAddress => _controlPlane!.Address;

    /// <summary>Extra Deliverer settings, as <c>--Key=value</c> pairs.</summary>
    protected virtual IEnumerable<string> DelivererSettings => [];

    public virtual async Task InitializeAsync()
    {
        Redis = DurableRedis ? await RedisServer.StartDurableAsync() : await RedisServer.StartAsync(AppendOnly);
        RedisClient = await Redis.ConnectAsync();
        Dns = DnsTestServer.Start();
        OutboundPort = FreePort.Get(IPAddress.Parse("127.0.0.1"));
        _controlPlane = await ControlPlaneHost.StartAsync(Redis.ConnectionString, ["--Gateway:Queue:HostName", "gateway.test", .. ControlPlaneSettings]);
        Channel = _controlPlane.Channel;
        var op = new TenantService.TenantServiceClient(WithKey(OperatorKey));
        CompanyId = "t-" + Guid.NewGuid().ToString("N")[..10];
        await op.CreateTenantAsync(new CreateTenantRequest { CompanyId = CompanyId });
        var key = await op.CreateApiKeyAsync(new CreateApiKeyRequest { CompanyId = CompanyId, Description = "tests" });
        Domains = new DomainService.DomainServiceClient(WithKey(key.Key));
        Queue = new QueueService.QueueServiceClient(WithKey(key.Key));
        Log = new MessageLogService.MessageLogServiceClient(WithKey(key.Key));
        Store = _controlPlane.Services.GetRequiredService<MessageQueue>();
        await StartDelivererAsync();
    }

    public virtual async Task DisposeAsync()
    {
        await StopDelivererAsync(kill: true);
        if (_controlPlane is not null)
        {
            await _controlPlane.DisposeAsync();
        }

        RedisClient?.Dispose();
        if (Dns is not null)
        {
            await Dns.DisposeAsync();
        }

        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }
    }

    public string[] DelivererArgs(int port) =>
    [
        $"--Gateway:Redis={Redis.ConnectionString}",
        $"--Gateway:GatewayDomain={GatewayDomain}",
        $"--Gateway:Dns:Servers:0={Dns.Address}",
        "--Gateway:Dns:UseCache=false",
        "--Gateway:Dns:Timeout=00:00:02",
        "--Gateway:SnapshotReconcileInterval=00:00:00.200",
        $"--Gateway:Deliverer:Listen=127.0.0.1:{port}",
        "--Gateway:Deliverer:HttpUrl=http://127.0.0.1:0",
        "--Gateway:Deliverer:QueueSampleInterval=00:00:00.200",
        $"--Gateway:Deliverer:OutboundPort={OutboundPort}",
        "--Gateway:Deliverer:ConnectTimeout=00:00:03",
        "--Gateway:Deliverer:CommandTimeout=00:00:10",
        "--Gateway:Deliverer:PollInterval=00:00:00.200",
        "--Gateway:Queue:HostName=gateway.test",
        "--Logging:LogLevel:Default=Warning",
        // No scanning engines here; ProtectionTests run rspamd and clamd (docs/protection.md).
        "--Gateway:Protection:Mode=Off",
        .. DelivererSettings,
    ];

    public async Task StartDelivererAsync()
    {
        if (DelivererAsProcess)
        {
            var port = Intake?.Port ?? FreePort.Get(IPAddress.Loopback);
            var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            psi.ArgumentList.Add(DelivererDll());
            foreach (var a in DelivererArgs(port))
            {
                psi.ArgumentList.Add(a);
            }

            _process = Process.Start(psi) ?? throw new InvalidOperationException("could not start the Deliverer");
            _process.OutputDataReceived += (_, _) => { };
            _process.ErrorDataReceived += (_, _) => { };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
            Intake = new IPEndPoint(IPAddress.Loopback, port);
            await Eventually.WaitAsync(async () =>
            {
                try
                {
                    using var tcp = new System.Net.Sockets.TcpClient();
                    await tcp.ConnectAsync(Intake);
                    return true;
                }
                catch (System.Net.Sockets.SocketException)
                {
                    return _process.HasExited ? throw new InvalidOperationException("the Deliverer process exited") : false;
                }
            }, TimeSpan.FromSeconds(30), "the Deliverer process to listen");
            return;
        }

        _deliverer = DelivererApp.Build(DelivererArgs(0));
        await _deliverer.StartAsync();
        Intake = DelivererApp.IntakeEndPoint(_deliverer);
        DelivererHttp = DelivererApp.HttpAddress(_deliverer);
    }

    /// <summary>Stops the Deliverer: SIGKILL for the process (as a crash), or a host stop in-process.</summary>
    public async Task StopDelivererAsync(bool kill)
    {
        if (_process is { } p)
        {
            if (!p.HasExited)
            {
                p.Kill(entireProcessTree: true);
                await p.WaitForExitAsync();
            }

            p.Dispose();
            _process = null;
        }

        if (_deliverer is { } d)
        {
            await d.StopAsync();
            await d.DisposeAsync();
            _deliverer = null;
        }
    }

    public int? DelivererProcessId => _process?.Id;

    public CallInvoker WithKey(string key) =>
        Channel.Intercept(metadata =>
        {
            metadata.Add("authorization", "Bearer " + key);
            return metadata;
        });

    public static string NewDomainName(string label = "d") => $"{label}{Guid.NewGuid().ToString("N")[..10]}.example.com";

    /// <summary>Creates an inbound domain with the given rows (recipient, host, port, preference).</summary>
    public async Task<string> CreateInboundDomainAsync(string name, params (string Recipient, string Host, int Port, int Preference)[] rows)
    {
        var domain = new Domain { Name = name, InboundEnabled = true };
        domain.InboundServers.AddRange(rows.Select(r => new Gateway.Api.V1.InboundServer { Recipient = r.Recipient.Replace("{d}", name, StringComparison.Ordinal), Host = r.Host, Port = r.Port, Preference = r.Preference }));
        var created = await Domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        await WaitForSnapshotAsync(name, created.Etag);
        return created.Name;
    }

    /// <summary>
    /// Creates a verified domain with outbound relay on, optionally inbound too. Its sources are a documentation address and
    /// 127.0.0.1: the tests' SMTP clients talk to the intake directly from loopback, standing in for the customer's server.
    /// </summary>
    public async Task<string> CreateOutboundDomainAsync(string name, params (string Recipient, string Host, int Port, int Preference)[] inboundRows)
    {
        var domain = new Domain { Name = name, InboundEnabled = inboundRows.Length > 0, Outbound = new Gateway.Api.V1.OutboundSettings { Enabled = true, CustomIps = { "192.0.2.55", "127.0.0.1" } } };
        domain.InboundServers.AddRange(inboundRows.Select(r => new Gateway.Api.V1.InboundServer { Recipient = r.Recipient.Replace("{d}", name, StringComparison.Ordinal), Host = r.Host, Port = r.Port, Preference = r.Preference }));
        await Domains.CreateDomainAsync(new CreateDomainRequest { Domain = domain });
        // Verification has its own issue; the domain layer's gateway-side change marks it verified.
        var manager = ControlPlaneServices.GetRequiredService<DomainManager>();
        var verified = await manager.ChangeAsync(name, d => d with { Verification = d.Verification with { Verified = true, Method = Gateway.Core.Domains.VerificationMethod.Txt, VerifyTime = DateTimeOffset.UtcNow } },
            ConfigOps.Verify);
        await WaitForSnapshotAsync(name, verified.Etag);
        return name;
    }

    /// <summary>Waits until the Deliverer applied the domain's revision (requirements §3.14: within 1 second).</summary>
    public async Task WaitForSnapshotAsync(string name, string etag)
    {
        if (_deliverer is null)
        {
            await Task.Delay(1200);
            return;
        }

        var snapshot = _deliverer.Services.GetRequiredService<Gateway.Core.Snapshot.ConfigSnapshot>();
        await Eventually.WaitAsync(() => snapshot.Find(name)?.Config.Etag == etag, TimeSpan.FromSeconds(5), $"snapshot of {name} at {etag}");
    }

    /// <summary>Sends a message through the intake with MailKit (a real SMTP client); returns the 250 reply text.</summary>
    public async Task<string> SendAsync(string from, IReadOnlyList<string> to, string subject = "test", string? body = null, CancellationToken cancellationToken = default)
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(from.Length == 0 ? "nobody@invalid.test" : from));
        foreach (var t in to)
        {
            message.To.Add(MailboxAddress.Parse(t));
        }

        message.Subject = subject;
        message.MessageId = $"{Guid.NewGuid():N}@client.test";
        message.Body = new TextPart("plain") { Text = body ?? "Hello.\r\n" };
        using var client = new SmtpClient();
        await client.ConnectAsync(Intake.Address.ToString(), Intake.Port, MailKit.Security.SecureSocketOptions.None, cancellationToken);
        var reply = await client.SendAsync(message, new MailboxAddress(string.Empty, from), to.Select(t => new MailboxAddress(string.Empty, t)), cancellationToken);
        await client.DisconnectAsync(true, cancellationToken);
        return reply;
    }

    /// <summary>Sends <paramref name="count"/> messages over one intake connection.</summary>
    public async Task SendManyAsync(string from, string to, int count, CancellationToken cancellationToken = default)
    {
        using var client = new SmtpClient();
        await client.ConnectAsync(Intake.Address.ToString(), Intake.Port, MailKit.Security.SecureSocketOptions.None, cancellationToken);
        for (var i = 0; i < count; i++)
        {
            var message = new MimeMessage();
            message.From.Add(MailboxAddress.Parse(from));
            message.To.Add(MailboxAddress.Parse(to));
            message.Subject = $"message {i}";
            message.MessageId = $"{Guid.NewGuid():N}@client.test";
            message.Body = new TextPart("plain") { Text = $"Message number {i}.\r\n" };
            await client.SendAsync(message, cancellationToken);
        }

        await client.DisconnectAsync(true, cancellationToken);
    }

    /// <summary>The domain's message log entries (oldest first) as field dictionaries.</summary>
    public async Task<IReadOnlyList<IReadOnlyDictionary<string, string>>> LogAsync(string domain)
    {
        var entries = await RedisClient.GetDatabase().StreamRangeAsync(RedisKeys.DomainLog(domain));
        return entries.Select(e => (IReadOnlyDictionary<string, string>)e.Values.ToDictionary(v => v.Name.ToString(), v => v.Value.ToString())).ToList();
    }

    /// <summary>Waits until the log has an entry matching <paramref name="match"/>.</summary>
    public async Task<IReadOnlyDictionary<string, string>> WaitForLogAsync(string domain, Func<IReadOnlyDictionary<string, string>, bool> match, string what, TimeSpan? timeout = null)
    {
        IReadOnlyDictionary<string, string>? found = null;
        await Eventually.WaitAsync(async () => (found = (await LogAsync(domain)).FirstOrDefault(match)) is not null, timeout ?? TimeSpan.FromSeconds(10), what);
        return found!;
    }

    private static string DelivererDll()
    {
        // The Deliverer's own build output next to this test's (same configuration), so it runs with its own runtimeconfig.
        var baseDir = AppContext.BaseDirectory;
        var dir = new DirectoryInfo(baseDir);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Gateway.sln")))
        {
            dir = dir.Parent;
        }

        var configuration = baseDir.Contains($"{Path.DirectorySeparatorChar}Release{Path.DirectorySeparatorChar}", StringComparison.Ordinal) ? "Release" : "Debug";
        var dll = Path.Combine(dir?.FullName ?? throw new InvalidOperationException("repository root not found"), "src", "Deliverer", "bin", configuration, "net10.0", "Gateway.Deliverer.dll");
        return File.Exists(dll) ? dll : throw new FileNotFoundException("build the Deliverer first", dll);
    }
}
