namespace Deliverer.Tests;

/// <summary>Retries after 1 second instead of 5 minutes, so "the next attempt" happens within a test.</summary>
public sealed class FastRetryFixture : GatewayFixture
{
    protected override IEnumerable<string> DelivererSettings =>
        ["--Gateway:Queue:FirstRetryDelay=00:00:01", "--Gateway:Queue:MaxRetryDelay=00:00:01"];
}

/// <summary>Messages expire 3 seconds after intake (requirements §6's 10 days, shortened).</summary>
public sealed class ExpiryFixture : GatewayFixture
{
    protected override IEnumerable<string> DelivererSettings =>
        ["--Gateway:Queue:FirstRetryDelay=00:00:00.500", "--Gateway:Queue:MaxRetryDelay=00:00:00.500", "--Gateway:Queue:MaxLifetime=00:00:03"];
}

/// <summary>The Deliverer as its own OS process (SIGKILL-able), Redis with AOF, 2-second leases.</summary>
public sealed class ProcessFixture : GatewayFixture
{
    protected override bool DelivererAsProcess => true;

    protected override bool AppendOnly => true;

    protected override IEnumerable<string> DelivererSettings => ["--Gateway:Queue:Lease=00:00:02"];
}

/// <summary>An intake that trusts only 127.0.0.1 and has small limits, to test them cheaply.</summary>
public sealed class IntakeFixture : GatewayFixture
{
    public const int MaxSize = 4096;
    public const int MaxRecipients = 3;

    protected override IEnumerable<string> DelivererSettings =>
    [
        "--Gateway:Deliverer:TrustedNetworks:0=127.0.0.1",
        $"--Gateway:Deliverer:MaxMessageSize={MaxSize}",
        $"--Gateway:Deliverer:MaxRecipients={MaxRecipients}",
        "--Gateway:Deliverer:MaxHops=5",
        "--Gateway:Deliverer:MaxErrors=5",
    ];
}

/// <summary>Redis with AOF, restarted and stopped by the tests (own class: the others keep a steady Redis).</summary>
public sealed class OutageFixture : GatewayFixture
{
    protected override bool AppendOnly => true;
}
