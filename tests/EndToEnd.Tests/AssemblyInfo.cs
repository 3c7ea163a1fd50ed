// The gateway runs on Linux (Postfix, Unix file modes); the tests check Linux behaviour.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
