using System.Globalization;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Gateway.Core.Hosting;

/// <summary>
/// File permissions of the programs' Unix-domain listeners (<c>Gateway:UnixSockets</c>; security review M13): instead of
/// TCP on loopback, which every local process can reach, the policy, socketmap and intake listeners can be Unix sockets
/// (<c>unix:/path</c>) that only the socket's owner and group can connect to (requirements §11).
/// </summary>
public sealed class UnixSocketOptions
{
    public const string Section = "Gateway:UnixSockets";

    /// <summary>The socket file's mode, octal (<c>660</c>: owner and group read/write; the group comes from the setgid directory).</summary>
    public string Mode { get; set; } = "660";

    public bool TryParseMode(out UnixFileMode mode)
    {
        mode = 0;
        if (Mode.Length is < 1 or > 4 || !int.TryParse(Mode, NumberStyles.None, CultureInfo.InvariantCulture, out _) || Mode.Any(c => c > '7'))
        {
            return false;
        }

        mode = (UnixFileMode)Convert.ToInt32(Mode, 8);
        return (int)mode <= 0x1FF; // permission bits only: no setuid/setgid/sticky on a socket
    }
}

/// <summary>
/// Binds Unix-domain listeners and, once Kestrel created their files, gives them <see cref="UnixSocketOptions"/>'s mode.
/// Until then the file has the process's umask (systemd units set 0077), so it is never more open than asked. The group:
/// the socket directory is setgid (<c>chmod 2770</c>, group <c>postfix</c>), so every socket made in it has Postfix's group
/// (deploy/postfix/README.md); .NET has no chown, and a directory decides it without privileges.
/// </summary>
public static class UnixSockets
{
    public const string Prefix = "unix:";

    /// <summary>Whether <paramref name="setting"/> is <c>unix:/absolute/path</c>.</summary>
    public static bool TryParse(string? setting, out string path)
    {
        path = string.Empty;
        var s = setting?.Trim() ?? string.Empty;
        if (!s.StartsWith(Prefix, StringComparison.Ordinal) || !Path.IsPathRooted(s[Prefix.Length..]))
        {
            return false;
        }

        path = s[Prefix.Length..];
        return true;
    }

    /// <summary>Listens on the Unix socket <paramref name="path"/> (a stale file of a crashed run removed) and registers it for its permissions.</summary>
    public static void Listen(KestrelServerOptions kestrel, string path, Action<ListenOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(kestrel);
        if (File.Exists(path))
        {
            File.Delete(path);
        }

        kestrel.ApplicationServices.GetRequiredService<UnixSocketPaths>().Add(path);
        kestrel.ListenUnixSocket(path, configure);
    }

    /// <summary><see cref="UnixSocketOptions"/> (validated at start) and the service that applies them.</summary>
    public static IServiceCollection AddUnixSocketPermissions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<UnixSocketOptions>()
            .Bind(configuration.GetSection(UnixSocketOptions.Section))
            .Validate(o => o.TryParseMode(out _), "Gateway:UnixSockets:Mode must be octal permission bits such as 660.")
            .ValidateOnStart();
        services.AddSingleton<UnixSocketPaths>();
        services.AddHostedService<UnixSocketPermissions>();
        return services;
    }

}

/// <summary>The Unix socket files this program listens on.</summary>
public sealed class UnixSocketPaths
{
    private readonly List<string> _paths = [];

    public void Add(string path)
    {
        lock (_paths)
        {
            _paths.Add(path);
        }
    }

    public IReadOnlyList<string> All
    {
        get
        {
            lock (_paths)
            {
                return [.. _paths];
            }
        }
    }
}

/// <summary>Gives each Unix socket its mode and group as soon as the server has started (the files exist then).</summary>
internal sealed partial class UnixSocketPermissions(UnixSocketPaths paths, IOptions<UnixSocketOptions> options, IHostApplicationLifetime lifetime,
    ILogger<UnixSocketPermissions> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(Apply);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private void Apply()
    {
        var o = options.Value;
        _ = o.TryParseMode(out var mode);
        foreach (var path in paths.All)
        {
            try
            {
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(path, mode);
                }

                LogPermissions(logger, path, o.Mode);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The socket stays as the umask made it (more closed, never more open): the peer may be refused.
                LogPermissionsFailed(logger, path, e.Message);
            }
        }
    }

    [LoggerMessage(EventId = 95, Level = LogLevel.Information, Message = "Unix socket {Path}: mode {Mode}")]
    private static partial void LogPermissions(ILogger logger, string path, string mode);

    [LoggerMessage(EventId = 96, Level = LogLevel.Error, Message = "Unix socket {Path}: cannot set its permissions ({Error}); connections from Postfix may be refused")]
    private static partial void LogPermissionsFailed(ILogger logger, string path, string error);
}
