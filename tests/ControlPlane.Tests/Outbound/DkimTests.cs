using System.Security.Cryptography;
using Gateway.ControlPlane.Dkim;
using Gateway.ControlPlane.Onboarding;
using Gateway.Core.Dkim;
using Gateway.Core.Secrets;
using Gateway.Core.Domains;

namespace ControlPlane.Tests.Outbound;

/// <summary>DKIM records, the life cycle and key sealing as pure functions (requirements §10; docs/outbound.md).</summary>
[Trait("Kind", "Unit")]
public sealed class DkimTests
{
    private static readonly DateTimeOffset Now = new(2026, 12, 6, 10, 0, 0, TimeSpan.Zero);
    private static readonly DkimKey K1 = new("gw20261206", DkimKeyAlgorithm.Rsa, "MIIBIjANBgkq", Now);
    private static readonly DkimKey K2 = new("gw20261207", DkimKeyAlgorithm.Ed25519, "11qYAYKxCrfVS", Now);

    [Theory]
    [InlineData("v=DKIM1; k=rsa; p=MIIBIjANBgkq", true)]
    [InlineData("v=DKIM1;k=rsa;p=MIIBIj ANBgkq;", true)] // whitespace inside p= (split TXT strings) is ignored
    [InlineData("k=rsa; p=MIIBIjANBgkq", true)] // v= is optional
    [InlineData("p=MIIBIjANBgkq", true)] // k= defaults to rsa
    [InlineData("v=DKIM1; k=ed25519; p=MIIBIjANBgkq", false)] // other key type
    [InlineData("v=DKIM1; k=rsa; p=", false)] // revoked
    [InlineData("v=DKIM1; k=rsa; p=MIIBIjANBgkqX", false)]
    [InlineData("v=DKIM2; p=MIIBIjANBgkq", false)]
    [InlineData("p=MIIBIjANBgkq; p=MIIBIjANBgkq", false)] // duplicate tag: invalid list
    [InlineData("garbage", false)]
    public void Carries_Table(string published, bool expected) => Assert.Equal(expected, DkimRecord.Carries(published, DkimKeyAlgorithm.Rsa, K1.PublicKey));

    [Fact]
    public void Compare_MissingDifferentMatches()
    {
        Assert.Equal(DkimRecordMatch.Missing, DkimRecord.Compare([], K1));
        Assert.Equal(DkimRecordMatch.Different, DkimRecord.Compare(["v=DKIM1; p=other"], K1));
        Assert.Equal(DkimRecordMatch.Matches, DkimRecord.Compare(["v=DKIM1; p=other", K1.TxtValue], K1));
        Assert.Equal("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS", K2.TxtValue);
        Assert.Equal("gw20261207._domainkey.d.test", K2.RecordName("d.test"));
    }

    [Fact]
    public void NewSelector_DateBased_SuffixWhenTaken()
    {
        Assert.Equal("gw20261206", DkimLifecycle.NewSelector(Now, []));
        Assert.Equal("gw20261206-2", DkimLifecycle.NewSelector(Now, ["gw20261206"]));
        Assert.Equal("gw20261206-3", DkimLifecycle.NewSelector(Now, ["GW20261206", "gw20261206-2"]));
    }

    [Theory]
    [InlineData("s1", true)]
    [InlineData("mail.2026", true)]
    [InlineData("-bad", false)]
    [InlineData("a..b", false)]
    [InlineData("with space", false)]
    [InlineData("", false)]
    public void IsValidSelector_Table(string selector, bool valid) => Assert.Equal(valid, DkimLifecycle.IsValidSelector(selector, out _));

    public static TheoryData<string, DkimPhase, DkimRecordMatch?, DkimRecordMatch?, DkimPhase, string?> Transitions => new()
    {
        // case, phase, current record, next record, expected phase, key to forget
        { "pending, record missing", DkimPhase.PendingDns, DkimRecordMatch.Missing, null, DkimPhase.PendingDns, null },
        { "pending, other key published", DkimPhase.PendingDns, DkimRecordMatch.Different, null, DkimPhase.PendingDns, null },
        { "pending, DNS failed", DkimPhase.PendingDns, null, null, DkimPhase.PendingDns, null },
        { "pending, record matches", DkimPhase.PendingDns, DkimRecordMatch.Matches, null, DkimPhase.Active, null },
        { "active, record gone: keeps signing, reported", DkimPhase.Active, DkimRecordMatch.Missing, null, DkimPhase.Active, null },
        { "rotating, next missing", DkimPhase.Rotating, DkimRecordMatch.Matches, DkimRecordMatch.Missing, DkimPhase.Rotating, null },
        { "rotating, next DNS failed", DkimPhase.Rotating, DkimRecordMatch.Matches, null, DkimPhase.Rotating, null },
        { "rotating, next published: switch", DkimPhase.Rotating, DkimRecordMatch.Matches, DkimRecordMatch.Matches, DkimPhase.Active, "gw20261206" },
    };

    [Theory]
    [MemberData(nameof(Transitions))]
    public void Advance_Table(string name, DkimPhase phase, DkimRecordMatch? current, DkimRecordMatch? next, DkimPhase expected, string? forget)
    {
        var state = new DkimState { Phase = phase, Current = K1, Next = phase == DkimPhase.Rotating ? K2 : null, ActiveSince = phase == DkimPhase.PendingDns ? null : Now };
        var (after, forgotten) = DkimLifecycle.Advance(state, new DkimDnsView(current, next, null), Now.AddHours(1), TimeSpan.FromDays(14));
        Assert.True(expected == after.Phase, name);
        Assert.Equal(forget, forgotten);
        if (forget is not null)
        {
            Assert.Equal(K2, after.Current); // the next key signs
            Assert.Equal(K1, after.Retired); // the old record stays listed
            Assert.Equal(Now.AddHours(1).AddDays(14), after.RetiredUntil);
            Assert.Null(after.Next);
        }
    }

    [Fact]
    public void Advance_RetiredKeyAfterKeepTime_Dropped()
    {
        var state = new DkimState { Phase = DkimPhase.Active, Current = K2, Retired = K1, RetiredUntil = Now };
        Assert.Same(state, DkimLifecycle.Advance(state, new DkimDnsView(DkimRecordMatch.Matches, null, null), Now.AddSeconds(-1), TimeSpan.FromDays(14)).State);
        var (after, _) = DkimLifecycle.Advance(state, new DkimDnsView(DkimRecordMatch.Matches, null, null), Now, TimeSpan.FromDays(14));
        Assert.Null(after.Retired);
        Assert.Null(after.RetiredUntil);
    }

    [Fact]
    public void Findings_EachPhase_CodeAndRecord()
    {
        var pending = DkimLifecycle.Findings("d.test", DkimLifecycle.Enabled(K1), new DkimDnsView(DkimRecordMatch.Missing, null, null));
        var f = Assert.Single(pending);
        Assert.Equal(DkimLifecycle.FindingPendingDns, f.Code);
        Assert.Equal(FindingSeverity.Warning, f.Severity);
        Assert.Equal(new SuggestedRecord(K1.RecordName("d.test"), "TXT", K1.TxtValue), f.Record);

        var active = new DkimState { Phase = DkimPhase.Active, Current = K1, ActiveSince = Now };
        Assert.Equal(DkimLifecycle.FindingActive, Assert.Single(DkimLifecycle.Findings("d.test", active, new DkimDnsView(DkimRecordMatch.Matches, null, null))).Code);
        var broken = Assert.Single(DkimLifecycle.Findings("d.test", active, new DkimDnsView(DkimRecordMatch.Different, null, null)));
        Assert.Equal((DkimLifecycle.FindingRecordMismatch, FindingSeverity.Error), (broken.Code, broken.Severity));

        var rotating = DkimLifecycle.Rotated(active, K2);
        var codes = DkimLifecycle.Findings("d.test", rotating, new DkimDnsView(DkimRecordMatch.Matches, DkimRecordMatch.Missing, null)).Select(x => x.Code).ToList();
        Assert.Equal([DkimLifecycle.FindingActive, DkimLifecycle.FindingRotationPending], codes);

        var switched = new DkimState { Phase = DkimPhase.Active, Current = K2, Retired = K1, RetiredUntil = Now.AddDays(14) };
        Assert.Contains(DkimLifecycle.Findings("d.test", switched, new DkimDnsView(DkimRecordMatch.Matches, null, DkimRecordMatch.Matches)),
            x => x.Code == DkimLifecycle.FindingRetiredKey && x.Message.Contains("2026-12-20", StringComparison.Ordinal));
    }

    [Fact]
    public void DkimHeaders_FromOversigned_AbsentFieldsLeftOut()
    {
        var counts = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase) { ["From"] = 1, ["Subject"] = 1, ["To"] = 2, ["Received"] = 3 };
        var h = DkimHeaders.For(n => counts.GetValueOrDefault(n));
        Assert.Equal(2, h.Count(x => x == "From"));
        Assert.Equal(2, h.Count(x => x == "To"));
        Assert.DoesNotContain("Received", h);
        Assert.DoesNotContain("Cc", h);
    }

    [Theory]
    [InlineData(DkimKeyAlgorithm.Rsa)]
    [InlineData(DkimKeyAlgorithm.Ed25519)]
    public void KeyPair_PublicKeyOfPrivate_MatchesRecord(DkimKeyAlgorithm algorithm)
    {
        var pair = DkimKeyPair.Generate(algorithm);
        Assert.Equal(pair.PublicKey, DkimKeyPair.PublicKeyOf(algorithm, pair.PrivateKeyPkcs8));
        if (algorithm == DkimKeyAlgorithm.Ed25519)
        {
            Assert.Equal(32, Convert.FromBase64String(pair.PublicKey).Length); // RFC 8463 §4: the raw key
        }
        else
        {
            using var rsa = RSA.Create();
            rsa.ImportSubjectPublicKeyInfo(Convert.FromBase64String(pair.PublicKey), out _);
            Assert.Equal(2048, rsa.KeySize);
        }
    }

    [Fact]
    public void KeyEncryption_SealOpen_BoundToNameAndKek()
    {
        var kek = KeyEncryption.FromBytes(RandomNumberGenerator.GetBytes(32));
        var secret = "private key bytes"u8.ToArray();
        var sealedSecret = kek.Seal(secret, "dkim:d.test:s1");
        Assert.Equal(secret, kek.Open(sealedSecret, "dkim:d.test:s1"));
        Assert.DoesNotContain(Convert.ToBase64String(secret), sealedSecret.Ciphertext, StringComparison.Ordinal);
        Assert.Throws<SecretUnavailableException>(() => kek.Open(sealedSecret, "dkim:other.test:s1")); // copied to another domain
        Assert.Throws<SecretUnavailableException>(() => kek.Open(sealedSecret with { Ciphertext = Convert.ToBase64String(new byte[secret.Length]) }, "dkim:d.test:s1"));
        var other = KeyEncryption.FromBytes(RandomNumberGenerator.GetBytes(32));
        Assert.Contains("every program needs the same", Assert.Throws<SecretUnavailableException>(() => other.Open(sealedSecret, "dkim:d.test:s1")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KeyEncryption_Load_CreatesOwnerOnlyFile_ThenReadsIt()
    {
        var path = Path.Combine(Path.GetTempPath(), $"kek-{Guid.NewGuid():N}", "secrets.key");
        try
        {
            Assert.Throws<SecretUnavailableException>(() => KeyEncryption.Load(path, create: false));
            var created = KeyEncryption.Load(path, create: true);
            Assert.True(created.Generated);
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            }

            var again = KeyEncryption.Load(path, create: true);
            Assert.False(again.Generated);
            Assert.Equal(created.Fingerprint, again.Fingerprint);
            File.WriteAllText(path, "not a key");
            Assert.Throws<SecretUnavailableException>(() => KeyEncryption.Load(path, create: false));
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(path)!, recursive: true);
        }
    }
}
