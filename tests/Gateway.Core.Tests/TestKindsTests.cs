using System.Text.RegularExpressions;
using Gateway.Testing;

namespace Gateway.Core.Tests;

/// <summary>
/// The test suite's split (architecture review, "No unit/integration split"): every test class says what it is with
/// <c>[Trait("Kind", "Unit")]</c> (no servers, no processes, no sockets: <c>dotnet test --filter Kind=Unit</c> runs
/// them in seconds) or <c>[Trait("Kind", "Integration")]</c> (real redis-server, Kestrel, Postfix, DNS, SMTP, engines).
/// </summary>
[Trait("Kind", "Unit")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed partial class TestKindsTests
{
    // What starting a real part looks like in this repository's tests.
    private static readonly string[] ServerMarkers =
    [
        "RedisServer", "RedisCluster", "RedisTopology", "PostfixInstance", "ControlPlaneHost", "SmtpSink", "DnsTestServer",
        "WholeGateway", "RspamdInstance", "ClamdInstance", "ScanningEngines", "PolicyDaemonServer", "HttpsPolicyServer",
        "TcpListener", "new Socket(", "Process.Start", "ProcessStartInfo", "GatewayCtl", "MailauthVerifier", "EngineProcess",
    ];

    public static TheoryData<string> TestFiles()
    {
        var data = new TheoryData<string>();
        var root = TestsFolder();
        foreach (var file in Directory.EnumerateFiles(root, "*.cs", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var relative = Path.GetRelativePath(root, file);
            if (!relative.Contains("/obj/", StringComparison.Ordinal) && !relative.Contains("/bin/", StringComparison.Ordinal) &&
                !relative.Contains("node_modules", StringComparison.Ordinal) && TestAttribute().IsMatch(File.ReadAllText(file)))
            {
                data.Add(relative);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(TestFiles))]
    public void TestFile_EveryTestClassSaysItsKind_UnitOnesStartNoServer(string relative)
    {
        var text = File.ReadAllText(Path.Combine(TestsFolder(), relative));
        var classes = ClassDeclaration().Matches(text);
        foreach (Match declaration in classes)
        {
            var next = declaration.NextMatch();
            var body = text[declaration.Index..(next.Success ? next.Index : text.Length)];
            if (!TestAttribute().IsMatch(body))
            {
                continue;
            }

            var head = text[Math.Max(0, declaration.Index - 200)..declaration.Index];
            Assert.True(head.Contains("[Trait(\"Kind\", \"Unit\")]", StringComparison.Ordinal) || head.Contains("[Trait(\"Kind\", \"Integration\")]", StringComparison.Ordinal),
                $"{relative}: class {declaration.Groups["name"].Value} has no [Trait(\"Kind\", \"Unit\" or \"Integration\")]");
        }

        if (text.Contains("[Trait(\"Kind\", \"Unit\")]", StringComparison.Ordinal) && !relative.EndsWith(nameof(TestKindsTests) + ".cs", StringComparison.Ordinal))
        {
            Assert.DoesNotContain(ServerMarkers, m => text.Contains(m, StringComparison.Ordinal));
        }
    }

    private static string TestsFolder() => RepositoryPaths.Get("tests");

    [GeneratedRegex(@"\[(Fact|Theory)\b")]
    private static partial Regex TestAttribute();

    [GeneratedRegex(@"^[ \t]*(public |internal )?(sealed |static |abstract )*(partial )?class (?<name>\w+)", RegexOptions.Multiline)]
    private static partial Regex ClassDeclaration();
}
