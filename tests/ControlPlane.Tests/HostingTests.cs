using Gateway.Api.V1;
using Gateway.ControlPlane;
using Gateway.Testing;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Grpc.Reflection.V1Alpha;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Grpc.Core.Interceptors;

namespace ControlPlane.Tests;

/// <summary>Server reflection, grpc.health.v1, the generated operator key and start-up validation.</summary>
[Trait("Kind", "Integration")]
public sealed class HostingTests(ControlPlaneFixture fx) : IClassFixture<ControlPlaneFixture>
{
    [Fact]
    public async Task Reflection_ListsGatewayServices_WithoutKey()
    {
        var client = new ServerReflection.ServerReflectionClient(fx.Channel);
        using var call = client.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { FileContainingSymbol = "gateway.v1.DomainService" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var services = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("gateway.v1.TenantService", services);
        Assert.Contains("gateway.v1.DomainService", services);
        Assert.Contains("grpc.health.v1.Health", services);
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        Assert.NotEmpty(call.ResponseStream.Current.FileDescriptorResponse.FileDescriptorProto);
    }

    [Fact]
    public async Task Health_Serving_WithoutKey()
    {
        var health = new Health.HealthClient(fx.Channel);
        var reply = await health.CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, reply.Status);
    }

    [Fact]
    public async Task OperatorKey_NotConfigured_GeneratedIntoOwnerOnlyFile_AndAccepted()
    {
        await using var redis = await RedisServer.StartAsync();
        var dir = Path.Combine(Path.GetTempPath(), "gw-op-" + Guid.NewGuid().ToString("N")[..8]);
        var keyFile = Path.Combine(dir, "sub", "operator.key");
        try
        {
            var app = ControlPlaneApp.Build(["--urls", "http://127.0.0.1:0", "--ControlPlane:HttpUrl", "http://127.0.0.1:0", "--Gateway:Redis", redis.ConnectionString, "--Gateway:OperatorKeyFile", keyFile,
                "--Logging:LogLevel:Default", "Warning"]);
            await using (app)
            {
                await app.StartAsync();
                await app.Services.GetRequiredService<OperatorKeyBootstrap>().Ready.WaitAsync(TimeSpan.FromSeconds(10));
                Assert.True(File.Exists(keyFile));
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyFile));
                var key = (await File.ReadAllTextAsync(keyFile)).Trim();
                Assert.StartsWith("gwo_", key, StringComparison.Ordinal);

                using var channel = GrpcChannel.ForAddress(ControlPlaneApp.GrpcAddress(app));
                var withKey = new TenantService.TenantServiceClient(channel.Intercept(m => { m.Add("authorization", "Bearer " + key); return m; }));
                await withKey.CreateTenantAsync(new CreateTenantRequest { CompanyId = "acme" });
                var wrong = new TenantService.TenantServiceClient(channel.Intercept(m => { m.Add("authorization", "Bearer gwo_" + new string('0', 64)); return m; }));
                await RpcAssert.ThrowsAsync(StatusCode.Unauthenticated, wrong.ListTenantsAsync(new ListTenantsRequest()));

                // Only the hash is stored.
                using var mux = await redis.ConnectAsync();
                var stored = await mux.GetDatabase().HashGetAsync(Gateway.Core.Storage.RedisKeys.OperatorKey, "sha256");
                Assert.Equal(Gateway.ControlPlane.Application.ApiKeys.Hash(key), stored.ToString());
                await app.StopAsync();
            }

            // A restart keeps the key (the file is not rewritten).
            var app2 = ControlPlaneApp.Build(["--urls", "http://127.0.0.1:0", "--ControlPlane:HttpUrl", "http://127.0.0.1:0", "--Gateway:Redis", redis.ConnectionString, "--Gateway:OperatorKeyFile", keyFile,
                "--Logging:LogLevel:Default", "Warning"]);
            await using (app2)
            {
                var before = File.GetLastWriteTimeUtc(keyFile);
                await app2.StartAsync();
                await app2.Services.GetRequiredService<OperatorKeyBootstrap>().Ready.WaitAsync(TimeSpan.FromSeconds(10));
                Assert.Equal(before, File.GetLastWriteTimeUtc(keyFile));
                await app2.StopAsync();
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("--Gateway:Redis", "")]
    [InlineData("--Gateway:GatewayDomain", "not a domain")]
    [InlineData("--Gateway:VerificationPrefix", "Bad Prefix")]
    public async Task Start_InvalidConfiguration_FailsWithClearMessage(string key, string value)
    {
        var app = ControlPlaneApp.Build(["--urls", "http://127.0.0.1:0", "--ControlPlane:HttpUrl", "http://127.0.0.1:0", key, value]);
        await using (app)
        {
            var e = await Assert.ThrowsAnyAsync<Microsoft.Extensions.Options.OptionsValidationException>(() => app.StartAsync());
            Assert.Contains(key.TrimStart('-').Split(':')[1], e.Message, StringComparison.Ordinal);
        }
    }
}
