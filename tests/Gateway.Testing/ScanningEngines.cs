namespace Gateway.Testing;

/// <summary>
/// The scanning engines of requirements §9, every part real: a private clamd (<see cref="ClamdInstance"/>), a private
/// rspamd (<see cref="RspamdInstance"/>) with its own Redis (Bayes) and the tests' own DNS server (<see cref="Dns"/>:
/// SPF, DKIM and DMARC records the test publishes). Start once per test class or collection: rspamd's first start
/// on a machine compiles its regular expressions (~10 s).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ScanningEngines : IAsyncDisposable
{
    private readonly List<IAsyncDisposable> _parts = [];

    private ScanningEngines()
    {
    }

    public DnsTestServer Dns { get; private set; } = null!;

    public RedisServer RspamdRedis { get; private set; } = null!;

    public ClamdInstance Clamd { get; private set; } = null!;

    public RspamdInstance Rspamd { get; private set; } = null!;

    /// <summary>The Deliverer's settings to scan with these engines (pass them as a program's arguments).</summary>
    public string[] GatewaySettings =>
    [
        "--Gateway:Protection:Mode=Scan",
        $"--Gateway:Protection:RspamdUrls:0={Rspamd.NormalUrl}",
        $"--Gateway:Protection:ClamdServers:0={Clamd.Address}",
        // A stopped engine must not be skipped for long: the tests stop and start them.
        "--Gateway:Protection:ServerBackoff=00:00:00.500",
    ];

    /// <param name="configure">Changes to the rspamd instance's options (e.g. <see cref="RspamdOptions.Milter"/>).</param>
    public static async Task<ScanningEngines> StartAsync(Action<RspamdOptions>? configure = null, CancellationToken cancellationToken = default)
    {
        var engines = new ScanningEngines();
        try
        {
            engines.Dns = DnsTestServer.Start();
            engines._parts.Add(engines.Dns);
            engines.RspamdRedis = await RedisServer.StartAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            engines._parts.Add(engines.RspamdRedis);
            engines.Clamd = await ClamdInstance.StartAsync(cancellationToken).ConfigureAwait(false);
            engines._parts.Add(engines.Clamd);
            var options = new RspamdOptions { DnsServer = engines.Dns.Address, Redis = engines.RspamdRedis.ConnectionString, Clamd = engines.Clamd.Address };
            configure?.Invoke(options);
            engines.Rspamd = await RspamdInstance.StartAsync(options, cancellationToken).ConfigureAwait(false);
            engines._parts.Add(engines.Rspamd);
            return engines;
        }
        catch
        {
            await engines.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        for (var i = _parts.Count - 1; i >= 0; i--)
        {
            await _parts[i].DisposeAsync().ConfigureAwait(false);
        }
    }
}
