using System.Diagnostics.Metrics;
using Gateway.Core.Telemetry;

namespace Gateway.Deliverer;

/// <summary>
/// Instruments of outbound protection (meter <c>Gateway.Deliverer</c>, docs/telemetry.md): DKIM signatures made at intake,
/// TLS per delivery connection, MTA-STS policy fetches and enforcement. Tag values are fixed strings.
/// </summary>
public sealed class OutboundMetrics : IGatewayInstruments
{
    private readonly Counter<long> _dkim;
    private readonly Counter<long> _tls;
    private readonly Counter<long> _stsFetches;
    private readonly Counter<long> _stsOutcomes;

    public OutboundMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        var meter = meterFactory.Create(DelivererMetrics.MeterName);
        _dkim = meter.CreateCounter<long>("gateway.deliverer.dkim.signatures", "{message}",
            "Outbound messages at intake by DKIM result (signed; unavailable: the key could not be loaded, the client got 451; unparsable: stored unsigned).");
        _tls = meter.CreateCounter<long>("gateway.deliverer.tls.connections", "{connection}",
            "Delivery connections by TLS (none, unverified, verified) and direction.");
        _stsFetches = meter.CreateCounter<long>("gateway.deliverer.mtasts.fetches", "{fetch}",
            "MTA-STS policy fetches over HTTPS (RFC 8461 §3.3), by result (ok, failed). Cached policies are not fetched again before their max_age.");
        _stsOutcomes = meter.CreateCounter<long>("gateway.deliverer.mtasts.checks", "{check}",
            "MTA-STS decisions per delivery to an MX host, by mode (enforce, testing) and result (pass, fail).");
    }

    /// <summary><paramref name="result"/>: <c>signed</c>, <c>unavailable</c> or <c>unparsable</c>.</summary>
    public void Dkim(string result) => _dkim.Add(1, new KeyValuePair<string, object?>("result", result));

    public void Tls(string tls, Gateway.Core.Mail.Direction direction) =>
        _tls.Add(1, new KeyValuePair<string, object?>("tls", tls),
            new KeyValuePair<string, object?>("direction", direction == Gateway.Core.Mail.Direction.Outbound ? "outbound" : "inbound"));

    public void MtaStsFetch(bool ok) => _stsFetches.Add(1, new KeyValuePair<string, object?>("result", ok ? "ok" : "failed"));

    public void MtaStsCheck(string mode, bool pass) =>
        _stsOutcomes.Add(1, new KeyValuePair<string, object?>("mode", mode), new KeyValuePair<string, object?>("result", pass ? "pass" : "fail"));
}
