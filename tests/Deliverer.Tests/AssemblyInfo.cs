// The gateway runs on Linux (Postfix, loopback aliases 127.0.0.x, signals); the tests check Linux behaviour.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
