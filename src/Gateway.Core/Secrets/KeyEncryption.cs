using System.Security.Cryptography;
using System.Text;

namespace Gateway.Core.Secrets;

/// <summary>Settings of <c>Gateway:Secrets</c>.</summary>
public sealed class SecretsOptions
{
    public const string Section = "Gateway:Secrets";

    /// <summary>
    /// The key-encryption key file (32 random bytes, base64). The ControlPlane generates it at first start, readable by
    /// its owner only (as the operator key); every Deliverer needs a copy to sign with the DKIM keys it protects.
    /// </summary>
    public string KeyFile { get; set; } = "data/secrets.key";
}

/// <summary>An AES-GCM sealed value: which key-encryption key, nonce, ciphertext and tag (base64).</summary>
public sealed record SealedSecret(string Kek, string Nonce, string Ciphertext, string Tag);

/// <summary>A sealed value could not be opened: another key-encryption key, or tampered data.</summary>
public sealed class SecretUnavailableException(string message) : Exception(message)
{
    public SecretUnavailableException() : this("secret unavailable")
    {
    }

    public SecretUnavailableException(string message, Exception inner) : this(message + ": " + inner.Message)
    {
    }
}

/// <summary>
/// The key-encryption key (KEK) of secrets stored in Redis (DKIM private keys, requirements §10): AES-256-GCM with the
/// caller's associated data (e.g. domain and selector), so a sealed value copied to another domain does not open. Each
/// sealed value names the KEK by a fingerprint, so a program with a different key file says so instead of failing vaguely.
/// </summary>
public sealed class KeyEncryption
{
    private const string FilePrefix = "gwkek1:";
    private const int KeySize = 32;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private readonly byte[] _key;

    private KeyEncryption(byte[] key, string path)
    {
        _key = key;
        Path = path;
        Fingerprint = Convert.ToHexStringLower(SHA256.HashData(key))[..16];
    }

    /// <summary>The first 16 hex digits of SHA-256 of the key: names it in sealed values and logs, reveals nothing.</summary>
    public string Fingerprint { get; }

    /// <summary>The file it was read from.</summary>
    public string Path { get; }

    /// <summary>True when this call created the file.</summary>
    public bool Generated { get; private init; }

    /// <summary>Reads the key file, or creates it (owner read/write only) when <paramref name="create"/> and it does not exist.</summary>
    /// <exception cref="SecretUnavailableException">The file is missing (and not to be created) or malformed.</exception>
    public static KeyEncryption Load(string path, bool create)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = System.IO.Path.GetFullPath(path);
        byte[]? generated = null;
        if (!File.Exists(full))
        {
            if (!create)
            {
                throw new SecretUnavailableException($"the key-encryption key file {full} (Gateway:Secrets:KeyFile) does not exist; copy it from the ControlPlane's host");
            }

            generated = RandomNumberGenerator.GetBytes(KeySize);
            OwnerOnlyFile.Write(full, FilePrefix + Convert.ToBase64String(generated), overwrite: false);
        }

        // Read back even after writing: a second ControlPlane that raced this one keeps the key that reached the disk.
        var text = File.ReadAllText(full).Trim();
        byte[]? bytes = null;
        if (text.StartsWith(FilePrefix, StringComparison.Ordinal))
        {
            try
            {
                bytes = Convert.FromBase64String(text[FilePrefix.Length..]);
            }
            catch (FormatException)
            {
            }
        }

        return bytes is { Length: KeySize }
            ? new KeyEncryption(bytes, full) { Generated = generated is not null && generated.AsSpan().SequenceEqual(bytes) }
            : throw new SecretUnavailableException($"the key-encryption key file {full} is not a '{FilePrefix}<base64 of 32 bytes>' line");
    }

    /// <summary>For tests: a KEK from given bytes.</summary>
    public static KeyEncryption FromBytes(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return key.Length == KeySize ? new KeyEncryption(key.ToArray(), "(memory)") : throw new ArgumentException("32 bytes expected", nameof(key));
    }

    public SealedSecret Seal(ReadOnlySpan<byte> plaintext, string associatedData)
    {
        var nonce = RandomNumberGenerator.GetBytes(NonceSize);
        var ciphertext = new byte[plaintext.Length];
        var tag = new byte[TagSize];
        using var aes = new AesGcm(_key, TagSize);
        aes.Encrypt(nonce, plaintext, ciphertext, tag, Encoding.UTF8.GetBytes(associatedData));
        return new SealedSecret(Fingerprint, Convert.ToBase64String(nonce), Convert.ToBase64String(ciphertext), Convert.ToBase64String(tag));
    }

    /// <exception cref="SecretUnavailableException">Sealed with another KEK, or the data or its associated data changed.</exception>
    public byte[] Open(SealedSecret sealedSecret, string associatedData)
    {
        ArgumentNullException.ThrowIfNull(sealedSecret);
        if (sealedSecret.Kek != Fingerprint)
        {
            throw new SecretUnavailableException(
                $"sealed with key-encryption key {sealedSecret.Kek}, but this program has {Fingerprint} ({Path}); every program needs the same Gateway:Secrets:KeyFile");
        }

        try
        {
            var ciphertext = Convert.FromBase64String(sealedSecret.Ciphertext);
            var plaintext = new byte[ciphertext.Length];
            using var aes = new AesGcm(_key, TagSize);
            aes.Decrypt(Convert.FromBase64String(sealedSecret.Nonce), ciphertext, Convert.FromBase64String(sealedSecret.Tag), plaintext,
                Encoding.UTF8.GetBytes(associatedData));
            return plaintext;
        }
        catch (Exception e) when (e is AuthenticationTagMismatchException or FormatException or ArgumentException)
        {
            throw new SecretUnavailableException("the sealed secret does not open (tampered, or stored for another name)", e);
        }
    }
}

/// <summary>Secret files (operator key, key-encryption key): readable and writable by their owner only (mode 0600).</summary>
public static class OwnerOnlyFile
{
    /// <summary>Writes through a temporary file; without <paramref name="overwrite"/> an existing file wins (two writers racing keep the first).</summary>
    public static void Write(string path, string content, bool overwrite)
    {
        ArgumentNullException.ThrowIfNull(path);
        var dir = System.IO.Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir))
        {
            Directory.CreateDirectory(dir);
        }

        var tmp = path + ".tmp";
        File.Delete(tmp);
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var stream = new FileStream(tmp, fileOptions))
        using (var writer = new StreamWriter(stream))
        {
            writer.WriteLine(content);
        }

        try
        {
            File.Move(tmp, path, overwrite);
        }
        catch (IOException) when (!overwrite && File.Exists(path))
        {
            File.Delete(tmp);
        }
    }
}
