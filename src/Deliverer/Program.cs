using Gateway.Deliverer;

// SMTP intake (Postfix hands accepted mail here), the durable Redis queue and delivery.
var app = DelivererApp.Build(args);
await app.RunAsync().ConfigureAwait(false);
