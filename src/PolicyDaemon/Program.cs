using Gateway.PolicyDaemon;

// Postfix policy delegation (127.0.0.1:10040) and socketmap tables (127.0.0.1:10041) from the live
// configuration snapshot; see PolicyDaemonApp and deploy/postfix/.
var app = PolicyDaemonApp.Build(args);
await app.RunAsync().ConfigureAwait(false);
