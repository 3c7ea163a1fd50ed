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
root.Subcommands.Add(Gateway.Cli.Setup.SetupCommand.Create());
return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
