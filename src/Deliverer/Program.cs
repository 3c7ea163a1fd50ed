using Gateway.Core;

// Runnable host: configuration, Redis and the live domain snapshot. The Deliverer's own
// listeners arrive with their issue.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Services.AddGatewayCore(builder.Configuration);
builder.Services.AddConfigSnapshot();
await builder.Build().RunAsync().ConfigureAwait(false);
