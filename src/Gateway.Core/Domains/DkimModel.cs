namespace Gateway.Core.Domains;

/// <summary>The key types of DKIM signing keys the gateway generates (requirements §10).</summary>
public enum DkimKeyAlgorithm
{
    /// <summary>RSA-2048 with SHA-256 (<c>a=rsa-sha256</c>, RFC 6376 / RFC 8301). The default: every verifier knows it.</summary>
    Rsa = 0,

    /// <summary>Ed25519 with SHA-256 (<c>a=ed25519-sha256</c>, RFC 8463). Short records; not every verifier knows it yet.</summary>
    Ed25519 = 1,
}

/// <summary>Where a domain's DKIM life cycle stands (docs/outbound.md "DKIM life cycle").</summary>
public enum DkimPhase
{
    /// <summary>A key was generated; its TXT record is not (yet) seen in DNS with the right key. Nothing is signed.</summary>
    PendingDns = 0,

    /// <summary>The current key's record is published: outbound mail is signed with it.</summary>
    Active = 1,

    /// <summary>Signing with the current key while the next key's record is awaited; the switch happens once DNS shows it.</summary>
    Rotating = 2,
}

/// <summary>One DKIM key as the domain shows it: never the private key (that lives encrypted in Gateway.Core.Dkim.DkimKeyStore).</summary>
/// <param name="Selector">The selector: the record lives at <c>&lt;selector&gt;._domainkey.&lt;domain&gt;</c>.</param>
/// <param name="PublicKey">The <c>p=</c> value: base64 of the SubjectPublicKeyInfo (RSA) or of the 32-byte key (Ed25519).</param>
public sealed record DkimKey(string Selector, DkimKeyAlgorithm Algorithm, string PublicKey, DateTimeOffset CreateTime)
{
    /// <summary>The DNS owner name of the key's TXT record.</summary>
    public string RecordName(string domain) => $"{Selector}._domainkey.{domain}";

    /// <summary>The exact TXT text to publish (RFC 6376 §3.6.1).</summary>
    public string TxtValue => FormatRecord(Algorithm, PublicKey);

    /// <summary>The TXT text of a key record: <c>v=DKIM1; k=…; p=…</c>.</summary>
    public static string FormatRecord(DkimKeyAlgorithm algorithm, string publicKey) =>
        $"v=DKIM1; k={KeyType(algorithm)}; p={publicKey}";

    /// <summary>The <c>k=</c> value of a key type.</summary>
    public static string KeyType(DkimKeyAlgorithm algorithm) => algorithm == DkimKeyAlgorithm.Ed25519 ? "ed25519" : "rsa";
}

/// <summary>
/// A domain's DKIM state, stored in its <see cref="Domains.DomainConfig"/> so that every Deliverer's snapshot follows it
/// within a second (requirements §3 "Change propagation"). Changed only by the ControlPlane's DkimManager.
/// </summary>
public sealed record DkimState
{
    public required DkimPhase Phase { get; init; }

    /// <summary>The key that signs (Active, Rotating), or the one waiting for its record (PendingDns).</summary>
    public required DkimKey Current { get; init; }

    /// <summary>While Rotating: the next key, waiting for its record to appear in DNS.</summary>
    public DkimKey? Next { get; init; }

    /// <summary>After a switch: the previous key, whose record must stay published until <see cref="RetiredUntil"/>.</summary>
    public DkimKey? Retired { get; init; }

    /// <summary>Until when the retired key's record must stay in DNS (queued mail signed with it may still be delivered).</summary>
    public DateTimeOffset? RetiredUntil { get; init; }

    /// <summary>When the current key started signing.</summary>
    public DateTimeOffset? ActiveSince { get; init; }

    /// <summary>True when outbound mail is signed (with <see cref="Current"/>).</summary>
    public bool Signs => Phase is DkimPhase.Active or DkimPhase.Rotating;

    /// <summary>True while a record is awaited in DNS (the background job checks more often).</summary>
    public bool AwaitsDns => Phase is DkimPhase.PendingDns or DkimPhase.Rotating;
}
