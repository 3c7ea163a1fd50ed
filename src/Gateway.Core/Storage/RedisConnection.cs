using StackExchange.Redis;

namespace Gateway.Core.Storage;

/// <summary>The StackExchange.Redis configuration of every program: <c>Gateway:Redis</c> plus the ACL user and password settings.</summary>
public static class RedisConnection
{
    public static ConfigurationOptions Configure(GatewayOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var config = ConfigurationOptions.Parse(options.Redis);
        if (!string.IsNullOrEmpty(options.RedisUser))
        {
            config.User = options.RedisUser;
        }

        if (!string.IsNullOrEmpty(options.RedisPasswordFile))
        {
            config.Password = File.ReadLines(options.RedisPasswordFile).FirstOrDefault()?.Trim() ?? string.Empty;
        }
        else if (!string.IsNullOrEmpty(options.RedisPassword))
        {
            config.Password = options.RedisPassword;
        }

        return config;
    }
}
