using System.CommandLine;
using Gateway.Cli;
using Gateway.Cli.Commands;

var root = new RootCommand("gatewayctl: administer the managed-domain mail gateway through its gRPC API");
GlobalOptions.AddTo(root);
root.Subcommands.Add(TenantCommands.Tenants());
root.Subcommands.Add(TenantCommands.Keys());
root.Subcommands.Add(DomainCommands.Domains());
root.Subcommands.Add(QueueCommands.Queue());
root.Subcommands.Add(RuleCommands.Rules());
root.Subcommands.Add(QuarantineCommands.Quarantine());
root.Subcommands.Add(LogCommands.Logs());
root.Subcommands.Add(ProtectionCommands.Protection());
root.Subcommands.Add(Gateway.Cli.Setup.SetupCommand.Create());
// No response files: "@example.com" is a filter value here (logs --sender @example.com), not a file to read.
var parse = root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null });
var exit = await parse.InvokeAsync().ConfigureAwait(false);
// Unknown commands, missing arguments, bad option values: System.CommandLine prints them with the help and returns 1;
// the documented exit code for usage errors is 2 (README "Admin CLI").
return parse.Errors.Count > 0 ? ExitCodes.Usage : exit;
