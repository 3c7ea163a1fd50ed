using System.Globalization;

namespace PolicyBench;

/// <summary><c>--name value</c> pairs.</summary>
internal sealed class Options(Dictionary<string, string> values)
{
    public static Options Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new ArgumentException($"expected --name value, got '{args[i]}'");
            }

            values[args[i][2..]] = args[++i];
        }

        return new Options(values);
    }

    public string this[string name] => values.TryGetValue(name, out var v) ? v : throw new ArgumentException($"--{name} is required");

    public string Get(string name, string fallback) => values.GetValueOrDefault(name, fallback);

    public string? Optional(string name) => values.GetValueOrDefault(name);

    public int Int(string name, int? fallback = null) =>
        values.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture)
        : fallback ?? throw new ArgumentException($"--{name} is required");
}

internal static class FreePortCommand
{
    public static int Run()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        Console.WriteLine(((System.Net.IPEndPoint)l.LocalEndpoint).Port);
        return 0;
    }
}
