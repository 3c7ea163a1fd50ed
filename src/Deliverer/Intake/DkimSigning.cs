using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Gateway.Core.Dkim;
using Gateway.Core.Secrets;
using MimeKit;
using MimeKit.Cryptography;
using Org.BouncyCastle.Crypto;
using Org.BouncyCastle.Security;
using StackExchange.Redis;
using Gateway.Core.Domains;

namespace Gateway.Deliverer.Intake;

/// <summary>The domain's DKIM key could not be loaded (Redis away, key-encryption key missing or different): the intake answers 451.</summary>
public sealed class DkimUnavailableException(string message, Exception? inner = null) : Exception(message, inner)
{
    public DkimUnavailableException() : this("DKIM signing unavailable")
    {
    }

    public DkimUnavailableException(string message) : this(message, null)
    {
    }
}

/// <summary>
/// Signs outbound mail once, at intake, before it is stored (requirements §10; docs/outbound.md "What is signed"): MimeKit's
/// <see cref="DkimSigner"/>, relaxed/relaxed, the header list of <see cref="DkimHeaders"/> with From oversigned, d= the
/// managed (envelope sender's) domain, s= its active selector. Only the <c>DKIM-Signature</c> field is added in front of the
/// stored bytes; the rest of the message is stored as received, so what is delivered is what was signed. Keys are read
/// from <see cref="DkimKeyStore"/> once per selector and kept in memory (a selector's key never changes).
/// </summary>
public sealed partial class DkimSigning(DkimKeyStore keys, OutboundMetrics metrics, ILogger<DkimSigning> logger)
{
    private readonly ConcurrentDictionary<(string Domain, string Selector, string PublicKey), Lazy<Task<Signer>>> _signers = new();

    /// <summary>
    /// Signs the outbound copies of a message at intake: <paramref name="copies"/> are the (domain, direction) of each copy to
    /// be stored; returns the bytes to store for a copy (signed for an outbound copy of a domain whose DKIM key is active).
    /// </summary>
    public async Task<Func<string, Gateway.Core.Mail.Direction, byte[]>> SignCopiesAsync(Gateway.Core.Snapshot.ConfigSnapshot snapshot, IEnumerable<(string Domain, Gateway.Core.Mail.Direction Direction)> copies, byte[] body)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(copies);
        Dictionary<string, byte[]>? signed = null;
        foreach (var domain in copies.Where(c => c.Direction == Gateway.Core.Mail.Direction.Outbound).Select(c => c.Domain).Distinct(StringComparer.Ordinal))
        {
            if (snapshot.Find(domain)?.Config.Dkim is { Signs: true } state)
            {
                signed ??= new Dictionary<string, byte[]>(StringComparer.Ordinal);
                signed[domain] = await SignAsync(domain, state, body).ConfigureAwait(false);
            }
        }

        return signed is null ? (_, _) => body : (domain, direction) =>
            direction == Gateway.Core.Mail.Direction.Outbound && signed.TryGetValue(domain, out var b) ? b : body;
    }

    /// <summary>Whether <see cref="SignCopiesAsync"/> signs any of <paramref name="copies"/> (an outbound copy of a domain whose key is active).</summary>
    public static bool SignsAny(Gateway.Core.Snapshot.ConfigSnapshot snapshot, IEnumerable<(string Domain, Gateway.Core.Mail.Direction Direction)> copies)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(copies);
        return copies.Any(c => c.Direction == Gateway.Core.Mail.Direction.Outbound && snapshot.Find(c.Domain)?.Config.Dkim is { Signs: true });
    }

    /// <summary>
    /// The DKIM-Signature fields for the outbound copies of a message received in pieces (requirements §11, bounded memory;
    /// docs/architecture.md "Bodies in pieces"): each is put in front of the shared body as the copy's prefix. The message is
    /// parsed from Redis in persistent mode, so the body hash is computed over blocks read one after the other; returns per
    /// (domain, direction) the field, or null for a copy that is not signed.
    /// </summary>
    public async Task<Func<string, Gateway.Core.Mail.Direction, byte[]?>> SignatureFieldsAsync(Gateway.Core.Snapshot.ConfigSnapshot snapshot,
        IEnumerable<(string Domain, Gateway.Core.Mail.Direction Direction)> copies, Func<Task<Stream>> open)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(copies);
        ArgumentNullException.ThrowIfNull(open);
        Dictionary<string, byte[]>? fields = null;
        foreach (var domain in copies.Where(c => c.Direction == Gateway.Core.Mail.Direction.Outbound).Select(c => c.Domain).Distinct(StringComparer.Ordinal))
        {
            if (snapshot.Find(domain)?.Config.Dkim is { Signs: true } state)
            {
                var signer = await SignerAsync(domain, state.Current).ConfigureAwait(false);
                using var stream = await open().ConfigureAwait(false);
                MimeMessage message;
                try
                {
                    message = await MimeMessage.LoadAsync(ParserOptions.Default, stream, persistent: true).ConfigureAwait(false);
                }
                catch (FormatException)
                {
                    metrics.Dkim("unparsable");
                    continue;
                }

                using (message)
                {
                    (fields ??= new Dictionary<string, byte[]>(StringComparer.Ordinal))[domain] = signer.Sign(message);
                }

                metrics.Dkim("signed");
            }
        }

        return fields is null ? (_, _) => null : (domain, direction) =>
            direction == Gateway.Core.Mail.Direction.Outbound && fields.TryGetValue(domain, out var f) ? f : null;
    }

    /// <summary>The message with a DKIM-Signature of <paramref name="domain"/>'s current key in front.</summary>
    /// <exception cref="DkimUnavailableException">The key could not be loaded; nothing may be stored unsigned (the client retries).</exception>
    public async Task<byte[]> SignAsync(string domain, DkimState state, byte[] body)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(body);
        var signer = await SignerAsync(domain, state.Current).ConfigureAwait(false);
        MimeMessage message;
        try
        {
            using var stream = new MemoryStream(body, writable: false);
            message = MimeMessage.Load(stream);
        }
        catch (FormatException)
        {
            // Delivery cannot parse it either and will bounce it; a signature would change nothing.
            metrics.Dkim("unparsable");
            return body;
        }

        var header = signer.Sign(message);
        var signed = new byte[header.Length + body.Length];
        header.CopyTo(signed, 0);
        body.CopyTo(signed, header.Length);
        metrics.Dkim("signed");
        return signed;
    }

    private async Task<Signer> SignerAsync(string domain, DkimKey key)
    {
        var cacheKey = (domain, key.Selector, key.PublicKey);
        var lazy = _signers.GetOrAdd(cacheKey, k => new Lazy<Task<Signer>>(() => LoadAsync(k.Domain, key)));
        try
        {
            return await lazy.Value.ConfigureAwait(false);
        }
        catch (Exception e) when (e is SecretUnavailableException or RedisException or RedisTimeoutException or TimeoutException or CryptographicException)
        {
            _signers.TryRemove(new KeyValuePair<(string, string, string), Lazy<Task<Signer>>>(cacheKey, lazy)); // try again next time
            metrics.Dkim("unavailable");
            LogUnavailable(logger, domain, key.Selector, e.Message);
            throw new DkimUnavailableException($"DKIM key {key.Selector} of {domain} unavailable: {e.Message}", e);
        }
    }

    private async Task<Signer> LoadAsync(string domain, DkimKey key)
    {
        var (algorithm, pkcs8) = await keys.LoadAsync(domain, key.Selector).ConfigureAwait(false);
        // A key that does not belong to the published record would sign mail no receiver can verify.
        if (algorithm != key.Algorithm || DkimKeyPair.PublicKeyOf(algorithm, pkcs8) != key.PublicKey)
        {
            throw new SecretUnavailableException($"the stored private key of selector {key.Selector} does not match its public key");
        }

        return new Signer(domain, key.Selector, algorithm, pkcs8);
    }

    [LoggerMessage(EventId = 1020, Level = LogLevel.Error, Message = "DKIM: the key of {Domain} (selector {Selector}) cannot be loaded; its outbound mail is refused with 451 until it can: {Reason}")]
    private static partial void LogUnavailable(ILogger logger, string domain, string selector, string reason);

    /// <summary>One selector's signer: MimeKit's DKIM signer, RSA through the platform's cryptography (OpenSSL).</summary>
    private sealed class Signer
    {
        private readonly GatewayDkimSigner _signer;
        private readonly FormatOptions _format;

        public Signer(string domain, string selector, DkimKeyAlgorithm algorithm, byte[] pkcs8)
        {
            var key = PrivateKeyFactory.CreateKey(pkcs8);
            _signer = new GatewayDkimSigner(key, domain, selector,
                algorithm == DkimKeyAlgorithm.Ed25519 ? DkimSignatureAlgorithm.Ed25519Sha256 : DkimSignatureAlgorithm.RsaSha256,
                algorithm == DkimKeyAlgorithm.Rsa ? pkcs8 : null)
            {
                HeaderCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
                BodyCanonicalizationAlgorithm = DkimCanonicalizationAlgorithm.Relaxed,
            };
            _format = FormatOptions.Default.Clone();
            _format.NewLineFormat = NewLineFormat.Dos;
        }

        /// <summary>Signs and returns the DKIM-Signature field as CRLF-terminated bytes.</summary>
        public byte[] Sign(MimeMessage message)
        {
            var fields = DkimHeaders.For(name => Count(message, name));
            _signer.Sign(_format, message, fields.ToArray());
            var header = message.Headers[0];
            var raw = Encoding.ASCII.GetString(header.RawValue).ReplaceLineEndings("\r\n");
            if (!raw.EndsWith("\r\n", StringComparison.Ordinal))
            {
                raw += "\r\n";
            }

            return Encoding.ASCII.GetBytes(header.Field + ":" + raw);
        }

        /// <summary>How often a field occurs where MimeKit's signer looks for it (Content-* in the body entity, the rest in the message).</summary>
        private static int Count(MimeMessage message, string name)
        {
            var list = name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase) ? message.Body?.Headers : message.Headers;
            if (list is null)
            {
                return 0;
            }

            var n = 0;
            foreach (var h in list)
            {
                if (h.Field.Equals(name, StringComparison.OrdinalIgnoreCase))
                {
                    n++;
                }
            }

            return n;
        }
    }

    /// <summary>
    /// MimeKit's signer with RSA done by <see cref="RSA"/> (OpenSSL on Linux) instead of BouncyCastle's managed RSA: the same
    /// RSASSA-PKCS1-v1_5 signature over SHA-256, several times faster (bench/deliverer: the cost of signing every message).
    /// </summary>
    private sealed class GatewayDkimSigner(AsymmetricKeyParameter key, string domain, string selector, DkimSignatureAlgorithm algorithm, byte[]? rsaPkcs8)
        : DkimSigner(key, domain, selector, algorithm)
    {
        private readonly ConcurrentBag<RSA> _pool = [];

        protected override ISigner CreateSigningContext() =>
            rsaPkcs8 is null ? base.CreateSigningContext() : new PlatformRsaSigner(this);

        private RSA Rent()
        {
            if (_pool.TryTake(out var rsa))
            {
                return rsa;
            }

            rsa = RSA.Create();
            rsa.ImportPkcs8PrivateKey(rsaPkcs8, out _);
            return rsa;
        }

        private void Return(RSA rsa) => _pool.Add(rsa);

        private sealed class PlatformRsaSigner(GatewayDkimSigner owner) : ISigner
        {
            private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

            public string AlgorithmName => "SHA256withRSA";

            public void Init(bool forSigning, ICipherParameters parameters)
            {
            }

            public void Update(byte input) => _hash.AppendData([input]);

            public void BlockUpdate(byte[] input, int inOff, int inLen) => _hash.AppendData(input, inOff, inLen);

            public void BlockUpdate(ReadOnlySpan<byte> input) => _hash.AppendData(input);

            public int GetMaxSignatureSize() => DkimKeyPair.RsaBits / 8;

            public byte[] GenerateSignature()
            {
                var digest = _hash.GetHashAndReset();
                var rsa = owner.Rent();
                try
                {
                    return rsa.SignHash(digest, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
                }
                finally
                {
                    owner.Return(rsa);
                }
            }

            public bool VerifySignature(byte[] signature) => throw new NotSupportedException("signing only");

            public void Reset() => _hash.GetHashAndReset();
        }
    }
}
