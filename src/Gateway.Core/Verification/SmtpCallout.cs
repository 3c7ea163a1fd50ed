using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Gateway.Core.Delivery;
using Gateway.Core.Dns;
using Gateway.Core.Domains;
using Gateway.Core.Routing;
using Gateway.Core.Tls;

namespace Gateway.Core.Verification;

/// <summary>One line of an SMTP reply, parsed without I/O (RFC 5321 §4.2: <c>ddd-text</c> continues, <c>ddd text</c> ends).</summary>
public static class SmtpReplyLine
{
    public static bool TryParse(string line, out int code, out bool last)
    {
        ArgumentNullException.ThrowIfNull(line);
        code = 0;
        last = false;
        if (line.Length < 3 || !char.IsAsciiDigit(line[0]) || !char.IsAsciiDigit(line[1]) || !char.IsAsciiDigit(line[2]) || line[0] is < '2' or > '5' ||
            (line.Length > 3 && line[3] is not (' ' or '-')))
        {
            return false;
        }

        code = ((line[0] - '0') * 100) + ((line[1] - '0') * 10) + (line[2] - '0');
        last = line.Length == 3 || line[3] == ' ';
        return true;
    }
}

/// <summary>
/// The probe of recipient verification: the same servers delivery would use for the recipient (its route, requirements
/// §3.4, names resolved to A/AAAA as delivery does), checked after resolution with the same <see cref="DestinationFilter"/>
/// and loop check (<see cref="GatewaySelf"/>), so a probe never connects where delivery would not. The dialog is
/// EHLO (HELO if refused), STARTTLS when offered or the row demands it, <c>MAIL FROM:&lt;&gt;</c>, <c>RCPT TO</c>, <c>RSET</c>,
/// <c>QUIT</c>; never DATA. At most <see cref="VerificationOptions.MaxConcurrentPerDestination"/> probes at once per
/// address. A server that answers RCPT (2xx or 5xx) decides; anything else moves on to the next address.
/// </summary>
public sealed class SmtpCallout(IMailDns dns, VerificationOptions options, GatewayOptions gateway, GatewaySelf self, string heloName, CertificateVerifier? certificates = null)
{
    private const int MaxLine = 2048, MaxLines = 100;
    private readonly DestinationFilter _destinations = new(gateway);
    private readonly ConcurrentDictionary<IPEndPoint, SemaphoreSlim> _slots = new();

    public async Task<VerifyResult> ProbeAsync(DomainConfig domain, string recipient, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(domain);
        ArgumentNullException.ThrowIfNull(recipient);
        var rows = domain.Settings.InboundServers;
        var hosts = RoutePlanner.Order(RoutePlanner.Plan(recipient, domain.Name, rows), _ => Random.Shared.Next());
        if (hosts.Count == 0)
        {
            return new VerifyResult(VerifyStatus.Unknown, "no inbound server routes the recipient");
        }

        var tried = 0;
        var last = "no usable address for the domain's inbound servers";
        foreach (var host in hosts)
        {
            if (self.IsSelfName(host.Host))
            {
                last = $"{host} is the gateway itself";
                continue;
            }

            var (addresses, failure) = await ResolveAsync(host, cancellationToken).ConfigureAwait(false);
            last = failure ?? last;
            foreach (var address in addresses)
            {
                var endpoint = new IPEndPoint(address, host.Port);
                if (_destinations.Refusal(address) is { } refused)
                {
                    last = $"{host.Host} [{address}] is {refused}";
                    continue;
                }

                if (self.IsSelf(endpoint))
                {
                    last = $"{host.Host} [{address}] is the gateway itself";
                    continue;
                }

                if (tried++ >= options.MaxAddresses)
                {
                    return new VerifyResult(VerifyStatus.Unknown, VerificationRules.Clean(last));
                }

                var result = await DialogAsync(host, endpoint, TlsPolicy.ForInboundHost(rows, host), recipient, cancellationToken).ConfigureAwait(false);
                if (result.Status != VerifyStatus.Unknown)
                {
                    return result;
                }

                last = result.Reply;
            }
        }

        return new VerifyResult(VerifyStatus.Unknown, VerificationRules.Clean(last));
    }

    private async Task<(IReadOnlyList<IPAddress> Addresses, string? Failure)> ResolveAsync(RouteHost host, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(host.Host, out var literal))
        {
            return ([literal], null);
        }

        var v4 = await dns.AddressesAsync(host.Host, AddressFamily.InterNetwork, cancellationToken).ConfigureAwait(false);
        var v6 = await dns.AddressesAsync(host.Host, AddressFamily.InterNetworkV6, cancellationToken).ConfigureAwait(false);
        var all = v4.Records.Concat(v6.Records).Distinct().ToList();
        return all.Count > 0 ? (all, null) : ([], $"cannot resolve {host.Host}: {v4.Error ?? v6.Error ?? "no A or AAAA record"}");
    }

    private async Task<VerifyResult> DialogAsync(RouteHost host, IPEndPoint endpoint, TlsRequirement tls, string recipient, CancellationToken cancellationToken)
    {
        var name = $"{host.Host}[{endpoint.Address}]:{endpoint.Port}";
        var slot = _slots.GetOrAdd(endpoint, _ => new SemaphoreSlim(options.MaxConcurrentPerDestination));
        await slot.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            using (var connect = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                connect.CancelAfter(options.ConnectTimeout);
                try
                {
                    await socket.ConnectAsync(endpoint, connect.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    return Unknown(name, $"connect timed out after {options.ConnectTimeout.TotalSeconds:0.#} s");
                }
            }

            await using var network = new NetworkStream(socket, ownsSocket: false);
            await using var conversation = new Conversation(network, options.CommandTimeout, cancellationToken);
            return await ConverseAsync(conversation, network, host, name, tls, recipient).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            return Unknown(name, e.SocketErrorCode == SocketError.ConnectionRefused ? "connection refused" : e.SocketErrorCode.ToString());
        }
        catch (TimeoutException e)
        {
            return Unknown(name, e.Message);
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or InvalidDataException)
        {
            return Unknown(name, e.Message);
        }
        finally
        {
            slot.Release();
        }
    }

    private async Task<VerifyResult> ConverseAsync(Conversation c, NetworkStream network, RouteHost host, string name, TlsRequirement tls, string recipient)
    {
        var (code, text) = await c.ReadAsync("the greeting").ConfigureAwait(false);
        if (code != 220)
        {
            await c.QuitAsync().ConfigureAwait(false);
            return Unknown(name, "greeting: " + text);
        }

        var (ehlo, ehloText) = await c.CommandAsync("EHLO " + heloName).ConfigureAwait(false);
        var esmtp = ehlo == 250;
        if (!esmtp)
        {
            (ehlo, ehloText) = await c.CommandAsync("HELO " + heloName).ConfigureAwait(false);
            if (ehlo != 250)
            {
                await c.QuitAsync().ConfigureAwait(false);
                return Unknown(name, "HELO: " + ehloText);
            }
        }

        var startTls = esmtp && HasExtension(ehloText, "STARTTLS");
        if (!startTls && tls.Mode != TlsMode.Opportunistic)
        {
            await c.QuitAsync().ConfigureAwait(false);
            return Unknown(name, "TLS is required for this server (" + TlsPolicy.Name(tls.Mode) + ") and it does not offer STARTTLS");
        }

        if (startTls)
        {
            var (ready, readyText) = await c.CommandAsync("STARTTLS").ConfigureAwait(false);
            if (ready != 220)
            {
                if (tls.Mode != TlsMode.Opportunistic)
                {
                    await c.QuitAsync().ConfigureAwait(false);
                    return Unknown(name, "STARTTLS: " + readyText);
                }
            }
            else
            {
                var ssl = new SslStream(network, leaveInnerStreamOpen: true);
                c.Switch(ssl); // owned (disposed) by the conversation from here on
                var targetName = tls.Name ?? host.Host;
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = targetName,
                    RemoteCertificateValidationCallback = (_, cert, chain, errors) =>
                    {
                        if (tls.Mode != TlsMode.Verify)
                        {
                            return true; // RFC 7435 opportunistic (and Postfix's "encrypt"): any certificate
                        }

                        return certificates?.Check(cert, chain, errors).Verified ?? errors == SslPolicyErrors.None;
                    },
                }, c.Token).ConfigureAwait(false);
                (ehlo, ehloText) = await c.CommandAsync("EHLO " + heloName).ConfigureAwait(false);
                if (ehlo != 250)
                {
                    await c.QuitAsync().ConfigureAwait(false);
                    return Unknown(name, "EHLO after STARTTLS: " + ehloText);
                }
            }
        }

        var utf8 = !Ascii(recipient) || !Ascii(options.ProbeSender);
        if (utf8 && !HasExtension(ehloText, "SMTPUTF8"))
        {
            await c.QuitAsync().ConfigureAwait(false);
            return Unknown(name, "the server does not offer SMTPUTF8 for an internationalised address");
        }

        var (mail, mailText) = await c.CommandAsync("MAIL FROM:<" + options.ProbeSender + ">" + (utf8 ? " SMTPUTF8" : string.Empty)).ConfigureAwait(false);
        if (mail / 100 != 2)
        {
            await c.QuitAsync().ConfigureAwait(false);
            return Unknown(name, "MAIL FROM:<" + options.ProbeSender + ">: " + mailText);
        }

        var (rcpt, rcptText) = await c.CommandAsync("RCPT TO:<" + recipient + ">").ConfigureAwait(false);
        // RFC 5321 §4.1.1.5: RSET ends the transaction, so nothing of the probe can ever become a message.
        try
        {
            await c.CommandAsync("RSET").ConfigureAwait(false);
            await c.QuitAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or TimeoutException or InvalidDataException)
        {
            // The answer to RCPT is what counts; a server that hangs up after it is not our problem.
        }

        var status = VerificationRules.Classify(rcpt);
        return new VerifyResult(status, VerificationRules.Clean(rcptText), name);
    }

    private static bool Ascii(string s) => System.Text.Ascii.IsValid(s);

    /// <summary>An EHLO keyword (RFC 5321 §4.1.1.1) on any line after the first.</summary>
    private static bool HasExtension(string ehloText, string keyword) =>
        ehloText.Split('\n').Skip(1).Select(l => l.Length > 4 ? l[4..].Trim() : string.Empty)
            .Any(t => t.Equals(keyword, StringComparison.OrdinalIgnoreCase) || t.StartsWith(keyword + " ", StringComparison.OrdinalIgnoreCase));

    private static VerifyResult Unknown(string host, string why) => new(VerifyStatus.Unknown, VerificationRules.Clean(host + ": " + why), host);

    /// <summary>Commands and replies over the connection, each reply within the command timeout.</summary>
    private sealed class Conversation(Stream stream, TimeSpan timeout, CancellationToken token) : IAsyncDisposable
    {
        private readonly Stream _network = stream;
        private Stream _stream = stream;
        private readonly byte[] _buffer = new byte[4096];
        private int _start, _end;

        public CancellationToken Token { get; } = token;

        /// <summary>Disposes the TLS stream once switched to (the network stream belongs to the caller).</summary>
        public ValueTask DisposeAsync() => ReferenceEquals(_stream, _network) ? ValueTask.CompletedTask : _stream.DisposeAsync();

        public void Switch(Stream tls)
        {
            _stream = tls;
            _start = _end = 0; // RFC 3207 §4.2 (and the STARTTLS injection of CVE-2011-0411): nothing read before TLS counts
        }

        public async Task<(int Code, string Text)> CommandAsync(string command)
        {
            await _stream.WriteAsync(Encoding.UTF8.GetBytes(command + "\r\n"), Token).ConfigureAwait(false);
            await _stream.FlushAsync(Token).ConfigureAwait(false);
            return await ReadAsync(command.Split(' ')[0]).ConfigureAwait(false);
        }

        public async Task QuitAsync()
        {
            try
            {
                await CommandAsync("QUIT").ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or TimeoutException or InvalidDataException)
            {
            }
        }

        /// <summary>A whole (multi-line) reply: its code and its lines joined with LF.</summary>
        public async Task<(int Code, string Text)> ReadAsync(string what)
        {
            using var limit = CancellationTokenSource.CreateLinkedTokenSource(Token);
            limit.CancelAfter(timeout);
            var lines = new StringBuilder();
            for (var n = 0; n < MaxLines; n++)
            {
                string line;
                try
                {
                    line = await ReadLineAsync(limit.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!Token.IsCancellationRequested)
                {
                    throw new TimeoutException($"no reply to {what} within {timeout.TotalSeconds:0.#} s");
                }

                if (!SmtpReplyLine.TryParse(line, out var code, out var last))
                {
                    throw new InvalidDataException("not an SMTP reply: " + VerificationRules.Clean(line));
                }

                if (lines.Length > 0)
                {
                    lines.Append('\n');
                }

                lines.Append(line);
                if (last)
                {
                    return (code, lines.ToString());
                }
            }

            throw new InvalidDataException($"reply to {what} longer than {MaxLines} lines");
        }

        private async Task<string> ReadLineAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                var lf = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
                if (lf >= 0)
                {
                    var end = lf > _start && _buffer[lf - 1] == '\r' ? lf - 1 : lf;
                    var line = Encoding.UTF8.GetString(_buffer, _start, end - _start);
                    _start = lf + 1;
                    return line;
                }

                if (_end - _start >= MaxLine)
                {
                    throw new InvalidDataException($"reply line longer than {MaxLine} bytes");
                }

                if (_start > 0)
                {
                    Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                    _end -= _start;
                    _start = 0;
                }

                var read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    throw new IOException("the server closed the connection");
                }

                _end += read;
            }
        }
    }
}
