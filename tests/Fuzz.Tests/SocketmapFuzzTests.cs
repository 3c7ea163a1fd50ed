using System.Buffers;
using System.Text;
using CsCheck;
using Gateway.Core.Relay;
using Gateway.PolicyDaemon.Protocol;
using Xunit.Abstractions;

namespace Fuzz.Tests;

/// <summary>
/// The socketmap front end (netstrings, socketmap_table(5) requests, the two tables of requirements §5) fed hostile
/// bytes: nothing throws, an announced length over the limit is refused before its payload is buffered, a
/// request cut into segments reads as the whole does, and <c>domains</c> answers OK only for a managed domain.
/// </summary>
[Trait("Kind", "Unit")]
public sealed class SocketmapFuzzTests(ITestOutputHelper output)
{
    private const int MaxRequest = 1000;

    private static readonly string[] Vocabulary =
    [
        "20:domains managed.test,", "27:transport user@managed.test,", "11:transport *,", "0:,", "1:x,", "00:,", "99999999999:", "-1:",
        "domains ", "transport ", "managed.test", "MANAGED.TEST", ".managed.test", "user@", "@managed.test", ":", ",", " ", "\0", "1000:", "1001:",
    ];

    [Fact]
    public void NetstringAndLookups_HostileBytes_NoCrashBoundedOnlyManagedFound()
    {
        var snapshot = PolicyFuzzTests.Snapshot();
        var seeds = FuzzInput.Seeds("socketmap");
        long inputs = 0, lookups = 0, found = 0;
        FuzzInput.Bytes(seeds, Vocabulary).Select(Gen.UInt).Sample((bytes, cut) =>
        {
            Interlocked.Increment(ref inputs);
            var whole = ReadAll(new ReadOnlySequence<byte>(bytes));
            var pieces = ReadAll(FuzzInput.Segmented(bytes, cut));
            if (!whole.SequenceEqual(pieces))
            {
                throw new InvalidOperationException($"segmented read differs: {string.Join(" | ", whole)} vs {string.Join(" | ", pieces)}");
            }

            var offset = 0;
            foreach (var (status, payload, consumed) in whole)
            {
                if (status == OperationStatus.NeedMoreData)
                {
                    // Waiting for a payload is only allowed once its announced length passed the limit check.
                    var colon = Array.IndexOf(bytes, (byte)':', offset);
                    if (colon >= 0 && long.TryParse(Encoding.ASCII.GetString(bytes, offset, colon - offset), out var announced) && announced > MaxRequest)
                    {
                        throw new InvalidOperationException($"waits for a payload of {announced} bytes");
                    }

                    break;
                }

                if (status != OperationStatus.Done)
                {
                    break;
                }

                var text = Encoding.ASCII.GetString(bytes, offset, consumed);
                var length = text[..text.IndexOf(':', StringComparison.Ordinal)];
                if (length.Length == 0 || (length.Length > 1 && length[0] == '0') || !length.All(char.IsAsciiDigit) || int.Parse(length, System.Globalization.CultureInfo.InvariantCulture) != payload!.Length ||
                    text[^1] != ',')
                {
                    throw new InvalidOperationException($"accepted a malformed netstring: {text}");
                }

                offset += consumed;
                if (!SocketmapRequest.TryParse(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(payload!)), out var name, out var key))
                {
                    continue;
                }

                Interlocked.Increment(ref lookups);
                var domains = NextHopRules.ManagedDomain(key, snapshot);
                var transport = NextHopRules.Transport(key, snapshot, TransportMode.Direct, "smtp:[127.0.0.1]:10025");
                if (domains.Status == LookupStatus.Found)
                {
                    Interlocked.Increment(ref found);
                    if (!key.Equals(PolicyFuzzTests.Inbound, StringComparison.OrdinalIgnoreCase) && !key.Equals(PolicyFuzzTests.Outbound, StringComparison.OrdinalIgnoreCase) &&
                        !key.Equals("off.test", StringComparison.OrdinalIgnoreCase))
                    {
                        throw new InvalidOperationException($"domains found an unmanaged key: {key}");
                    }
                }

                // Direct mode routes only recipients of the managed domain with inbound on.
                var at = key.LastIndexOf('@');
                if (transport.Status == LookupStatus.Found && !(at < 0 ? key : key[(at + 1)..]).Equals(PolicyFuzzTests.Inbound, StringComparison.OrdinalIgnoreCase))
                {
                    throw new InvalidOperationException($"transport routed a key outside the inbound domain: {key} -> {transport.Value}");
                }

                _ = SocketmapRequest.Reply("OK", name);
            }
        }, iter: FuzzInput.Iterations, threads: 1);
        output.WriteLine($"fuzz socketmap: {inputs} inputs, {lookups} well-formed lookups, {found} found in domains");
        Assert.Equal(FuzzInput.Iterations, inputs);
        Assert.True(found > 0, "the generator never produced a managed domain lookup: the oracle went unexercised");
    }

    /// <summary>Netstrings one after the other as the connection handler reads them; payloads as Latin-1 text (byte for byte, comparable).</summary>
    private static List<(OperationStatus Status, string? Payload, int Consumed)> ReadAll(ReadOnlySequence<byte> buffer)
    {
        var steps = new List<(OperationStatus, string?, int)>();
        while (true)
        {
            var before = buffer.Length;
            var status = Netstring.TryRead(ref buffer, MaxRequest, out var payload, out _);
            steps.Add((status, status == OperationStatus.Done ? Encoding.Latin1.GetString(payload) : null, (int)(before - buffer.Length)));
            if (status != OperationStatus.Done || buffer.Length == 0)
            {
                return steps;
            }
        }
    }
}
