using System.Diagnostics.Metrics;
using Gateway.Core.Delivery;
using Gateway.Core.Dns;
using Gateway.Core.Domains;
using Gateway.Core.Mail;
using Gateway.Core.Relay;
using Gateway.Core.Snapshot;
using Gateway.Core.Storage;
using Gateway.Core.Verification;
using Gateway.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Gateway.Core.Tests.Verification;

/// <summary>
/// Recipient verification with real parts: a redis-server, a DNS server, SMTP sinks on 127.0.0.x that accept some
/// recipients and refuse others at RCPT, or never greet. Through Postfix: Deliverer.Tests PostfixRecipientVerificationTests.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class RecipientVerifierTests : IAsyncLifetime
{
    private RedisServer _redis = null!;
    private ConnectionMultiplexer _mux = null!;
    private DnsTestServer _dns = null!;
    private readonly List<IDisposable> _disposables = [];

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartAsync();
        _mux = await _redis.ConnectAsync();
        _dns = DnsTestServer.Start();
    }

    public async Task DisposeAsync()
    {
        foreach (var d in _disposables)
        {
            d.Dispose();
        }

        await _mux.DisposeAsync();
        await _redis.DisposeAsync();
        await _dns.DisposeAsync();
    }

    private static VerificationOptions Fast() => new()
    {
        ProbeWait = TimeSpan.FromSeconds(3), ConnectTimeout = TimeSpan.FromSeconds(2), CommandTimeout = TimeSpan.FromSeconds(2),
        ProbeDeadline = TimeSpan.FromSeconds(8),
    };

    private RecipientVerifier Verifier(VerificationOptions? options = null, bool allowLoopback = true, TimeProvider? clock = null)
    {
        options ??= Fast();
        var dns = new MailDns(DnsSetup.CreateClient(new DnsOptions { Servers = [_dns.Address], UseCache = false, Timeout = TimeSpan.FromSeconds(2) }));
        var callout = new SmtpCallout(dns, options, new GatewayOptions { AllowLoopbackDestinations = allowLoopback }, GatewaySelf.None, "gateway.test");
        var meters = new Meters();
        var verifier = new RecipientVerifier(new VerificationCache(_mux), callout, options, clock ?? TimeProvider.System, NullLogger<RecipientVerifier>.Instance, meters);
        _disposables.Add(verifier);
        _disposables.Add(meters);
        return verifier;
    }

    private static DomainEntry Domain(string host, int port, bool enabled = true) =>
        VerificationRulesTests.Domain(enabled, $"v{Guid.NewGuid().ToString("N")[..8]}.example", host, port);

    private static Task<RelayDecision> AskAsync(RecipientVerifier verifier, DomainEntry domain, string local) =>
        verifier.ApplyAsync(new RelayRequest { Stage = SmtpStage.Rcpt, Sender = "someone@remote.test", Recipient = $"{local}@{domain.Name}", ClientAddress = "192.0.2.1" },
            VerificationRulesTests.Accept(domain), "test", CancellationToken.None).AsTask();

    /// <summary>A server that knows only ann@; with <paramref name="certificate"/> it offers STARTTLS.</summary>
    private static SmtpSink AnnOnly(string address, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate = null)
    {
        var sink = SmtpSink.Start(address);
        sink.Behavior = SinkBehavior.Accept with
        {
            TlsCertificate = certificate,
            RcptReply = r => r.StartsWith("ann@", StringComparison.Ordinal) ? "250 2.1.5 Ok" : $"550 5.1.1 <{r}>: Recipient address rejected: User unknown in local recipient table",
        };
        return sink;
    }

    [Fact]
    public async Task ApplyAsync_KnownAndUnknown_AcceptedAnd550_SecondAskFromCache_RcptRsetQuitNeverData()
    {
        await using var sink = AnnOnly("127.0.0.5");
        var verifier = Verifier();
        var domain = Domain(sink.Host, sink.Port);

        var ann = await AskAsync(verifier, domain, "ann");
        var bob = await AskAsync(verifier, domain, "bob");
        Assert.Equal(RelayOutcome.Accept, ann.Outcome);
        Assert.Equal(RelayOutcome.Reject, bob.Outcome);
        Assert.Equal($"550 5.1.1 <bob@{domain.Name}>: Recipient address rejected: undeliverable address: 550 5.1.1 <bob@{domain.Name}>: Recipient address rejected: User unknown in local recipient table",
            bob.Refusal!.Value.ForRecipient($"bob@{domain.Name}"));

        // Asked again (and with another case): the cache answers, the server is not asked.
        Assert.Equal(RelayOutcome.Accept, (await AskAsync(verifier, domain, "ANN")).Outcome);
        Assert.Equal(RelayOutcome.Reject, (await AskAsync(verifier, domain, "bob")).Outcome);
        Assert.Equal(2, sink.Connections);
        var commands = sink.Commands;
        Assert.Equal(2, commands.Count(c => c.Verb == "RCPT"));
        Assert.Equal(2, commands.Count(c => c.Verb == "RSET"));
        Assert.Equal(2, commands.Count(c => c.Verb == "QUIT"));
        Assert.All(commands.Where(c => c.Verb == "MAIL"), c => Assert.Equal("MAIL FROM:<>", c.Line));
        Assert.DoesNotContain(commands, c => c.Verb is "DATA" or "BDAT");
        Assert.Equal(["EHLO", "MAIL", "RCPT", "RSET", "QUIT"], commands.Where(c => c.Connection == 1).Select(c => c.Verb));
        Assert.Empty(sink.Messages);

        // The answers live in the domain's own slot: the keys a domain purge scans for.
        var keys = _mux.GetServer(_mux.GetEndPoints()[0]).Keys(pattern: RedisKeys.DomainKeyPattern(domain.Name).ToString()).Select(k => k.ToString()).ToList();
        Assert.Contains(RedisKeys.DomainVerifyCache(domain.Name).ToString(), keys);
        Assert.Contains(RedisKeys.DomainVerifyExpiries(domain.Name).ToString(), keys);
        Assert.Equal(2, await new VerificationCache(_mux).CountAsync(domain.Name));
    }

    [Fact]
    public async Task ApplyAsync_ServerNeverGreets_450Pending_ThenUnknownCached_NotProbedAgain()
    {
        await using var sink = SmtpSink.Start("127.0.0.5");
        sink.Behavior = SinkBehavior.Accept with { StallAt = SinkStage.Greeting };
        var options = Fast();
        options.ProbeWait = TimeSpan.FromSeconds(1);
        var verifier = Verifier(options);
        var domain = Domain(sink.Host, sink.Port);

        var first = await AskAsync(verifier, domain, "ann");
        Assert.Equal(RelayOutcome.TryLater, first.Outcome);
        Assert.Equal($"450 4.1.1 <ann@{domain.Name}>: Recipient address rejected: unverified address: {VerificationRules.Pending}",
            first.Refusal!.Value.ForRecipient($"ann@{domain.Name}"));

        // While the probe runs, more questions share it; once it times out, its "unknown" is cached briefly.
        Assert.Equal(RelayOutcome.TryLater, (await AskAsync(verifier, domain, "ann")).Outcome);
        await Eventually.WaitAsync(() => verifier.Running == 0, TimeSpan.FromSeconds(15), "the probe ended");
        var later = await AskAsync(verifier, domain, "ann");
        Assert.Equal(RelayOutcome.TryLater, later.Outcome);
        Assert.Contains("no reply to the greeting", later.ReplyText, StringComparison.Ordinal);
        Assert.Equal(1, sink.Connections);
        Assert.DoesNotContain(sink.Commands, c => c.Verb is "MAIL" or "RCPT" or "DATA");
    }

    /// <summary>A clock whose "now" stays in one minute, so the per-minute probe counter cannot roll over mid-test.</summary>
    private sealed class OneMinute : TimeProvider
    {
        private readonly DateTimeOffset _now = DateTimeOffset.FromUnixTimeSeconds((DateTimeOffset.UtcNow.ToUnixTimeSeconds() / 60 * 60) + 5);

        public override DateTimeOffset GetUtcNow() => _now;
    }

    [Fact]
    public async Task ApplyAsync_PositiveOlderThanRefresh_AnsweredFromCache_RenewedInBackground_UnknownKept_RemovedMailboxThen550()
    {
        await using var sink = AnnOnly("127.0.0.5");
        var clock = new ManualClock(DateTimeOffset.FromUnixTimeMilliseconds(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())); // the cache keeps ms
        var options = Fast();
        Assert.Equal(TimeSpan.FromHours(12), options.PositiveRefresh); // the default
        var verifier = Verifier(options, clock: clock);
        var domain = Domain(sink.Host, sink.Port);
        var cache = new VerificationCache(_mux);

        Assert.Equal(RelayOutcome.Accept, (await AskAsync(verifier, domain, "ann")).Outcome);
        Assert.Equal(1, sink.Connections);

        // An hour later: the cache answers, nothing is renewed.
        clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(RelayOutcome.Accept, (await AskAsync(verifier, domain, "ann")).Outcome);
        await Task.Delay(300);
        Assert.Equal(1, sink.Connections);

        // 13 hours after the probe: still answered from the cache at once, and a probe renews it in the background.
        clock.Advance(TimeSpan.FromHours(12));
        Assert.Equal(RelayOutcome.Accept, (await AskAsync(verifier, domain, "ann")).Outcome);
        await Eventually.WaitAsync(() => sink.Connections == 2 && verifier.Running == 0, TimeSpan.FromSeconds(10), "the background refresh");
        var renewed = await cache.GetAsync(domain.Name, $"ann@{domain.Name}", clock.GetUtcNow());
        Assert.Equal(clock.GetUtcNow() + RecipientVerificationSettings.DefaultPositiveTtl, renewed!.Expires);

        // A refresh that learns nothing (451) keeps the answer (optimistic caching) and is not tried again at once.
        sink.Behavior = SinkBehavior.Accept with { RcptReply = _ => "451 4.3.0 try later" };
        clock.Advance(TimeSpan.FromHours(13));
        Assert.Equal(RelayOutcome.Accept, (await AskAsync(verifier, domain, "ann")).Outcome);
        await Eventually.WaitAsync(() => sink.Connections == 3 && verifier.Running == 0, TimeSpan.FromSeconds(10), "the refresh that learned nothing");
        Assert.Equal(RelayOutcome.Accept, (await AskAsync(verifier, domain, "ann")).Outcome);
        await Task.Delay(300);
        Assert.Equal(3, sink.Connections);

        // The mailbox is removed at the customer's server: the next refresh learns it, and the RCPT after it gets 550.
        sink.Behavior = SinkBehavior.Accept with { RcptReply = r => $"550 5.1.1 <{r}>: Recipient address rejected: User unknown" };
        clock.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(RelayOutcome.Accept, (await AskAsync(verifier, domain, "ann")).Outcome);
        await Eventually.WaitAsync(() => sink.Connections == 4 && verifier.Running == 0, TimeSpan.FromSeconds(10), "the refresh that finds the mailbox gone");
        Assert.Equal(RelayOutcome.Reject, (await AskAsync(verifier, domain, "ann")).Outcome);
        Assert.Equal(4, sink.Connections);
        Assert.DoesNotContain(sink.Commands, c => c.Verb is "DATA" or "BDAT");
    }

    [Fact]
    public async Task ApplyAsync_ServerOffersStartTls_ProbeRunsInsideTls_AcceptedAnd550()
    {
        using var certificate = TestCertificates.SelfSigned("mx.customer.test");
        await using var sink = AnnOnly("127.0.0.6", certificate);
        var verifier = Verifier();
        var domain = Domain(sink.Host, sink.Port);

        Assert.Equal(RelayOutcome.Accept, (await AskAsync(verifier, domain, "ann")).Outcome);
        Assert.Equal(RelayOutcome.Reject, (await AskAsync(verifier, domain, "bob")).Outcome);

        // Each probe: EHLO in the clear, STARTTLS, then the session starts over inside TLS (RFC 3207 §4.2) with the
        // self-signed certificate taken (opportunistic, as delivery takes it), and MAIL/RCPT only inside it.
        Assert.Equal(2, sink.Connections);
        Assert.Equal(0, sink.TlsFailures);
        foreach (var connection in sink.Commands.Select(c => c.Connection).Distinct())
        {
            Assert.Equal(["EHLO", "STAR", "EHLO", "MAIL", "RCPT", "RSET", "QUIT"], sink.Commands.Where(c => c.Connection == connection).Select(c => c.Verb));
        }
    }

    [Fact]
    public async Task ApplyAsync_StartTlsHandshakeBroken_Unknown450_Never550()
    {
        // A server that offers STARTTLS, says 220 to it, then answers the TLS ClientHello with plain text and hangs up.
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Parse("127.0.0.7"), 0);
        listener.Start();
        var port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        using var stop = new CancellationTokenSource();
        var connections = 0;
        var server = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var client = await listener.AcceptTcpClientAsync(stop.Token);
                Interlocked.Increment(ref connections);
                var stream = client.GetStream();
                var reader = new StreamReader(stream, System.Text.Encoding.ASCII);
                async Task Say(string line) => await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(line + "\r\n"), stop.Token);
                await Say("220 broken.test ESMTP");
                await reader.ReadLineAsync(stop.Token); // EHLO
                await Say("250-broken.test\r\n250-STARTTLS\r\n250 8BITMIME");
                await reader.ReadLineAsync(stop.Token); // STARTTLS
                await Say("220 2.0.0 Ready to start TLS");
                _ = await stream.ReadAsync(new byte[512], stop.Token); // the ClientHello (some of it)
                await Say("this is not TLS at all");
            }
        });

        var verifier = Verifier();
        var domain = Domain("127.0.0.7", port);
        var answer = await AskAsync(verifier, domain, "ann");

        Assert.Equal(RelayOutcome.TryLater, answer.Outcome);
        Assert.StartsWith($"450 4.1.1 <ann@{domain.Name}>: Recipient address rejected: unverified address: ", answer.Refusal!.Value.ForRecipient($"ann@{domain.Name}"),
            StringComparison.Ordinal);
        var cached = await new VerificationCache(_mux).GetAsync(domain.Name, $"ann@{domain.Name}", DateTimeOffset.UtcNow);
        Assert.Equal(VerifyStatus.Unknown, cached!.Status); // cached briefly as unknown, never as undeliverable
        Assert.Equal(1, Volatile.Read(ref connections));
        await stop.CancelAsync();
        listener.Stop();
        await Assert.ThrowsAnyAsync<Exception>(() => server);
    }

    [Fact]
    public async Task ApplyAsync_RowDemandsVerifiedTls_SelfSignedCertificate_Unknown450_NoRcpt()
    {
        using var certificate = TestCertificates.SelfSigned("mx.customer.test");
        await using var sink = AnnOnly("127.0.0.8", certificate);
        var verifier = Verifier();
        var plain = Domain(sink.Host, sink.Port);
        var config = plain.Config with
        {
            Settings = plain.Config.Settings with
            {
                InboundServers = [.. plain.Config.Settings.InboundServers.Select(r => r with { Tls = TlsMode.Verify, TlsName = "mx.customer.test" })],
            },
        };
        var domain = new DomainEntry(config);

        var answer = await AskAsync(verifier, domain, "ann");

        Assert.Equal(RelayOutcome.TryLater, answer.Outcome);
        // The probe refused the certificate no one vouches for, inside the handshake: nothing was asked.
        Assert.Contains("remote certificate was rejected", answer.ReplyText, StringComparison.Ordinal);
        Assert.Equal(["EHLO", "STAR"], sink.Commands.Select(c => c.Verb));
        Assert.DoesNotContain(sink.Commands, c => c.Verb is "MAIL" or "RCPT");
    }

    [Fact]
    public async Task ApplyAsync_DictionaryAttack_AtMostRateProbes_Rest450_CacheBoundedPositiveKept()
    {
        await using var sink = AnnOnly("127.0.0.5");
        var options = Fast();
        options.MaxProbesPerDomainPerMinute = 5;
        options.MaxEntriesPerDomain = 3;
        var verifier = Verifier(options, clock: new OneMinute());
        var domain = Domain(sink.Host, sink.Port);

        Assert.Equal(RelayOutcome.Accept, (await AskAsync(verifier, domain, "ann")).Outcome);
        var answers = new List<RelayDecision>();
        for (var i = 0; i < 20; i++)
        {
            answers.Add(await AskAsync(verifier, domain, "random" + i));
        }

        Assert.Equal(4, answers.Count(a => a.Outcome == RelayOutcome.Reject));
        Assert.Equal(16, answers.Count(a => a.Outcome == RelayOutcome.TryLater && a.ReplyText!.EndsWith(VerificationRules.RateLimited, StringComparison.Ordinal)));
        Assert.DoesNotContain(answers, a => a.Outcome == RelayOutcome.Accept);
        Assert.Equal(5, sink.Connections);

        // Bounded: at most 3 answers kept; the refused ones (3 h) made room for each other, the accepted one (7 d) stayed.
        Assert.True(await new VerificationCache(_mux).CountAsync(domain.Name) <= 3);
        Assert.Equal(RelayOutcome.Accept, (await AskAsync(verifier, domain, "ann")).Outcome);
        Assert.Equal(5, sink.Connections);
    }

    [Fact]
    public async Task ApplyAsync_RedisDown_450_NoProbe()
    {
        await using var sink = AnnOnly("127.0.0.5");
        var verifier = Verifier();
        var domain = Domain(sink.Host, sink.Port);
        await _redis.StopAsync();

        var d = await AskAsync(verifier, domain, "ann");
        Assert.Equal(RelayOutcome.TryLater, d.Outcome);
        Assert.EndsWith(VerificationRules.Unavailable, d.ReplyText, StringComparison.Ordinal);
        Assert.Equal(0, sink.Connections);
    }

    [Fact]
    public async Task ApplyAsync_DestinationDeliveryWouldRefuse_NeverConnected_450()
    {
        await using var sink = AnnOnly("127.0.0.5");
        var verifier = Verifier(allowLoopback: false);
        var domain = Domain(sink.Host, sink.Port);

        var d = await AskAsync(verifier, domain, "ann");
        Assert.Equal(RelayOutcome.TryLater, d.Outcome);
        Assert.Contains("loopback", d.ReplyText, StringComparison.Ordinal);
        Assert.Equal(0, sink.Connections);
    }

    [Fact]
    public async Task ApplyAsync_RouteHostByName_ResolvedThroughDns_SameServersAsDelivery()
    {
        await using var sink = AnnOnly("127.0.0.6");
        _dns.AddA("mx.customer.test", "127.0.0.6");
        var verifier = Verifier();
        var domain = Domain("mx.customer.test", sink.Port);

        Assert.Equal(RelayOutcome.Accept, (await AskAsync(verifier, domain, "ann")).Outcome);
        Assert.Equal(RelayOutcome.Reject, (await AskAsync(verifier, domain, "bob")).Outcome);
        Assert.Equal(2, sink.Connections);
    }

    [Fact]
    public async Task ApplyAsync_DomainWithVerificationOff_Unchanged_NoProbe()
    {
        await using var sink = AnnOnly("127.0.0.5");
        var verifier = Verifier();
        var domain = Domain(sink.Host, sink.Port, enabled: false);
        var accept = VerificationRulesTests.Accept(domain);

        var d = await verifier.ApplyAsync(new RelayRequest { Stage = SmtpStage.Rcpt, Recipient = "bob@" + domain.Name }, accept, "test", CancellationToken.None);
        Assert.Same(accept, d);
        Assert.Equal(0, sink.Connections);
    }

    private sealed class Meters : IMeterFactory
    {
        private readonly List<Meter> _meters = [];

        public Meter Create(MeterOptions options)
        {
            var m = new Meter(options);
            _meters.Add(m);
            return m;
        }

        public void Dispose() => _meters.ForEach(m => m.Dispose());
    }
}
