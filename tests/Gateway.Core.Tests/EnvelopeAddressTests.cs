using CsCheck;
using Gateway.Core.Mail;

namespace Gateway.Core.Tests;

/// <summary>The one canonical envelope address (requirements §11.3): tables of spellings, and properties over random paths.</summary>
[Trait("Kind", "Unit")]
public sealed class EnvelopeAddressTests
{
    [Theory]
    [InlineData("john@corp.test", "john@corp.test")]
    [InlineData("\"john\"@corp.test", "john@corp.test")]
    [InlineData("john@corp.test.", "john@corp.test")]
    [InlineData("John@CORP.Test", "John@corp.test")]
    [InlineData("\"j.o.h.n\"@corp.test", "j.o.h.n@corp.test")]
    [InlineData("\"john smith\"@corp.test", "\"john smith\"@corp.test")]
    [InlineData("\"jo\\hn\"@corp.test", "john@corp.test")]
    [InlineData("\"a\\\"b\"@corp.test", "\"a\\\"b\"@corp.test")]
    [InlineData("john..doe@docomo.test", "\"john..doe\"@docomo.test")]
    [InlineData(".john@corp.test", "\".john\"@corp.test")]
    [InlineData("u@bücher.example", "u@xn--bcher-kva.example")]
    [InlineData("u@BÜCHER.example.", "u@xn--bcher-kva.example")]
    [InlineData("ユーザー@例え.jp", "ユーザー@xn--r8jz45g.jp")]
    [InlineData("u@[192.0.2.1]", "u@[192.0.2.1]")]
    [InlineData("u@[ipv6:2001:DB8::1]", "u@[IPv6:2001:db8::1]")]
    [InlineData("u@host_name.example", "u@host_name.example")]
    public void TryParse_Spellings_OneCanonicalForm(string mailbox, string canonical)
    {
        Assert.True(EnvelopeAddress.TryParse(mailbox, out var a, out var error), error);
        Assert.Equal(canonical, a.Address);
        Assert.Equal(EnvelopeAddress.DomainOf(canonical), a.Domain);
        Assert.False(a.HasRoutingSyntax);
    }

    [Theory]
    [InlineData("victim%evil.test@corp.test")]
    [InlineData("evil.test!victim@corp.test")]
    [InlineData("\"a@evil.test\"@corp.test")]
    [InlineData("\"victim%evil\"@corp.test")]
    public void TryParse_RoutingSyntax_Flagged(string mailbox)
    {
        Assert.True(EnvelopeAddress.TryParse(mailbox, out var a, out _));
        Assert.True(a.HasRoutingSyntax);
        Assert.True(EnvelopeAddress.HasRoutingSyntax(a.Address));
    }

    [Theory]
    [InlineData("")]
    [InlineData("john")]
    [InlineData("@corp.test")]
    [InlineData("john@")]
    [InlineData("\"a\".\\\"b.\"@evil.example")]
    [InlineData("a\\@b@corp.test")]
    [InlineData("a\"b@corp.test")]
    [InlineData("\"unclosed@corp.test")]
    [InlineData("\"a\"b@corp.test")]
    [InlineData("a b@corp.test")]
    [InlineData("a(comment)@corp.test")]
    [InlineData("a@corp..test")]
    [InlineData("a@-corp.test")]
    [InlineData("a@corp.test..")]
    [InlineData("a@co rp.test")]
    [InlineData("a@[300.1.1.1]")]
    [InlineData("a@[192.0.2]")]
    [InlineData("a@x234567890123456789012345678901234567890123456789012345678901234.test")]
    [InlineData("a\u0001@corp.test")]
    [InlineData("\"a\u0001\"@corp.test")]
    public void TryParse_NotAnAddress_FalseWithError(string mailbox)
    {
        Assert.False(EnvelopeAddress.TryParse(mailbox, out _, out var error));
        Assert.NotEmpty(error);
    }

    [Theory]
    [InlineData("john smith@corp.test", "\"john smith\"@corp.test")]
    [InlineData("john@corp.test", "john@corp.test")]
    [InlineData("a@evil.test@corp.test", "\"a@evil.test\"@corp.test")]
    [InlineData("a.\"b.@evil.example>ORCPT=rfc822;@managed.example", "\"a.\\\"b.@evil.example>ORCPT=rfc822;\"@managed.example")]
    public void TryFromUnquoted_PostfixInternalForm_SameCanonicalForm(string unquoted, string canonical)
    {
        Assert.True(EnvelopeAddress.TryFromUnquoted(unquoted, out var a, out var error), error);
        Assert.Equal(canonical, a.Address);
    }

    [Theory]
    [InlineData("\"a b\"@x.test", "a b")]
    [InlineData("\"a\\\"b\"@x.test", "a\"b")]
    [InlineData("ab@x.test", "ab")]
    public void LocalOf_Canonical_TheMailboxName(string canonical, string local) => Assert.Equal(local, EnvelopeAddress.LocalOf(canonical));

    private static readonly Gen<string> Local = Gen.OneOf(
        Gen.Char["abcXYZ09.%!@\"\\ -_+=ü"].Array[0, 8].Select(c => new string(c)),
        Gen.Char["abc."].Array[1, 6].Select(c => "\"" + new string(c) + "\""));

    private static readonly Gen<string> DomainGen = Gen.OneOf(
        Gen.Const("corp.test"), Gen.Const("CORP.test."), Gen.Const("bücher.example"), Gen.Const("a..b"), Gen.Const("[192.0.2.1]"),
        Gen.Char["abc.-_ü"].Array[0, 10].Select(c => new string(c)));

    [Fact]
    public void TryParse_RandomPaths_CanonicalFormIsAFixedPointAndAgreesWithTheUnquotedForm()
    {
        Gen.Select(Local, DomainGen).Sample((local, domain) =>
        {
            var mailbox = local + "@" + domain;
            if (!EnvelopeAddress.TryParse(mailbox, out var a, out _))
            {
                return true;
            }

            // Written again, the canonical form parses to itself; the unquoted form an MTA would pass names the same address.
            return EnvelopeAddress.TryParse(a.Address, out var again, out _) && again == a &&
                   EnvelopeAddress.TryFromUnquoted(a.Local + "@" + a.Domain, out var viaMta, out _) && viaMta.Address == a.Address &&
                   EnvelopeAddress.DomainOf(a.Address) == a.Domain &&
                   a.HasRoutingSyntax == (a.Local.IndexOfAny(['%', '!', '@']) >= 0) &&
                   !a.Address.Any(char.IsControl);
        }, iter: 20_000);
    }
}
