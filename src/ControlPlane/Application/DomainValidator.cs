using System.Net;
using Gateway.Core.Errors;
using Gateway.Core;
using Gateway.Core.Domains;
using Gateway.Core.Delivery;

namespace Gateway.ControlPlane.Application;

/// <summary>
/// Pure validation and normalisation of what a tenant submits (requirements §3.1,
/// "Inbound servers", "Outbound servers"). Field paths name the request fields, so a client
/// can point at the offending entry.
/// </summary>
public sealed class DomainValidator
{
    private readonly IReadOnlyList<string> _publicProviders;
    private readonly string _gatewayDomain;
    private readonly bool _allowLoopback;
    private readonly GatewaySelf _self;

    /// <param name="self">What is the gateway itself (a row pointing at it would loop); by default its domain and sending addresses.</param>
    public DomainValidator(GatewayOptions options, GatewaySelf? self = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _publicProviders = (options.PublicProviders is { Length: > 0 } list ? list : PublicProviders.Default)
            .Select(p => DomainName.NormalizeOrNull(p) ?? p.Trim().ToLowerInvariant())
            .ToArray();
        _gatewayDomain = DomainName.NormalizeOrNull(options.GatewayDomain) ?? options.GatewayDomain.ToLowerInvariant();
        _allowLoopback = options.AllowLoopbackDestinations;
        _self = self ?? new GatewaySelf([], options.SendingAddresses.Select(a => IPAddress.TryParse(a, out var ip) ? ip : null).OfType<IPAddress>(), [],
            options.GatewayDomain);
    }

    /// <summary>Normalises a domain name to register, refusing what requirements §3 refuses.</summary>
    public string NormalizeNewDomainName(string? input, string field, List<FieldViolation> violations)
    {
        if (!DomainName.TryNormalize(input, out var name, out var error))
        {
            violations.Add(new FieldViolation(field, error));
            return string.Empty;
        }

        var provider = _publicProviders.FirstOrDefault(p => DomainName.IsSameOrSubdomain(name, p));
        if (provider is not null)
        {
            violations.Add(new FieldViolation(field,
                $"'{name}' belongs to the public mailbox provider {provider}; only domains your organisation owns can be managed"));
            return string.Empty;
        }

        if (DomainName.IsSameOrSubdomain(name, _gatewayDomain))
        {
            violations.Add(new FieldViolation(field, $"'{name}' is the gateway's own domain"));
            return string.Empty;
        }

        return name;
    }

    /// <summary>Validates and normalises the editable settings of <paramref name="domain"/> (already normalised).</summary>
    public DomainSettings NormalizeSettings(string domain, DomainSettings input, string prefix, List<FieldViolation> violations)
    {
        ArgumentNullException.ThrowIfNull(input);
        var servers = NormalizeInboundServers(domain, input.InboundServers, $"{prefix}.inbound_servers", violations);
        if (input.InboundEnabled && input.InboundServers.Count == 0)
        {
            violations.Add(new FieldViolation($"{prefix}.inbound_servers",
                "inbound is enabled but no inbound server is configured; add at least one row (e.g. *@" + domain + ")"));
        }

        var outbound = NormalizeOutbound(input.Outbound ?? OutboundSettings.Disabled, $"{prefix}.outbound", violations);
        return new DomainSettings(input.InboundEnabled, servers, outbound)
        {
            Protection = ProtectionValidator.Normalize(input.Protection, $"{prefix}.protection", violations),
            RecipientVerification = NormalizeVerification(input.RecipientVerification ?? RecipientVerificationSettings.Off, $"{prefix}.recipient_verification", violations),
        };
    }

    /// <summary>The lifetimes of recipient verification: 0 (the default) or within Postfix-like bounds (docs/operations.md).</summary>
    private static RecipientVerificationSettings NormalizeVerification(RecipientVerificationSettings v, string field, List<FieldViolation> violations)
    {
        void Check(TimeSpan ttl, TimeSpan max, string name, TimeSpan fallback)
        {
            if (ttl != TimeSpan.Zero && (ttl < RecipientVerificationSettings.MinTtl || ttl > max))
            {
                violations.Add(new FieldViolation($"{field}.{name}",
                    $"must be {RecipientVerificationSettings.MinTtl.TotalSeconds:0}-{max.TotalSeconds:0} seconds (0 means {fallback.TotalSeconds:0}); {ttl.TotalSeconds:0} given"));
            }
        }

        Check(v.PositiveTtl, RecipientVerificationSettings.MaxPositiveTtl, "positive_ttl_seconds", RecipientVerificationSettings.DefaultPositiveTtl);
        Check(v.NegativeTtl, RecipientVerificationSettings.MaxNegativeTtl, "negative_ttl_seconds", RecipientVerificationSettings.DefaultNegativeTtl);
        return v;
    }

    private List<InboundServer> NormalizeInboundServers(string domain, IReadOnlyList<InboundServer> rows, string field, List<FieldViolation> violations)
    {
        if (rows.Count > InboundServer.MaxRows)
        {
            violations.Add(new FieldViolation(field, $"at most {InboundServer.MaxRows} inbound servers; {rows.Count} given"));
            return [];
        }

        var result = new List<InboundServer>(rows.Count);
        var seen = new HashSet<(string, string, int)>();
        for (var i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            var at = $"{field}[{i}]";
            var before = violations.Count;
            var recipient = NormalizeRecipient(domain, row.Recipient, $"{at}.recipient", violations);
            var host = NormalizeHost(row.Host, $"{at}.host", violations);
            var port = row.Port == 0 ? InboundServer.DefaultPort : row.Port;
            if (port is < 1 or > 65535)
            {
                violations.Add(new FieldViolation($"{at}.port", $"port must be 1-65535 (0 means {InboundServer.DefaultPort}); {row.Port} given"));
            }

            var preference = row.Preference == 0 ? InboundServer.DefaultPreference : row.Preference;
            if (preference is < InboundServer.MinPreference or > InboundServer.MaxPreference)
            {
                violations.Add(new FieldViolation($"{at}.preference",
                    $"preference must be {InboundServer.MinPreference}-{InboundServer.MaxPreference} (lower is tried first; 0 means {InboundServer.DefaultPreference}); {row.Preference} given"));
            }

            var tlsName = NormalizeTls(row, host, at, violations);
            if (violations.Count != before)
            {
                continue;
            }

            if (PointsAtGateway(host, port) is { } loop)
            {
                violations.Add(new FieldViolation($"{at}.host", loop));
                continue;
            }

            if (!seen.Add((recipient, host, port)))
            {
                violations.Add(new FieldViolation(at, $"duplicate row: {recipient} → {host}:{port} is already listed"));
                continue;
            }

            result.Add(new InboundServer(recipient, host, port, preference) { Tls = row.Tls, TlsName = tlsName });
        }

        return result;
    }

    /// <summary>
    /// Why a row's host is the gateway itself, or null (requirements §3.7, loops): a name in the gateway's own domain (its tenants'
    /// MX hosts <c>*.in.&lt;gateway domain&gt;</c>, its relay host) or its host name, one of its sending addresses, or the Deliverer's
    /// intake listener. Mail for such a row would come straight back into the gateway; the Deliverer never connects there either.
    /// </summary>
    private string? PointsAtGateway(string host, int port)
    {
        if (IPAddress.TryParse(host, out var ip))
        {
            return _self.IsSelf(new IPEndPoint(ip, port))
                ? $"'{host}' port {port} is this gateway (a sending address or the intake's listener): mail for this row would loop back to the gateway"
                : null;
        }

        return _self.IsSelfName(host) || DomainName.IsSameOrSubdomain(host, _gatewayDomain)
            ? $"'{host}' is this gateway (its own host name or a name in its domain {_gatewayDomain}, such as your MX host): mail for this row would loop back to the gateway"
            : null;
    }

    /// <summary>The row's TLS mode and tls_name (requirements §10): a name only with verify, and a valid host name.</summary>
    private static string? NormalizeTls(InboundServer row, string host, string at, List<FieldViolation> violations)
    {
        if (!Enum.IsDefined(row.Tls))
        {
            violations.Add(new FieldViolation($"{at}.tls", "tls must be opportunistic, required or verify"));
            return null;
        }

        if (string.IsNullOrWhiteSpace(row.TlsName))
        {
            return null;
        }

        if (row.Tls != TlsMode.Verify)
        {
            violations.Add(new FieldViolation($"{at}.tls_name", "tls_name is the name a certificate is verified against: it needs tls = verify"));
            return null;
        }

        if (!DomainName.TryNormalize(row.TlsName, out var name, out var error) || IPAddress.TryParse(row.TlsName.Trim(), out _))
        {
            violations.Add(new FieldViolation($"{at}.tls_name", $"tls_name must be a host name: {(error.Length > 0 ? error : "an IP address was given")}"));
            return null;
        }

        return name == host ? null : name;
    }

    /// <summary><c>*@domain</c> or <c>local@domain</c> with the domain of the row's own managed domain.</summary>
    public static string NormalizeRecipient(string domain, string? input, string field, List<FieldViolation> violations)
    {
        ArgumentNullException.ThrowIfNull(violations);
        var s = input?.Trim() ?? string.Empty;
        var at = s.LastIndexOf('@');
        if (at <= 0 || at == s.Length - 1)
        {
            violations.Add(new FieldViolation(field, $"recipient must be *@{domain} or name@{domain}; '{input}' given"));
            return string.Empty;
        }

        var local = s[..at];
        var rcptDomain = DomainName.NormalizeOrNull(s[(at + 1)..]);
        if (rcptDomain != domain)
        {
            violations.Add(new FieldViolation(field, $"recipient '{input}' is not in {domain}; use *@{domain} or name@{domain}"));
            return string.Empty;
        }

        if (local == "*")
        {
            return "*@" + domain;
        }

        if (!IsValidLocalPart(local, out var why))
        {
            violations.Add(new FieldViolation(field, $"recipient '{input}': {why}"));
            return string.Empty;
        }

        return local.ToLowerInvariant() + "@" + domain;
    }

    /// <summary>RFC 5321 dot-atom local part, UTF-8 allowed (RFC 6531), at most 64 octets.</summary>
    public static bool IsValidLocalPart(string local, out string why)
    {
        ArgumentNullException.ThrowIfNull(local);
        if (System.Text.Encoding.UTF8.GetByteCount(local) > 64)
        {
            why = "the local part is longer than 64 octets";
            return false;
        }

        if (local.StartsWith('.') || local.EndsWith('.') || local.Contains("..", StringComparison.Ordinal))
        {
            why = "the local part has a misplaced dot";
            return false;
        }

        foreach (var c in local)
        {
            if (c > 127)
            {
                continue;
            }

            if (char.IsAsciiLetterOrDigit(c) || c == '.' || "!#$%&'*+-/=?^_`{|}~".Contains(c, StringComparison.Ordinal))
            {
                if (c == '*')
                {
                    why = "'*' is only allowed alone, as *@domain for every recipient";
                    return false;
                }

                continue;
            }

            why = $"the local part contains '{c}'";
            return false;
        }

        why = string.Empty;
        return true;
    }

    /// <summary>An IPv4/IPv6 address (canonical text) or a host name (A-label, lower case).</summary>
    public string NormalizeHost(string? input, string field, List<FieldViolation> violations)
    {
        ArgumentNullException.ThrowIfNull(violations);
        var s = input?.Trim() ?? string.Empty;
        if (s.Length == 0)
        {
            violations.Add(new FieldViolation(field, "a host (IP address or host name) is required"));
            return string.Empty;
        }

        if (s.StartsWith('[') && s.EndsWith(']'))
        {
            s = s[1..^1];
        }

        var looksLikeIp = s.Contains(':', StringComparison.Ordinal) || s.All(c => char.IsAsciiDigit(c) || c is '.' or '/' or '-' or '*');
        if (looksLikeIp)
        {
            // "host:25" would parse as nothing useful: say where the port goes.
            if (s.Count(c => c == ':') == 1)
            {
                violations.Add(new FieldViolation(field, $"'{input}' contains a port; put the port in the port field"));
                return string.Empty;
            }

            if (!IpAddressText.TryParseSingle(s, out var ip, out var error))
            {
                violations.Add(new FieldViolation(field, error));
                return string.Empty;
            }

            if (IpAddressText.IsNeverDeliverable(ip))
            {
                violations.Add(new FieldViolation(field, $"'{ip}' cannot receive mail (unspecified, broadcast or multicast)"));
                return string.Empty;
            }

            if (IPAddress.IsLoopback(ip) && !_allowLoopback)
            {
                violations.Add(new FieldViolation(field, $"'{ip}' is a loopback address of the gateway itself"));
                return string.Empty;
            }

            return IpAddressText.Canonical(ip);
        }

        if (s.Contains(':', StringComparison.Ordinal))
        {
            violations.Add(new FieldViolation(field, $"'{input}' contains a port; put the port in the port field"));
            return string.Empty;
        }

        if (s.Equals("localhost", StringComparison.OrdinalIgnoreCase) || s.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase))
        {
            if (!_allowLoopback)
            {
                violations.Add(new FieldViolation(field, $"'{s}' is the gateway itself"));
                return string.Empty;
            }

            return s.ToLowerInvariant();
        }

        if (!DomainName.TryNormalize(s, out var host, out var hostError))
        {
            violations.Add(new FieldViolation(field, hostError.Replace("register a fully qualified domain", "use a fully qualified host name", StringComparison.Ordinal)));
            return string.Empty;
        }

        return host;
    }

    private static OutboundSettings NormalizeOutbound(OutboundSettings input, string field, List<FieldViolation> violations)
    {
        // requirements §3.9: the Microsoft 365 tenant id is a GUID (Entra ID "Tenant ID"), stored as 36 lower-case characters.
        if (input.Office365TenantId is { } tenant)
        {
            if (Guid.TryParseExact(tenant, "D", out var id))
            {
                input = input with { Office365TenantId = id.ToString("D") };
            }
            else
            {
                violations.Add(new FieldViolation($"{field}.office365_tenant_id",
                    "must be a Microsoft 365 tenant id: a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47 (Entra admin center, Overview, Tenant ID)"));
                input = input with { Office365TenantId = null };
            }
        }

        // requirements §3.9: the Google Workspace DKIM selector is one DNS label (RFC 6376 §3.1 allows dotted selectors;
        // Google Admin's prefix is a single label).
        if (input.GoogleWorkspaceDkimSelector is { } selector && !Gateway.Core.Relay.GoogleWorkspaceBinding.IsSelector(selector))
        {
            violations.Add(new FieldViolation($"{field}.google_workspace_dkim_selector",
                "must be the DKIM selector (prefix) of your Google Workspace key: letters, digits and hyphens, at most 63, such as google " +
                "(Google Admin, Apps, Google Workspace, Gmail, Authenticate email)"));
            input = input with { GoogleWorkspaceDkimSelector = null };
        }

        var ips = input.CustomIps ?? [];
        if (ips.Count > OutboundSettings.MaxCustomIps)
        {
            violations.Add(new FieldViolation($"{field}.custom_ips", $"at most {OutboundSettings.MaxCustomIps} custom IP addresses; {ips.Count} given"));
            return input with { CustomIps = [] };
        }

        var result = new List<string>(ips.Count);
        var seen = new HashSet<IPAddress>();
        for (var i = 0; i < ips.Count; i++)
        {
            var at = $"{field}.custom_ips[{i}]";
            if (!IpAddressText.TryParseSingle(ips[i], out var ip, out var error))
            {
                violations.Add(new FieldViolation(at, error));
                continue;
            }

            if (IpAddressText.IsNeverDeliverable(ip))
            {
                violations.Add(new FieldViolation(at, $"'{ips[i]}' cannot be a sending server's address"));
                continue;
            }

            if (!seen.Add(ip))
            {
                violations.Add(new FieldViolation(at, $"'{ips[i]}' is listed twice"));
                continue;
            }

            result.Add(IpAddressText.Canonical(ip));
        }

        return input with { CustomIps = result };
    }
}
