using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace PolicyBench;

/// <summary>
/// Policy delegation load: N persistent connections, each sending one request at a time (as Postfix's
/// smtpd does) and checking every reply. Requests are Postfix 3.7 RCPT requests (the attribute set and
/// order captured from Postfix 3.7.11), half for managed recipient domains and half for unmanaged ones,
/// spread over the whole managed domain list. Latency is measured per request from write to full reply.
/// </summary>
internal static class LoadGenerator
{
    private const int Pool = 4096;

    public static async Task<int> RunAsync(Options o)
    {
        var target = IPEndPoint.Parse(o["target"]);
        var connections = o.Int("connections");
        var warmup = TimeSpan.FromSeconds(o.Int("warmup", 3));
        var duration = TimeSpan.FromSeconds(o.Int("duration", 10));
        var domains = o.Int("domains");
        var server = o["server"];
        var all = o.Optional("all");
        var accept = all ?? o.Get("accept", "OK");
        var reject = all ?? o.Get("reject", "REJECT NO-DOMAIN");
        var (requests, expected) = BuildRequests(domains, accept, reject);

        var sockets = new List<Socket>();
        for (var i = 0; i < connections; i++)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await s.ConnectAsync(target);
            sockets.Add(s);
        }

        var state = new RunState();
        var workers = sockets.Select((s, i) => Task.Run(() => WorkAsync(s, requests, expected, i * 997, state))).ToArray();
        await Task.Delay(warmup);
        var started = Stopwatch.GetTimestamp();
        state.Recording = true;
        await Task.Delay(duration);
        state.Recording = false;
        var elapsed = Stopwatch.GetElapsedTime(started);
        state.Stop = true;
        // Unblock workers still waiting for a slow server (postfwd with many domains).
        await Task.Delay(TimeSpan.FromMilliseconds(200));
        foreach (var s in sockets)
        {
            s.Dispose();
        }

        var results = await Task.WhenAll(workers);
        var latencies = results.SelectMany(r => r.Latencies).ToArray();
        Array.Sort(latencies);
        var errors = results.Sum(r => r.Errors);
        var result = new LoadResult(
            server, domains, connections, latencies.Length, Math.Round(elapsed.TotalSeconds, 3),
            Math.Round(latencies.Length / elapsed.TotalSeconds, 1),
            Percentile(latencies, 0.50), Percentile(latencies, 0.99), Percentile(latencies, 0.999),
            latencies.Length == 0 ? 0 : latencies[^1], errors, results.Select(r => r.FirstError).FirstOrDefault(e => e is not null),
            Environment.ProcessorCount, DateTimeOffset.UtcNow);
        var json = JsonSerializer.Serialize(result, LoadResult.Json);
        Console.WriteLine(json);
        if (o.Optional("out") is { } file)
        {
            await File.AppendAllTextAsync(file, json + "\n");
        }

        return errors == 0 ? 0 : 1;
    }

    /// <summary>Managed: <c>b&lt;i&gt;.example.net</c> (what <c>seed</c> creates); unmanaged: names nobody manages.</summary>
    public static (byte[][] Requests, byte[][] Expected) BuildRequests(int domains, string accept, string reject)
    {
        var random = new Random(20261128);
        var requests = new byte[Pool][];
        var expected = new byte[Pool][];
        for (var i = 0; i < Pool; i++)
        {
            var managed = i % 2 == 0;
            var recipient = managed
                ? $"user{i}@b{random.Next(domains)}.example.net"
                : $"user{i}@nobody{random.Next(1_000_000)}.example.org";
            var client = $"198.51.100.{i % 250 + 1}";
            var text = "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n" +
                       $"client_address={client}\nclient_name=unknown\nclient_port={40000 + i}\nreverse_client_name=unknown\n" +
                       "server_address=127.0.0.1\nserver_port=25\nhelo_name=mx.sender.example\n" +
                       $"sender=sender{i}@sender.example\nrecipient={recipient}\nrecipient_count=0\nqueue_id=\n" +
                       $"instance={i:x4}.6b0a8778.5b383.0\nsize=0\netrn_domain=\nstress=\nsasl_method=\nsasl_username=\nsasl_sender=\n" +
                       "ccert_subject=\nccert_issuer=\nccert_fingerprint=\nccert_pubkey_fingerprint=\nencryption_protocol=\n" +
                       "encryption_cipher=\nencryption_keysize=0\npolicy_context=\n\n";
            requests[i] = Encoding.ASCII.GetBytes(text);
            expected[i] = Encoding.ASCII.GetBytes($"action={(managed ? accept : reject)}\n\n");
        }

        return (requests, expected);
    }

    private static async Task<WorkerResult> WorkAsync(Socket socket, byte[][] requests, byte[][] expected, int offset, RunState state)
    {
        var latencies = new List<int>(1 << 16);
        var buffer = new byte[4096];
        long errors = 0;
        string? firstError = null;
        var k = offset;
        try
        {
            while (!state.Stop)
            {
                var index = k++ & (Pool - 1);
                var start = Stopwatch.GetTimestamp();
                await socket.SendAsync(requests[index], SocketFlags.None);
                var n = 0;
                while (n < 2 || buffer[n - 1] != (byte)'\n' || buffer[n - 2] != (byte)'\n')
                {
                    var read = await socket.ReceiveAsync(buffer.AsMemory(n), SocketFlags.None);
                    if (read == 0)
                    {
                        throw new IOException("server closed the connection");
                    }

                    n += read;
                }

                var micros = (int)(Stopwatch.GetElapsedTime(start).Ticks / 10);
                if (!buffer.AsSpan(0, n).SequenceEqual(expected[index]))
                {
                    errors++;
                    firstError ??= $"expected '{Encoding.ASCII.GetString(expected[index]).Trim()}', got '{Encoding.ASCII.GetString(buffer, 0, n).Trim()}'";
                }

                if (state.Recording)
                {
                    latencies.Add(micros);
                }
            }
        }
        catch (Exception e) when (state.Stop && e is SocketException or ObjectDisposedException or IOException)
        {
            // The run ended while this request was in flight.
        }

        return new WorkerResult(latencies, errors, firstError);
    }

    private static int Percentile(int[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];

    private sealed class RunState
    {
        public volatile bool Recording;
        public volatile bool Stop;
    }

    private sealed record WorkerResult(List<int> Latencies, long Errors, string? FirstError);
}

/// <summary>One measured run (one JSON line).</summary>
internal sealed record LoadResult(
    string Server, int Domains, int Connections, long Requests, double Seconds, double Rps,
    int P50Us, int P99Us, int P999Us, int MaxUs, long Errors, string? FirstError, int Cpus, DateTimeOffset Time)
{
    public static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
