using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CsCheck;
using Gateway.Core;
using Gateway.Core.Domains;
using Gateway.Core.MessageLog;
using Gateway.Core.Snapshot;
using Gateway.Core.Storage;
using Gateway.ControlPlane.Application;
using Gateway.Deliverer;
using Gateway.Deliverer.Smtp;
using Gateway.Testing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Fuzz.Tests;

/// <summary>
/// The Deliverer's intake fed hostile SMTP: the pure parser (command lines, MAIL/RCPT paths, the DATA stream)
/// with every input, and the real intake over real sockets (Kestrel, Redis, delivery to a sink) with a share of
/// them as whole sessions. Nothing throws; DATA content is bounded by the size limit and reads the same in any
/// segmentation; no accepted path can smuggle protocol characters; over the socket, every message that arrives
/// anywhere was answered "queued" to its client and is for the managed domain only, and the intake still serves
/// a well-formed session afterwards.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class SmtpFuzzTests(ITestOutputHelper output)
{
    private const long MaxData = 2000;

    private static readonly string[] Vocabulary =
    [
        "EHLO c\r\n", "HELO c\r\n", "MAIL FROM:<s@remote.test>\r\n", "MAIL FROM:<>\r\n", "MAIL FROM:<s@remote.test> SMTPUTF8\r\n", "MAIL FROM:<s@remote.test> SIZE=99999999999\r\n",
        "RCPT TO:<user@managed.test>\r\n", "RCPT TO:<USER@Managed.Test>\r\n", "RCPT TO:<user@other.test>\r\n", "RCPT TO:<user@managed.test.>\r\n",
        "RCPT TO:<\"a>b\"@managed.test>\r\n", "RCPT TO:<user@other.test@managed.test>\r\n", "RCPT TO:<@x:user@other.test>\r\n", "RCPT TO:<user@[127.0.0.1]>\r\n",
        "DATA\r\n", ".\r\n", "..\r\n", "\r\n.\r\n", "RSET\r\n", "NOOP\r\n", "QUIT\r\n", "BDAT 5\r\n", "STARTTLS\r\n", "Subject: x\r\n", "\n", "\r",
        "MAIL FROM:<s@remote.test\r\n", "RCPT TO:user@managed.test\r\n", "RCPT TO:<user@managed.test> FOO=\0\r\n", "\xff\xfe\r\n",
    ];

    [Fact]
    public void SmtpParser_HostileBytes_NoCrashBoundedDataNoSmuggledPaths()
    {
        var seeds = FuzzInput.Seeds("smtp");
        long inputs = 0, paths = 0;
        FuzzInput.Bytes(seeds, Vocabulary).Select(Gen.UInt).Sample((bytes, cut) =>
        {
            Interlocked.Increment(ref inputs);
            var buffer = new ReadOnlySequence<byte>(bytes);
            while (buffer.Length > 0)
            {
                var status = SmtpParser.TryReadLine(ref buffer, SmtpParser.MaxCommandLine, out var line);
                if (status == OperationStatus.InvalidData)
                {
                    if (!SmtpParser.SkipLine(ref buffer))
                    {
                        break;
                    }

                    continue;
                }

                if (status != OperationStatus.Done)
                {
                    break;
                }

                var command = SmtpParser.ParseCommand(line.ToArray());
                if (command.Argument is { } argument && command.Verb is SmtpVerb.Mail or SmtpVerb.Rcpt &&
                    SmtpParser.TryParsePath(argument, command.Verb == SmtpVerb.Mail ? "FROM:" : "TO:", command.Verb == SmtpVerb.Mail, out var path, out _))
                {
                    Interlocked.Increment(ref paths);
                    if (path.Address.Any(c => c is '\r' or '\n' or '\0'))
                    {
                        throw new InvalidOperationException($"a path carries protocol characters: {path.Address}");
                    }
                }
            }

            // Content past the size limit is dropped (the intake answers 552), from wherever the read crossed it: then
            // only the verdict and the end of the DATA section must agree.
            var whole = ReadData([bytes]);
            var pieces = ReadData(FuzzInput.Chunks(bytes, cut));
            if (whole.TooBig && pieces.TooBig)
            {
                whole = whole with { Output = string.Empty };
                pieces = pieces with { Output = string.Empty };
            }

            if (whole != pieces)
            {
                throw new InvalidOperationException($"DATA reads differently in pieces: {whole} vs {pieces}");
            }
        }, iter: FuzzInput.Iterations, threads: 1);
        output.WriteLine($"fuzz smtp parser: {inputs} inputs, {paths} accepted paths");
        Assert.Equal(FuzzInput.Iterations, inputs);
        Assert.True(paths > 0);
    }

    /// <summary>Feeds DATA content chunk by chunk as the intake's read loop does (unconsumed bytes are presented again with the next read).</summary>
    private static (string Output, OperationStatus Status, long End, bool TooBig) ReadData(IEnumerable<byte[]> chunks)
    {
        var state = new DataState();
        var written = new ArrayBufferWriter<byte>();
        var pending = Array.Empty<byte>();
        var status = OperationStatus.NeedMoreData;
        long fed = 0;
        foreach (var chunk in chunks)
        {
            fed += chunk.Length;
            var combined = pending.Concat(chunk).ToArray();
            var buffer = new ReadOnlySequence<byte>(combined);
            status = DataReader.TryRead(ref buffer, ref state, written, MaxData);
            pending = buffer.ToArray();
            if (written.WrittenCount > MaxData)
            {
                throw new InvalidOperationException($"DATA kept {written.WrittenCount} bytes past the limit of {MaxData}");
            }

            if (status == OperationStatus.Done)
            {
                break;
            }
        }

        var text = Encoding.Latin1.GetString(written.WrittenSpan);
        var withoutCrLf = text.Replace("\r\n", string.Empty, StringComparison.Ordinal);
        if (withoutCrLf.Contains('\n', StringComparison.Ordinal) || withoutCrLf.Contains('\r', StringComparison.Ordinal))
        {
            // Requirements §11.1: only CRLF line ends are stored (bare CR and bare LF become CRLF), so nothing smuggled reaches a next hop.
            throw new InvalidOperationException("DATA stored a bare CR or LF");
        }

        return (text, status, status == OperationStatus.Done ? fed - pending.Length : -1, state.TooBig);
    }

    [Fact]
    public async Task Intake_HostileSessionsOverSockets_OnlyQueuedManagedMailArrives_StillServes()
    {
        var sessions = Math.Max(25, FuzzInput.Iterations / 100);
        await using var redis = await RedisServer.StartAsync();
        var sink = SmtpSink.Start("127.0.0.5");
        await using var _s = sink;
        using (var mux = await redis.ConnectAsync())
        {
            var options = new GatewayOptions { Redis = redis.ConnectionString, AllowLoopbackDestinations = true };
            var store = new DomainStore(mux, new ConfigChangeFeed(mux, options));
            await new TenantManager(new TenantStore(mux), store, options, TimeProvider.System).CreateAsync("fuzz", null);
            await new DomainManager(store, new DomainValidator(options), options, TimeProvider.System).CreateAsync("fuzz", PolicyFuzzTests.Inbound,
                new DomainSettings(true, [new InboundServer("*@" + PolicyFuzzTests.Inbound, sink.Host, sink.Port, 10)], OutboundSettings.Disabled));
        }

        var app = DelivererApp.Build(
        [
            $"--Gateway:Redis={redis.ConnectionString}", "--Gateway:AllowLoopbackDestinations=true", "--Gateway:Deliverer:Listen=127.0.0.1:0",
            "--Gateway:Deliverer:HttpUrl=", $"--Gateway:Deliverer:MaxMessageSize={MaxData}", "--Gateway:Deliverer:IdleTimeout=00:00:05",
            "--Gateway:Deliverer:PollInterval=00:00:00.200", "--Gateway:Queue:HostName=gateway.fuzz", "--Logging:LogLevel:Default=Error",
            "--Gateway:Protection:Mode=Off",
        ]);
        await app.StartAsync();
        try
        {
            await Eventually.WaitAsync(() => app.Services.GetRequiredService<ConfigSnapshot>().Find(PolicyFuzzTests.Inbound) is not null, TimeSpan.FromSeconds(10), "the domain loaded");
            var intake = DelivererApp.IntakeEndPoint(app);
            var seeds = FuzzInput.Seeds("smtp");
            var scripts = FuzzInput.Bytes(seeds, Vocabulary).Array[1, 4].Select(parts => parts.SelectMany(p => p).ToArray());
            long run = 0;
            var queued = new System.Collections.Concurrent.ConcurrentBag<string>();
            // Sessions run one at a time: each is a whole conversation, and CsCheck's generation stays reproducible.
            await scripts.SampleAsync(async script =>
            {
                Interlocked.Increment(ref run);
                foreach (var id in QueuedIds(await SessionAsync(intake, script)))
                {
                    queued.Add(id);
                }
            }, iter: sessions, threads: 1);

            // A well-formed session is still served.
            var transcript = await SessionAsync(intake, Encoding.ASCII.GetBytes(
                "EHLO c\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<user@managed.test>\r\nDATA\r\nSubject: still here\r\n\r\nyes\r\n.\r\nQUIT\r\n"));
            var proper = QueuedIds(transcript);
            Assert.True(proper.Count == 1, "a well-formed session after the hostile ones: " + transcript);
            queued.Add(proper[0]);

            // Every message the intake stored (its "intake" log event comes right before the 250) gets its attempt:
            // delivered, bounced or deferred. A client may miss a "queued" reply (the server closed with input
            // unread, a reset drops replies in flight), so the log is the account, and every reply seen must be in it.
            using var check = await redis.ConnectAsync();
            var stored = new HashSet<string>();
            var outcomes = new Dictionary<string, HashSet<string>>();
            await Eventually.WaitAsync(async () =>
            {
                foreach (var e in await check.GetDatabase().StreamRangeAsync(RedisKeys.DomainLog(PolicyFuzzTests.Inbound)))
                {
                    var ev = e["event"].ToString();
                    if (ev == MessageLogEvents.Intake)
                    {
                        stored.Add(e["message_id"].ToString());
                    }
                    else if (ev is MessageLogEvents.Delivered or MessageLogEvents.Bounced or MessageLogEvents.Deferred)
                    {
                        // Per recipient: one message may be delivered for one recipient and bounced for another.
                        var id = e["message_id"].ToString();
                        outcomes[id] = outcomes.TryGetValue(id, out var seen) ? seen : [];
                        outcomes[id].Add(ev);
                    }
                }

                return queued.All(stored.Contains) && stored.All(outcomes.ContainsKey);
            }, TimeSpan.FromSeconds(120), "an outcome for every stored message").ContinueWith(t => t.IsFaulted
                ? throw new TimeoutException($"replies seen but not logged: {string.Join(' ', queued.Where(q => !stored.Contains(q)))}; " +
                                             $"stored without outcome: {string.Join(' ', stored.Where(q => !outcomes.ContainsKey(q)))}", t.Exception)
                : t.Result, TaskScheduler.Default);

            // What arrives is exactly the delivered ones, all for the managed domain.
            var delivered = stored.Where(id => outcomes[id].Contains(MessageLogEvents.Delivered)).ToHashSet();
            await Eventually.WaitAsync(() => sink.Messages.Count >= delivered.Count, TimeSpan.FromSeconds(30), "the delivered messages at the sink");
            // The intake puts its Received header first; the other arrivals are the gateway's DSNs to senders of the
            // managed domain (about bounced messages), which are reports, not relayed mail.
            var intakeHeader = new System.Text.RegularExpressions.Regex(@"\AReceived: from [^\r\n]*\r\n\tby gateway\.fuzz \(gateway-deliverer\) with \S+ id (\S+?)[;\s]");
            var arrived = sink.Messages.Select(m => intakeHeader.Match(m.Text)).Where(m => m.Success).Select(m => m.Groups[1].Value).ToList();
            var unexpected = sink.Messages.Where(m => intakeHeader.Match(m.Text) is { Success: true } h && !delivered.Contains(h.Groups[1].Value))
                .Select(m => $"{intakeHeader.Match(m.Text).Groups[1].Value} stored={stored.Contains(intakeHeader.Match(m.Text).Groups[1].Value)} " +
                             $"outcomes={string.Join(',', outcomes.GetValueOrDefault(intakeHeader.Match(m.Text).Groups[1].Value) ?? [])} from=<{m.MailFrom}> to={string.Join(',', m.Recipients)}: " +
                             m.Text[..Math.Min(400, m.Text.Length)]).ToList();
            Assert.True(unexpected.Count == 0, "arrived but not delivered by the log: " + string.Join("\n", unexpected));
            Assert.Equal(delivered.Order(StringComparer.Ordinal), arrived.Order(StringComparer.Ordinal));
            Assert.All(sink.Messages.Where(m => !intakeHeader.IsMatch(m.Text)), m => Assert.Contains("multipart/report", m.Text, StringComparison.Ordinal));
            Assert.All(sink.Messages, m => Assert.All(m.Recipients, r => Assert.EndsWith("@" + PolicyFuzzTests.Inbound, r, StringComparison.OrdinalIgnoreCase)));
            Assert.Contains(proper[0], delivered);
            output.WriteLine($"fuzz smtp intake: {run} sessions over sockets; {stored.Count} messages stored ({queued.Count} replies seen by clients): " +
                             $"{delivered.Count} delivered (to some recipient), {stored.Count - delivered.Count} bounced or deferred; all for {PolicyFuzzTests.Inbound}");
            Assert.Equal(sessions, run);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    private static List<string> QueuedIds(string transcript) =>
        [.. transcript.Split('\n').Where(l => l.StartsWith("250 2.0.0 Ok: queued as ", StringComparison.Ordinal)).SelectMany(l => l.TrimEnd('\r')[24..].Split(' '))];

    /// <summary>
    /// Writes the script (and a QUIT) while reading every reply concurrently (a server that closes early must not
    /// leave the writer blocked on a full socket buffer), until the server closes. A hang fails the test.
    /// </summary>
    private static async Task<string> SessionAsync(IPEndPoint intake, byte[] script)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(intake, timeout.Token);
        var reader = Task.Run(async () =>
        {
            var received = new MemoryStream();
            var buffer = new byte[8192];
            try
            {
                while (true)
                {
                    var n = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
                    if (n == 0)
                    {
                        break;
                    }

                    received.Write(buffer, 0, n);
                }
            }
            catch (SocketException)
            {
                // Reset after the server closed with unread input: the replies so far stand.
            }

            return Encoding.UTF8.GetString(received.ToArray());
        });
        try
        {
            // The script, then an end that every state leads out of: a line end (ends an over-long line), the end of
            // DATA, QUIT. The server then closes by itself; the client does not half-close (a FIN ends the session
            // at the server before its replies are flushed, which no real MTA relies on).
            await socket.SendAsync(script, SocketFlags.None, timeout.Token);
            await socket.SendAsync("\r\n.\r\nQUIT\r\n"u8.ToArray(), SocketFlags.None, timeout.Token);
        }
        catch (SocketException)
        {
            // The server closed first (421 after too many errors, line too long, ...).
        }

        try
        {
            return await reader;
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("the intake neither answered nor closed a session within 60 s: " + Encoding.UTF8.GetString(script[..Math.Min(script.Length, 300)]));
        }
    }
}
