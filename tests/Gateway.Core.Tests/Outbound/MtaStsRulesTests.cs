using Gateway.Core.Domains;
using Gateway.Core.MtaSts;
using Gateway.Core.Tls;

namespace Gateway.Core.Tests.Outbound;

/// <summary>RFC 8461 from strings: TXT records, policy files, MX patterns and the per-host plan.</summary>
[Trait("Kind", "Unit")]
public sealed class MtaStsRulesTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 6, 0, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData(new[] { "v=STSv1; id=20160831085700Z;" }, "20160831085700Z")]
    [InlineData(new[] { "v=STSv1;id=abc" }, "abc")]
    [InlineData(new[] { "v=spf1 -all", "v=STSv1; id=1;" }, "1")] // other records are ignored
    [InlineData(new[] { "v=STSv1; id=1;", "v=STSv1; id=2;" }, null)] // two policies: none (§3.1)
    [InlineData(new[] { "v=STSv1; id=bad-id;" }, null)]
    [InlineData(new[] { "v=STSv1;" }, null)]
    [InlineData(new[] { "v=STSv1; id=123456789012345678901234567890123;" }, null)] // 33 characters
    [InlineData(new string[0], null)]
    public void ParseTxt_Table(string[] records, string? id) => Assert.Equal(id, MtaStsRules.ParseTxt(records));

    [Fact]
    public void ParsePolicy_Rfc8461Example_Parsed()
    {
        var policy = MtaStsRules.ParsePolicy("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n", "1", Now, out var error);
        Assert.Null(error);
        Assert.NotNull(policy);
        Assert.Equal(MtaStsMode.Enforce, policy.Mode);
        Assert.Equal(["mail.example.com", "*.example.net", "backupmx.example.com"], policy.Mx);
        Assert.Equal(604800, policy.MaxAge);
        Assert.Equal(Now.AddSeconds(604800), policy.Expires);
    }

    [Theory]
    [InlineData("version: STSv1\nmode: testing\nmx: a.test\nmax_age: 10\n", MtaStsMode.Testing)] // LF only
    [InlineData("version: STSv1\nmode: none\nmax_age: 0\n", MtaStsMode.None)] // none needs no mx
    [InlineData("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 31557600\nextension: ignored\n", MtaStsMode.Enforce)]
    public void ParsePolicy_Valid(string text, MtaStsMode mode) => Assert.Equal(mode, MtaStsRules.ParsePolicy(text, "1", Now, out _)?.Mode);

    [Theory]
    [InlineData("version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 10\n", "version")]
    [InlineData("version: STSv1\nmode: strict\nmx: a.test\nmax_age: 10\n", "mode")]
    [InlineData("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: 31557601\n", "max_age")]
    [InlineData("version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -1\n", "max_age")]
    [InlineData("version: STSv1\nmode: enforce\nmax_age: 10\n", "mx")]
    [InlineData("version: STSv1\nmode: enforce\nmx: bad host\nmax_age: 10\n", "mx")]
    [InlineData("<html>not a policy</html>", "key: value")]
    public void ParsePolicy_Invalid_SaysWhy(string text, string why)
    {
        Assert.Null(MtaStsRules.ParsePolicy(text, "1", Now, out var error));
        Assert.Contains(why, error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("mail.example.com", "mail.example.com", true)]
    [InlineData("mail.example.com", "MAIL.Example.com.", true)]
    [InlineData("*.example.net", "mx1.example.net", true)]
    [InlineData("*.example.net", "example.net", false)]
    [InlineData("*.example.net", "a.b.example.net", false)] // one label only (§4.1)
    [InlineData("mail.example.com", "mail.example.com.evil.test", false)]
    public void Matches_Table(string pattern, string host, bool expected) => Assert.Equal(expected, MtaStsRules.Matches(pattern, host));

    [Fact]
    public void Plan_Enforce_OnlyListedHosts_VerifiedForTheirNames()
    {
        var policy = new MtaStsPolicy("1", MtaStsMode.Enforce, ["*.d.test"], 86400, Now);
        var plan = MtaStsRules.Plan("d.test", policy, ["mx1.d.test", "mx.other.test"]);
        Assert.True(plan[0].Allowed);
        Assert.Equal(TlsMode.Verify, plan[0].Tls.Mode);
        Assert.Equal("mx1.d.test", plan[0].Tls.Name);
        Assert.False(plan[1].Allowed);
        Assert.Contains("match", MtaStsRules.NoMatchingMx("d.test", policy, ["mx.other.test"]), StringComparison.Ordinal);
    }

    [Fact]
    public void Plan_TestingAndNone_EveryHostOpportunistic_TestingReports()
    {
        var testing = MtaStsRules.Plan("d.test", new MtaStsPolicy("1", MtaStsMode.Testing, ["mx1.d.test"], 60, Now), ["mx1.d.test", "mx2.d.test"]);
        Assert.All(testing, p => Assert.True(p.Allowed && p.Tls.Mode == TlsMode.Opportunistic && p.Tls.Report));
        Assert.Contains("not listed", MtaStsRules.WouldFail(testing[1].Tls, TlsObservation.None), StringComparison.Ordinal);
        Assert.Contains("does not offer STARTTLS", MtaStsRules.WouldFail(testing[0].Tls, TlsObservation.None), StringComparison.Ordinal);
        Assert.Null(MtaStsRules.WouldFail(testing[0].Tls, new TlsObservation(true, "TLSv1.3", true, null)));

        var none = MtaStsRules.Plan("d.test", new MtaStsPolicy("1", MtaStsMode.None, [], 60, Now), ["mx.x.test"]);
        Assert.Same(TlsRequirement.Opportunistic, Assert.Single(none).Tls);
        Assert.Same(TlsRequirement.Opportunistic, Assert.Single(MtaStsRules.Plan("d.test", null, ["mx.x.test"])).Tls);
    }
}
