using System.Text.RegularExpressions;
using Gateway.Api.V1;
using Gateway.Testing;

namespace EndToEnd.Tests;

/// <summary>A running ControlPlane (real Kestrel listener, real redis-server) and a tenant key for the client recipes.</summary>
public sealed class RecipeControlPlaneFixture : IAsyncLifetime
{
    public RedisServer Redis { get; private set; } = null!;

    public ControlPlaneHost Host { get; private set; } = null!;

    public string Key { get; private set; } = null!;

    public DomainService.DomainServiceClient Domains { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        Host = await ControlPlaneHost.StartAsync(Redis.ConnectionString);
        (_, Key) = await Host.NewTenantAsync("recipe");
        Domains = new DomainService.DomainServiceClient(Host.WithKey(Key));
    }

    public async Task DisposeAsync()
    {
        if (Host is not null)
        {
            await Host.DisposeAsync();
        }

        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }
    }
}

/// <summary>
/// docs/clients.md's recipes, run as an integrator would, from the page's own code blocks (those marked
/// <c>&lt;!-- tested: … --&gt;</c>) against a running ControlPlane: C# from the packed <c>Gateway.Api</c> package in
/// a fresh project outside the solution, and Node (JavaScript, and the TypeScript type check) with packages from
/// npm. Python and Go are not run: this machine reaches no PyPI or Go module proxy.
/// </summary>
[Trait("Kind", "Integration")]
public sealed partial class ClientRecipeTests(RecipeControlPlaneFixture fx) : IClassFixture<RecipeControlPlaneFixture>
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task CSharpRecipe_PackedPackageInFreshProject_CreatesDomainAndPrintsFieldViolations()
    {
        var root = Processes.RepositoryRoot();
        var work = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "gw-csclient-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        // A version of its own, so the global package folder never serves an older build of the same number.
        var version = "1.0.0-test." + Guid.NewGuid().ToString("N")[..8];
        var configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        try
        {
            var feed = Path.Combine(work, "feed");
            var project = Path.Combine(work, "GatewayClient");
            await RunOkAsync(root, "dotnet", "pack", Path.Combine(root, "src", "Gateway.Api", "Gateway.Api.csproj"), "-c", configuration, "--no-build",
                "-o", feed, $"-p:Version={version}", "-nologo");
            var nupkg = Assert.Single(Directory.GetFiles(feed, "*.nupkg"));
            Assert.Equal($"Gateway.Api.{version}.nupkg", Path.GetFileName(nupkg));
            using (var zip = System.IO.Compression.ZipFile.OpenRead(nupkg))
            {
                var entries = zip.Entries.Select(e => e.FullName).ToList();
                Assert.Contains("README.md", entries);
                Assert.Contains("protos/gateway/v1/domain.proto", entries);
                Assert.Contains("protos/google/api/annotations.proto", entries);
                Assert.Contains("lib/net10.0/Gateway.Api.dll", entries);
            }

            // The recipe: a console project, a nuget.config with the package folder, the package, the page's Program.cs.
            await RunOkAsync(work, "dotnet", "new", "console", "-o", project, "--no-restore");
            await RunOkAsync(project, "dotnet", "new", "nugetconfig");
            await RunOkAsync(project, "dotnet", "nuget", "add", "source", feed, "--name", "gateway", "--configfile", "nuget.config");
            await RunOkAsync(project, "dotnet", "add", "package", "Gateway.Api", "--version", version);
            await File.WriteAllTextAsync(Path.Combine(project, "Program.cs"), Recipe("csharp Program.cs"));
            var csproj = await File.ReadAllTextAsync(Path.Combine(project, "GatewayClient.csproj"));
            Assert.Single(PackageReference().Matches(csproj)); // only the client package

            var name = $"cs{Guid.NewGuid().ToString("N")[..8]}.example.com";
            var run = await RunAsync(project, new() { ["GATEWAY_ENDPOINT"] = fx.Host.Address, ["GATEWAY_KEY"] = fx.Key }, "dotnet", "run", "--", name);
            Assert.True(run.ExitCode == 0, run.ToString());
            var saved = await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = name });
            Assert.Contains($"created {name}; prove ownership with TXT \"{saved.Verification.TxtRecord}\"", run.Out, StringComparison.Ordinal);
            Assert.Contains("invalid: InvalidArgument", run.Out, StringComparison.Ordinal);
            Assert.True(Regex.IsMatch(run.Out, @"\n  domain\.name: \S"), run.ToString());
            Assert.True(saved.InboundEnabled);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
            var cached = Path.Combine(Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages"),
                "gateway.api", version);
            if (Directory.Exists(cached))
            {
                Directory.Delete(cached, recursive: true);
            }
        }
    }

    [Fact]
    public async Task NodeRecipe_ProtoLoaderFromNpm_CreatesDomainAndPrintsFieldViolations_TypeScriptTypeChecks()
    {
        var root = Processes.RepositoryRoot();
        var work = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "gw-nodeclient-" + Guid.NewGuid().ToString("N")[..8])).FullName;
        try
        {
            // The page's npm commands (the npm cache may serve them).
            await RunOkAsync(work, "npm", "init", "-y");
            await RunOkAsync(work, "npm", "install", "--no-audit", "--no-fund", "--prefer-offline",
                "@grpc/grpc-js@1", "@grpc/proto-loader@0.8", "google-proto-files@6", "protobufjs@7");
            await File.WriteAllTextAsync(Path.Combine(work, "client.js"), Recipe("node client.js"));
            var env = new Dictionary<string, string>
            {
                ["GATEWAY_ENDPOINT"] = fx.Host.Address.Replace("http://", string.Empty, StringComparison.Ordinal),
                ["GATEWAY_KEY"] = fx.Key,
                ["GATEWAY_PROTOS"] = Path.Combine(root, "protos"),
            };

            var name = $"js{Guid.NewGuid().ToString("N")[..8]}.example.com";
            var run = await RunAsync(work, env, "node", "client.js", name);
            Assert.True(run.ExitCode == 0, run.ToString());
            var saved = await fx.Domains.GetDomainAsync(new GetDomainRequest { Name = name });
            Assert.Contains($"created {name}; prove ownership with TXT \"{saved.Verification.TxtRecord}\"", run.Out, StringComparison.Ordinal);
            Assert.Contains("invalid: INVALID_ARGUMENT", run.Out, StringComparison.Ordinal);
            Assert.True(Regex.IsMatch(run.Out, @"\n  domain\.name: \S"), run.ToString());

            // TypeScript: proto-loader's type generator, the typed client compiled with --strict, then run.
            await RunOkAsync(work, "npm", "install", "--no-audit", "--no-fund", "--prefer-offline", "--save-dev", "typescript@5", "@types/node@20");
            await RunOkAsync(work, "npx", "proto-loader-gen-types", "--keepCase", "--longs=String", "--enums=String", "--defaults", "--grpcLib=@grpc/grpc-js",
                "-I", env["GATEWAY_PROTOS"], "-I", "node_modules/google-proto-files", "-O", "generated", "gateway/v1/domain.proto");
            File.Delete(Path.Combine(work, "client.js"));
            await File.WriteAllTextAsync(Path.Combine(work, "client.ts"), Recipe("typescript client.ts"));
            await RunOkAsync(work, "npx", "tsc", "--strict", "--esModuleInterop", "--module", "commonjs", "--target", "es2020", "client.ts");
            var typed = $"ts{Guid.NewGuid().ToString("N")[..8]}.example.com";
            var tsRun = await RunAsync(work, env, "node", "client.js", typed);
            Assert.True(tsRun.ExitCode == 0, tsRun.ToString());
            Assert.Contains($"created {typed}; prove ownership with TXT \"tmes=", tsRun.Out, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>The code block that follows <c>&lt;!-- tested: {marker} --&gt;</c> in docs/clients.md.</summary>
    private static string Recipe(string marker)
    {
        var page = File.ReadAllText(Path.Combine(Processes.RepositoryRoot(), "docs", "clients.md"));
        var at = page.IndexOf($"<!-- tested: {marker} -->", StringComparison.Ordinal);
        Assert.True(at >= 0, $"docs/clients.md has no block marked '{marker}'");
        var open = page.IndexOf("```", at, StringComparison.Ordinal);
        var start = page.IndexOf('\n', open) + 1;
        var end = page.IndexOf("\n```", start, StringComparison.Ordinal);
        return page[start..end] + "\n";
    }

    [GeneratedRegex("<PackageReference ")]
    private static partial Regex PackageReference();

    private static async Task RunOkAsync(string directory, string file, params string[] args)
    {
        var r = await RunAsync(directory, new Dictionary<string, string>(), file, args);
        Assert.True(r.ExitCode == 0, $"{file} {string.Join(' ', args)}: {r}");
    }

    private static Task<CliResult> RunAsync(string directory, Dictionary<string, string> env, string file, params string[] args) =>
        Processes.RunAsync(directory, env, StepTimeout, file, args);
}
