namespace Gateway.Core.Telemetry;

/// <summary>
/// A class that creates instruments in its constructor. Registered with
/// <see cref="TelemetryServiceCollectionExtensions.AddGatewayInstruments{T}"/>, it is built at start, so its
/// series (gauges above all) are on <c>/metrics</c> from the first scrape, not from first use.
/// </summary>
public interface IGatewayInstruments;
