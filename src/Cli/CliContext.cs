using System.CommandLine;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;

namespace Gateway.Cli;

/// <summary>Options every command understands; resolved flag → environment → config file → default.</summary>
internal static class GlobalOptions
{
    public const string DefaultEndpoint = "http://127.0.0.1:50051";

    public static readonly Option<string?> Endpoint = new("--endpoint")
    {
        Description = $"ControlPlane address (env GATEWAY_ENDPOINT; default {DefaultEndpoint})",
        Recursive = true,
    };

    public static readonly Option<string?> Key = new("--key")
    {
        Description = "API key: the operator key or a tenant key (env GATEWAY_KEY)",
        Recursive = true,
    };

    public static readonly Option<string?> KeyFile = new("--key-file")
    {
        Description = "Read the API key from a file, e.g. data/operator.key (env GATEWAY_KEY_FILE)",
        Recursive = true,
    };

    public static readonly Option<string?> Company = new("--company")
    {
        Description = "With the operator key: act for this tenant on its domains (env GATEWAY_COMPANY)",
        Recursive = true,
    };

    public static readonly Option<string?> CaFile = new("--ca-file")
    {
        Description = "For an https:// endpoint: trust only this CA certificate (PEM) instead of the system's (env GATEWAY_CA_FILE)",
        Recursive = true,
    };

    public static readonly Option<string?> Config = new("--config")
    {
        Description = "Config file (env GATEWAYCTL_CONFIG; default ~/.config/gatewayctl/config.json)",
        Recursive = true,
    };

    public static readonly Option<bool> Json = new("--json")
    {
        Description = "Print the API's JSON instead of tables",
        Recursive = true,
    };

    public static void AddTo(RootCommand root)
    {
        foreach (var o in new Option[] { Endpoint, Key, KeyFile, Company, CaFile, Config, Json })
        {
            root.Options.Add(o);
        }
    }
}

/// <summary>The values of the config file (all optional).</summary>
internal sealed class CliConfigFile
{
    public string? Endpoint { get; set; }

    public string? Key { get; set; }

    public string? KeyFile { get; set; }

    public string? Company { get; set; }

    public string? CaFile { get; set; }

    public static string DefaultPath =>
        Path.Combine(Environment.GetEnvironmentVariable("XDG_CONFIG_HOME") is { Length: > 0 } x ? x
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config"), "gatewayctl", "config.json");

    public static CliConfigFile Load(string path)
    {
        if (!File.Exists(path))
        {
            return new CliConfigFile();
        }

        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(path), CliJson.Default.CliConfigFile) ?? new CliConfigFile();
        }
        catch (JsonException e)
        {
            throw new CliException($"config file {path} is not valid JSON: {e.Message}");
        }
    }
}

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower,
    WriteIndented = true, DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
[System.Text.Json.Serialization.JsonSerializable(typeof(CliConfigFile))]
internal sealed partial class CliJson : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>A user error with a message for stderr (no stack trace).</summary>
internal sealed class CliException(string message, int exitCode = ExitCodes.Usage) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}

internal static class ExitCodes
{
    public const int Ok = 0;
    public const int Failure = 1;
    public const int Usage = 2;
    public const int Unauthenticated = 3;
    public const int NotFound = 4;
    public const int Rejected = 5;
    public const int Unavailable = 6;
}

/// <summary>Per invocation: the channel with credentials, and output.</summary>
internal sealed class CliContext : IDisposable
{
    private readonly GrpcChannel _channel;

    private CliContext(string endpoint, string? key, string? company, bool json, TextWriter output, X509Certificate2? ca)
    {
        Endpoint = endpoint;
        Json = json;
        Out = output;
        _channel = ca is null ? GrpcChannel.ForAddress(endpoint) : GrpcChannel.ForAddress(endpoint, new GrpcChannelOptions { HttpHandler = TrustOnly(ca) });
        Invoker = _channel.Intercept(metadata =>
        {
            if (!string.IsNullOrEmpty(key))
            {
                metadata.Add("authorization", "Bearer " + key);
            }

            if (!string.IsNullOrEmpty(company))
            {
                metadata.Add("x-company-id", company);
            }

            return metadata;
        });
    }

    public string Endpoint { get; }

    public bool Json { get; }

    public TextWriter Out { get; }

    public CallInvoker Invoker { get; }

    public static CliContext Create(ParseResult parse, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(parse);
        var configPath = parse.GetValue(GlobalOptions.Config) ?? Env("GATEWAYCTL_CONFIG") ?? CliConfigFile.DefaultPath;
        var file = CliConfigFile.Load(configPath);
        var endpoint = parse.GetValue(GlobalOptions.Endpoint) ?? Env("GATEWAY_ENDPOINT") ?? file.Endpoint ?? GlobalOptions.DefaultEndpoint;
        if (!endpoint.Contains("://", StringComparison.Ordinal))
        {
            endpoint = "http://" + endpoint;
        }

        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out _))
        {
            throw new CliException($"--endpoint '{endpoint}' is not an address such as http://127.0.0.1:50051");
        }

        var key = parse.GetValue(GlobalOptions.Key) ?? Env("GATEWAY_KEY");
        var keyFile = parse.GetValue(GlobalOptions.KeyFile) ?? Env("GATEWAY_KEY_FILE");
        if (key is null && keyFile is not null)
        {
            key = ReadKeyFile(keyFile);
        }

        key ??= file.Key ?? (file.KeyFile is not null ? ReadKeyFile(file.KeyFile) : null);
        var company = parse.GetValue(GlobalOptions.Company) ?? Env("GATEWAY_COMPANY") ?? file.Company;
        var caFile = parse.GetValue(GlobalOptions.CaFile) ?? Env("GATEWAY_CA_FILE") ?? file.CaFile;
        return new CliContext(endpoint, key, company, parse.GetValue(GlobalOptions.Json), output, caFile is null ? null : LoadCa(caFile));
    }

    /// <summary>Prints a message as the API's JSON (proto field names, defaults included).</summary>
    public void PrintJson(IMessage message) =>
        Out.WriteLine(new JsonFormatter(JsonFormatter.Settings.Default.WithFormatDefaultValues(true).WithPreserveProtoFieldNames(true)).Format(message));

    /// <summary>JSON when asked, else the human rendering.</summary>
    public void Print(IMessage message, Action<TextWriter> human)
    {
        ArgumentNullException.ThrowIfNull(human);
        if (Json)
        {
            PrintJson(message);
        }
        else
        {
            human(Out);
        }
    }

    public void Dispose() => _channel.Dispose();

    /// <summary>
    /// A handler that accepts the server only with a chain to <paramref name="ca"/> (and nothing else) and the name
    /// the endpoint was given by: the certificate is verified, never skipped.
    /// </summary>
    private static SocketsHttpHandler TrustOnly(X509Certificate2 ca) => new()
    {
        SslOptions = new System.Net.Security.SslClientAuthenticationOptions
        {
            RemoteCertificateValidationCallback = (_, certificate, _, errors) =>
            {
                if (certificate is null || (errors & System.Net.Security.SslPolicyErrors.RemoteCertificateNameMismatch) != 0 ||
                    (errors & System.Net.Security.SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
                {
                    return false;
                }

                using var chain = new X509Chain();
                chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                chain.ChainPolicy.CustomTrustStore.Add(ca);
                chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                return chain.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
            },
        },
    };

    private static X509Certificate2 LoadCa(string path)
    {
        try
        {
            return X509Certificate2.CreateFromPem(File.ReadAllText(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new CliException($"cannot read the CA certificate {path}: {e.Message}");
        }
    }

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

    private static string ReadKeyFile(string path)
    {
        try
        {
            return File.ReadAllText(path).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"cannot read the key file {path}: {e.Message}");
        }
    }
}
