using System.Net;
using Gateway.Api.V1;
using Gateway.Testing;
using MailKit.Net.Smtp;

namespace Deliverer.Tests;

/// <summary>A gateway of its own: the test below flushes its Redis.</summary>
public sealed class DataLossFixture : GatewayFixture
{
}

/// <summary>
/// requirements §4 rule 5, §8 (issue 15) for the Deliverer: after Redis FLUSHALL its intake keeps accepting RCPT for a
/// domain managed a moment before and answers DATA with 451 (the domain's record in the queue is gone; the sender retries),
/// never 554 NO-DOMAIN from the loss; /healthz says it holds its last good snapshot; only the operator's acceptance applies
/// the new (empty) state.
/// </summary>
[Trait("Kind", "Integration")]
public sealed class DataLossTests(DataLossFixture fx) : IClassFixture<DataLossFixture>
{
    [Fact]
    public async Task FlushAll_IntakeAnswers451NotNoDomain_Unhealthy_NoDomainOnlyOnceAccepted()
    {
        await using var sink = SmtpSink.Start("127.0.0.64");
        var d = await fx.CreateInboundDomainAsync(GatewayFixture.NewDomainName("loss"), ("*@{d}", sink.Host, sink.Port, 10));
        using var http = new HttpClient { BaseAddress = new Uri(fx.DelivererHttp!) };

        using (var admin = await fx.Redis.ConnectAsync())
        {
            await admin.GetServers()[0].FlushAllDatabasesAsync();
        }

        await Eventually.WaitAsync(async () =>
        {
            using var r = await http.GetAsync(new Uri("/healthz", UriKind.Relative));
            return r.StatusCode == HttpStatusCode.ServiceUnavailable &&
                   (await r.Content.ReadAsStringAsync()).Contains("holding the last good snapshot", StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(10), "/healthz reports the hold");

        // RCPT is decided from the kept snapshot (accepted); the queue's record of the domain is gone, so DATA is answered
        // 451: the sender's MTA keeps the message and retries, nothing is refused for good.
        var deferred = await Assert.ThrowsAsync<SmtpCommandException>(() => fx.SendAsync("s@remote.test", ["user@" + d], subject: "after the loss"));
        Assert.Equal(451, (int)deferred.StatusCode);
        Assert.Equal(SmtpErrorCode.MessageNotAccepted, deferred.ErrorCode);

        var config = new ConfigStateService.ConfigStateServiceClient(fx.WithKey(GatewayFixture.OperatorKey));
        await config.AcceptConfigStateAsync(new AcceptConfigStateRequest { Reason = "FLUSHALL in a test" });
        await Eventually.WaitAsync(async () =>
        {
            try
            {
                await fx.SendAsync("s@remote.test", ["user@" + d], subject: "after the acceptance");
                return false;
            }
            catch (SmtpCommandException e) when ((int)e.StatusCode == 554)
            {
                return true;
            }
        }, TimeSpan.FromSeconds(10), "NO-DOMAIN once the empty state is accepted");
        using var healthy = await http.GetAsync(new Uri("/healthz", UriKind.Relative));
        Assert.NotEqual(HttpStatusCode.ServiceUnavailable, healthy.StatusCode);
    }
}
