using System.Buffers;
using System.Text;
using CsCheck;
using Gateway.Core.Domains;
using Gateway.Core.Relay;
using Gateway.Core.Snapshot;
using Gateway.PolicyDaemon.Protocol;
using Xunit.Abstractions;

namespace Fuzz.Tests;

/// <summary>
/// requirements §4: "Malformed requests never crash the daemon and never yield an accept." The policy parser and the
/// decision behind it, fed hostile bytes: nothing throws, the caller never has to buffer past the limits, a
/// request cut into segments parses as the whole does, and every accept comes from a request that a separate,
/// simple reading of the protocol (SMTPD_POLICY_README) finds well-formed and entitled to it.
/// </summary>
[Trait("Kind", "Unit")]
public sealed class PolicyFuzzTests(ITestOutputHelper output)
{
    internal const string Inbound = "managed.test";
    internal const string Outbound = "out.test";
    internal const string OutboundSource = "192.0.2.1";

    private static readonly PolicyLimits Small = new(256, 12, 1024);

    private static readonly string[] Vocabulary =
    [
        "request=smtpd_access_policy\n", "request=other\n", "protocol_state=RCPT\n", "protocol_state=MAIL\n", "protocol_state=rcpt\n",
        "recipient=user@managed.test\n", "recipient=USER@MANAGED.TEST\n", "recipient=user@managed.test.\n", "recipient=user@sub.managed.test\n",
        "recipient=user@other.test\n", "recipient=\"a@b\"@managed.test\n", "recipient=user@off.test\n", "recipient=@managed.test\n",
        "sender=x@out.test\n", "sender=x@OUT.test\n", "sender=\n", "sender=x@other.test\n", "client_address=192.0.2.1\n",
        "client_address=198.51.100.7\n", "client_address=::ffff:192.0.2.1\n", "client_address=192.0.2.1 \n", "client_address=\n",
        "policy_context=\n", "policy_context=inbound\n", "policy_context=outbound\n", "policy_context=both\n", "size=12\n", "queue_id=\n",
        "x=y\n", "=v\n", "novalue\n", "\n", "\r\n", "\n\n", "na me=v\n", "recipient=user@managed.test\r\n", "recipient=user\0@managed.test\n",
    ];

    internal static ConfigSnapshot Snapshot()
    {
        var snapshot = new ConfigSnapshot();
        snapshot.Replace([Domain(Inbound, inbound: true, OutboundSettings.Disabled, verified: false),
            Domain(Outbound, inbound: false, new OutboundSettings(true, false, false, [OutboundSource]), verified: true),
            Domain("off.test", inbound: false, OutboundSettings.Disabled, verified: false)], 1, DateTimeOffset.UnixEpoch);
        return snapshot;
    }

    private static DomainConfig Domain(string name, bool inbound, OutboundSettings outbound, bool verified) => new()
    {
        Name = name,
        CompanyId = "fuzz",
        Settings = new DomainSettings(inbound, inbound ? [new InboundServer("*@" + name, "192.0.2.10", 25, 10)] : [], outbound),
        Verification = new VerificationState(new string('a', 32), verified, verified ? VerificationMethod.Txt : VerificationMethod.None, null),
        CreateTime = DateTimeOffset.UnixEpoch,
        UpdateTime = DateTimeOffset.UnixEpoch,
    };

    private static readonly ProviderRanges Providers = new(new ProviderRangeList("fuzz", DateTimeOffset.UnixEpoch, ["40.92.0.0/15"]),
        new ProviderRangeList("fuzz", DateTimeOffset.UnixEpoch, ["209.85.128.0/17"]));

    [Fact]
    public void PolicyParserAndDecision_HostileBytes_NoCrashBoundedNoMalformedAccept()
    {
        var snapshot = Snapshot();
        var policy = new Gateway.PolicyDaemon.Postfix.PostfixPolicy("OK");
        var seeds = FuzzInput.Seeds("policy");
        long inputs = 0, accepted = 0, done = 0;
        FuzzInput.Bytes(seeds, Vocabulary).Select(Gen.UInt).Sample((bytes, cut) =>
        {
            Interlocked.Increment(ref inputs);
            var limits = cut % 4 == 0 ? Small : PolicyLimits.Default;
            var whole = ParseAll(new ReadOnlySequence<byte>(bytes), limits);
            var pieces = ParseAll(FuzzInput.Segmented(bytes, cut), limits);
            if (!whole.SequenceEqual(pieces))
            {
                throw new InvalidOperationException($"segmented parse differs: {string.Join(" | ", whole)} vs {string.Join(" | ", pieces)}");
            }

            long offset = 0;
            foreach (var step in whole)
            {
                if (step.Status == OperationStatus.NeedMoreData && bytes.Length - offset > limits.MaxRequestBytes)
                {
                    throw new InvalidOperationException($"asks for more data while holding {bytes.Length - offset} bytes");
                }

                if (step.Status != OperationStatus.Done)
                {
                    break;
                }

                Interlocked.Increment(ref done);
                var consumed = bytes.AsSpan((int)offset, (int)step.Consumed);
                offset += step.Consumed;
                var decision = RelayRules.Evaluate(Gateway.PolicyDaemon.Postfix.PostfixPolicy.ToRelayRequest(step.Request!), snapshot, Providers);
                if (policy.Action(decision) == "OK")
                {
                    Interlocked.Increment(ref accepted);
                    if (Reference.WhyNotEntitled(consumed, limits) is { } why)
                    {
                        throw new InvalidOperationException($"accepted, but {why}: {Encoding.UTF8.GetString(consumed)}");
                    }
                }
            }
        }, iter: FuzzInput.Iterations, threads: 1);
        output.WriteLine($"fuzz policy: {inputs} inputs, {done} complete requests, {accepted} accepted (all entitled)");
        Assert.Equal(FuzzInput.Iterations, inputs);
        Assert.True(accepted > 0, "the generator never produced an entitled request: the oracle went unexercised");
    }

    private readonly record struct Step(OperationStatus Status, PolicyParseError Error, long Consumed, PolicyRequest? Request)
    {
        public override string ToString() => $"{Status}/{Error}/{Consumed}/{Request?.Recipient}/{Request?.Sender}/{Request?.ClientAddress}/{Request?.ProtocolState}/{Request?.PolicyContext}";

        public bool Equals(Step other) => ToString() == other.ToString();

        public override int GetHashCode() => ToString().GetHashCode(StringComparison.Ordinal);
    }

    /// <summary>Parses requests one after the other as the connection handler does, until one is incomplete or invalid.</summary>
    private static List<Step> ParseAll(ReadOnlySequence<byte> buffer, PolicyLimits limits)
    {
        var steps = new List<Step>();
        while (true)
        {
            var before = buffer.Length;
            var status = PolicyRequestParser.TryParse(ref buffer, limits, out var request, out var error);
            steps.Add(new Step(status, error, before - buffer.Length, request));
            if (status != OperationStatus.Done || buffer.Length == 0)
            {
                return steps;
            }
        }
    }

    /// <summary>A separate reading of the protocol, written for the oracle only: line by line, no spans, no limits shared.</summary>
    private static class Reference
    {
        private static readonly string[] Decisive = ["request", "protocol_state", "sender", "recipient", "client_address", "policy_context"];

        public static string? WhyNotEntitled(ReadOnlySpan<byte> request, PolicyLimits limits)
        {
            var lines = new List<byte[]>();
            var start = 0;
            for (var i = 0; i < request.Length; i++)
            {
                if (request[i] == (byte)'\n')
                {
                    var line = request[start..i];
                    lines.Add((line.Length > 0 && line[^1] == (byte)'\r' ? line[..^1] : line).ToArray());
                    start = i + 1;
                }
            }

            if (start != request.Length || lines.Count < 2 || lines[^1].Length != 0)
            {
                return "the request does not end with an empty line";
            }

            if (lines.Count - 1 > limits.MaxAttributes || request.Length > limits.MaxRequestBytes)
            {
                return "the request breaks a limit";
            }

            var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var line in lines.Take(lines.Count - 1))
            {
                var eq = Array.IndexOf(line, (byte)'=');
                if (line.Length == 0 || line.Length > limits.MaxLineLength || eq <= 0 || line.Take(eq).Any(b => b is < 0x21 or > 0x7E) || line.Contains((byte)0))
                {
                    return "a line is malformed";
                }

                var name = Encoding.ASCII.GetString(line, 0, eq);
                if (!attributes.TryAdd(name, Encoding.UTF8.GetString(line, eq + 1, line.Length - eq - 1)) && Decisive.Contains(name))
                {
                    return $"{name} is repeated";
                }
            }

            string Get(string name) => attributes.TryGetValue(name, out var v) ? v : string.Empty;
            // Trailing dots name the same (fully qualified) domain, and a U-label is looked up by its A-label (requirements §3).
            static string DomainOf(string address) => address.LastIndexOf('@') is var at and >= 0 ? ALabel(address[(at + 1)..].TrimEnd('.')) : string.Empty;
            static string ALabel(string domain)
            {
                try
                {
                    return System.Text.Ascii.IsValid(domain) ? domain : new System.Globalization.IdnMapping().GetAscii(domain);
                }
                catch (ArgumentException)
                {
                    return string.Empty;
                }
            }
            if (Get("request") != "smtpd_access_policy" || Get("protocol_state") != "RCPT")
            {
                return "it is not an RCPT access policy request";
            }

            var context = Get("policy_context");
            var inbound = context is "" or "inbound" && string.Equals(DomainOf(Get("recipient")), Inbound, StringComparison.OrdinalIgnoreCase);
            var outbound = context is "" or "outbound" && string.Equals(DomainOf(Get("sender")), Outbound, StringComparison.OrdinalIgnoreCase) &&
                           Get("client_address") == OutboundSource;
            return inbound || outbound ? null : "neither the recipient's domain nor the sender's domain and client entitle it";
        }
    }
}
