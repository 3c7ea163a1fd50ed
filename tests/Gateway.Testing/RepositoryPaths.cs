namespace Gateway.Testing;

/// <summary>Files of the repository, found by walking up from the test binaries to <c>Gateway.sln</c>: the one walk every test helper uses.</summary>
public static class RepositoryPaths
{
    /// <summary>The repository's root joined with <paramref name="parts"/>.</summary>
    public static string Get(params string[] parts)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Gateway.sln")))
            {
                return Path.Combine([dir.FullName, .. parts]);
            }
        }

        throw new InvalidOperationException("the repository (Gateway.sln) was not found above " + AppContext.BaseDirectory);
    }
}
