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
root.Subcommands.Add(Gateway.Cli.Setup.SetupCommand.Create());
// No response files: "@example.com" is a filter value here (logs --sender @example.com), not a file to read.
return await root.Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null }).InvokeAsync().ConfigureAwait(false);
