using Gateway.Core.Domains;
using Gateway.ControlPlane.Onboarding;

namespace ControlPlane.Tests.Onboarding;

/// <summary>Pure decisions of onboarding: when the background job owes a domain a check, the status rule, the SPF fix.</summary>
[Trait("Kind", "Unit")]
public sealed class OnboardingDecisionTests
{
    private static readonly DateTimeOffset Now = new(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private static readonly OnboardingOptions Options = new()
    {
        UnverifiedRecheckInterval = TimeSpan.FromMinutes(5),
        HealthRefreshInterval = TimeSpan.FromHours(1),
    };

    private static DomainConfig Domain(bool verified, long revision) => new()
    {
        Name = "example.com",
        CompanyId = "acme",
        Settings = DomainSettings.Empty,
        Verification = new VerificationState(new string('0', 32), verified, verified ? VerificationMethod.Txt : VerificationMethod.None, null),
        CreateTime = Now,
        UpdateTime = Now,
        Revision = revision,
    };

    private static StoredHealth Health(long revision, double minutesAgo, double? verifyMinutesAgo = null) =>
        new(new HealthReport("example.com", DomainStatus.Completed, [], Now.AddMinutes(-minutesAgo), revision),
            verifyMinutesAgo is { } v ? Now.AddMinutes(-v) : null);

    public static TheoryData<string, bool, StoredHealth, CheckDue> Cases => new()
    {
        { "never checked", true, StoredHealth.Never, CheckDue.Full },
        { "changed since the check", true, Health(revision: 2, minutesAgo: 1), CheckDue.Full },
        { "fresh, verified", true, Health(revision: 3, minutesAgo: 59), CheckDue.No },
        { "old, verified", true, Health(revision: 3, minutesAgo: 60), CheckDue.Full },
        { "unverified, checked recently", false, Health(revision: 3, minutesAgo: 4), CheckDue.No },
        { "unverified, checked 5 minutes ago", false, Health(revision: 3, minutesAgo: 5), CheckDue.Verify },
        { "unverified, asked DNS recently", false, Health(revision: 3, minutesAgo: 30, verifyMinutesAgo: 2), CheckDue.No },
        { "unverified, asked DNS long ago", false, Health(revision: 3, minutesAgo: 30, verifyMinutesAgo: 6), CheckDue.Verify },
        { "unverified, old health", false, Health(revision: 3, minutesAgo: 61, verifyMinutesAgo: 1), CheckDue.Full },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void WhatIsDue_Table(string situation, bool verified, StoredHealth stored, CheckDue expected) =>
        Assert.True(expected == OnboardingRound.WhatIsDue(Domain(verified, revision: 3), stored, Now, Options), situation);

    [Fact]
    public void StatusOf_WarningsAndErrorsRequireConfiguration_InfoDoesNot()
    {
        Assert.Equal(DomainStatus.Completed, HealthReport.StatusOf([]));
        Assert.Equal(DomainStatus.Completed, HealthReport.StatusOf([new Finding("SPF_PASS", FindingSeverity.Info, "ok")]));
        Assert.Equal(DomainStatus.ConfigurationRequired, HealthReport.StatusOf([new Finding("SPF_TEMPERROR", FindingSeverity.Warning, "x")]));
        Assert.Equal(DomainStatus.ConfigurationRequired, HealthReport.StatusOf([new Finding("SPF_MISSING", FindingSeverity.Error, "x")]));
    }

    [Theory]
    [InlineData("v=spf1 mx -all", "v=spf1 include:_spf.gw.example mx -all")]
    [InlineData("v=spf1", "v=spf1 include:_spf.gw.example ~all")]
    [InlineData("v=spf1  redirect=_spf.example.com", "v=spf1 include:_spf.gw.example redirect=_spf.example.com")]
    public void WithInclude_PutsTheIncludeFirst(string record, string expected) =>
        Assert.Equal(expected, SpfFindings.WithInclude(record, "include:_spf.gw.example"));
}
