using PolicyBench;

// bench/policy/run.sh drives these; see docs/benchmarks.md.
return args.Length == 0 ? Usage() : args[0] switch
{
    "load" => await LoadGenerator.RunAsync(Options.Parse(args[1..])),
    "trivial" => await TrivialServer.RunAsync(Options.Parse(args[1..])),
    "seed" => await Seeder.RunAsync(Options.Parse(args[1..])),
    "report" => Report.Run(Options.Parse(args[1..])),
    "loadtime" => await LoadTime.RunAsync(Options.Parse(args[1..])),
    "freeport" => FreePortCommand.Run(),
    "rules" => WorstRules.Run(Options.Parse(args[1..])),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage: PolicyBench <command> [--name value ...]
          load     --target ip:port --connections N --duration S --warmup S --server LABEL --domains N --out FILE
                   [--accept ACTION] [--reject ACTION] [--all ACTION]
          trivial  --listen ip:port          answers every request with action=DUNNO, no work
          seed     --redis CONFIG --to N [--names FILE]   managed domains b0.example.net … b<N-1>.example.net
          report   --in FILE                 markdown table with ratios and targets
          loadtime --redis CONFIG [--rounds N]  time of a full snapshot load (read, build)
          freeport                           prints a free loopback TCP port
          rules    [--seconds S]             policy decision with the worst rule set the tenant limits allow (p50/p99/max)
        """);
    return 2;
}
