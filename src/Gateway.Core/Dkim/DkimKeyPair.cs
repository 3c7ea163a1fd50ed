using System.Security.Cryptography;
using Org.BouncyCastle.Crypto.Generators;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Pkcs;
using Org.BouncyCastle.Security;
using Gateway.Core.Domains;

namespace Gateway.Core.Dkim;

/// <summary>A generated key pair: the private key as PKCS#8 DER (to be sealed) and the record's <c>p=</c> value.</summary>
public sealed record DkimKeyPair(DkimKeyAlgorithm Algorithm, byte[] PrivateKeyPkcs8, string PublicKey)
{
    public const int RsaBits = 2048;

    /// <summary>
    /// RSA-2048 with the platform's cryptography (OpenSSL on Linux), the record's <c>p=</c> being the SubjectPublicKeyInfo
    /// (RFC 6376 §3.6.1); Ed25519 with BouncyCastle (MimeKit's own dependency; .NET has no Ed25519), <c>p=</c> being the raw
    /// 32-byte public key (RFC 8463 §4).
    /// </summary>
    public static DkimKeyPair Generate(DkimKeyAlgorithm algorithm)
    {
        if (algorithm == DkimKeyAlgorithm.Ed25519)
        {
            var generator = new Ed25519KeyPairGenerator();
            generator.Init(new Ed25519KeyGenerationParameters(new Org.BouncyCastle.Security.SecureRandom()));
            var pair = generator.GenerateKeyPair();
            var pkcs8 = PrivateKeyInfoFactory.CreatePrivateKeyInfo(pair.Private).GetDerEncoded();
            return new DkimKeyPair(algorithm, pkcs8, Convert.ToBase64String(((Ed25519PublicKeyParameters)pair.Public).GetEncoded()));
        }

        using var rsa = RSA.Create(RsaBits);
        return new DkimKeyPair(algorithm, rsa.ExportPkcs8PrivateKey(), Convert.ToBase64String(rsa.ExportSubjectPublicKeyInfo()));
    }

    /// <summary>The <c>p=</c> value of a stored private key (to check that a sealed key belongs to the record).</summary>
    public static string PublicKeyOf(DkimKeyAlgorithm algorithm, byte[] pkcs8)
    {
        if (algorithm == DkimKeyAlgorithm.Ed25519)
        {
            var key = (Ed25519PrivateKeyParameters)PrivateKeyFactory.CreateKey(pkcs8);
            return Convert.ToBase64String(key.GeneratePublicKey().GetEncoded());
        }

        using var rsa = RSA.Create();
        rsa.ImportPkcs8PrivateKey(pkcs8, out _);
        return Convert.ToBase64String(rsa.ExportSubjectPublicKeyInfo());
    }
}
