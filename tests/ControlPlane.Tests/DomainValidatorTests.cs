using Gateway.Core.Domains;
using Gateway.Core.Errors;
using Gateway.ControlPlane.Application;
using Gateway.Core;

namespace ControlPlane.Tests;

[Trait("Kind", "Unit")]
public sealed class DomainValidatorTests
{
    private static DomainValidator Validator(bool allowLoopback = false, string[]? providers = null) =>
        new(new GatewayOptions { AllowLoopbackDestinations = allowLoopback, PublicProviders = providers, GatewayDomain = "gw.example.net" });

    private static (DomainSettings Settings, List<FieldViolation> Violations) Normalize(DomainValidator v, DomainSettings input)
    {
        var violations = new List<FieldViolation>();
        var settings = v.NormalizeSettings("example.com", input, "domain", violations);
        return (settings, violations);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.0.0.2")]
    [InlineData("::1")]
    [InlineData("localhost")]
    public void LoopbackHost_RefusedUnlessAllowed(string host)
    {
        var input = new DomainSettings(true, [new InboundServer("*@example.com", host, 25, 10)], OutboundSettings.Disabled);
        var (_, refused) = Normalize(Validator(), input);
        Assert.Equal("domain.inbound_servers[0].host", Assert.Single(refused).Field);

        var (allowed, none) = Normalize(Validator(allowLoopback: true), input);
        Assert.Empty(none);
        Assert.Single(allowed.InboundServers);
    }

    [Fact]
    public void PublicProviders_ConfigurationReplacesDefaultList()
    {
        var violations = new List<FieldViolation>();
        var v = Validator(providers: ["corp-mail.example"]);
        Assert.Equal("gmail.com", v.NormalizeNewDomainName("gmail.com", "domain.name", violations));
        Assert.Empty(violations);
        v.NormalizeNewDomainName("eu.corp-mail.example", "domain.name", violations);
        Assert.Contains("public mailbox provider", Assert.Single(violations).Description, StringComparison.Ordinal);
    }

    [Fact]
    public void DefaultProviders_AndGatewayDomain_Refused()
    {
        foreach (var name in new[] { "gmail.com", "Hotmail.com", "mail.yahoo.com", "icloud.com", "gw.example.net", "acme.in.gw.example.net" })
        {
            var violations = new List<FieldViolation>();
            Validator().NormalizeNewDomainName(name, "domain.name", violations);
            Assert.Single(violations);
        }
    }

    [Fact]
    public void Recipient_LocalPartLowerCased_UnicodeAllowed_LongRefused()
    {
        var violations = new List<FieldViolation>();
        Assert.Equal("john.doe+tag@example.com", DomainValidator.NormalizeRecipient("example.com", "John.Doe+Tag@EXAMPLE.com.", "r", violations));
        Assert.Equal("太郎@example.com", DomainValidator.NormalizeRecipient("example.com", "太郎@example.com", "r", violations));
        Assert.Equal("*@example.com", DomainValidator.NormalizeRecipient("example.com", "*@Example.Com", "r", violations));
        Assert.Empty(violations);
        DomainValidator.NormalizeRecipient("example.com", new string('a', 65) + "@example.com", "r", violations);
        Assert.Contains("64", Assert.Single(violations).Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Recipient_SubdomainIsNotTheDomain()
    {
        var violations = new List<FieldViolation>();
        DomainValidator.NormalizeRecipient("example.com", "*@sales.example.com", "r", violations);
        Assert.Single(violations);
    }

    [Fact]
    public void Outbound_NoSource_IsAllowedButFlagged()
    {
        var (settings, violations) = Normalize(Validator(), new DomainSettings(false, [], new OutboundSettings(true, false, false, [])));
        Assert.Empty(violations);
        Assert.True(settings.Outbound.HasNoSource);
    }

    [Fact]
    public void UpdateMask_Apply_OnlyNamedFields()
    {
        var current = new DomainSettings(true, [new InboundServer("*@example.com", "192.0.2.1", 25, 10)], new OutboundSettings(true, true, false, ["192.0.2.9"]));
        var patch = new DomainSettings(false, [], new OutboundSettings(false, false, true, []));
        var violations = new List<FieldViolation>();

        var onlyGoogle = DomainUpdateMask.Apply(current, patch, DomainUpdateMask.Parse(["outbound.google_workspace"], "m", violations));
        Assert.Equal(current.Outbound with { GoogleWorkspace = true }, onlyGoogle.Outbound);
        Assert.True(onlyGoogle.InboundEnabled);
        Assert.Same(current.InboundServers, onlyGoogle.InboundServers);

        var wholeOutbound = DomainUpdateMask.Apply(current, patch, DomainUpdateMask.Parse(["outbound"], "m", violations));
        Assert.Equal(patch.Outbound, wholeOutbound.Outbound);

        var all = DomainUpdateMask.Apply(current, patch, DomainUpdateMask.Parse([], "m", violations));
        Assert.False(all.InboundEnabled);
        Assert.Empty(all.InboundServers);
        Assert.Empty(violations);

        DomainUpdateMask.Parse(["verification.verified"], "update_mask", violations);
        Assert.Equal("update_mask", Assert.Single(violations).Field);
    }
}
