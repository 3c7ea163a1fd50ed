// The gateway runs on Linux (Postfix); the tests check Linux behaviour.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
