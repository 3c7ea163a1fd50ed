using System.Globalization;
using System.Net;
using Gateway.Core.Dkim;
using Gateway.Core.Domains;
using Gateway.Core.Secrets;
using Gateway.Core.Storage;
using Gateway.Testing;
using StackExchange.Redis;

// serve WORK RECIPIENT_DOMAIN [testing|enforce|none]: DNS + MTA-STS HTTPS until stdin closes; writes WORK/peer.env, keeps WORK/fetches up to date.
// seed REDIS WORK SENDER_DOMAIN none|rsa|ed25519: a verified outbound domain (KEK WORK/kek.key), DKIM active or off.
if (args.Length >= 3 && args[0] == "serve")
{
    var work = args[1];
    var recipient = args[2];
    var mode = args.Length >= 4 ? args[3] : "testing";
    using var certificates = new TestCertificates();
    File.Copy(certificates.CaFile, Path.Combine(work, "ca.pem"), overwrite: true);
    await using var dns = DnsTestServer.Start();
    var policyAddress = IPAddress.Parse("127.0.0.60");
    await using var policies = await HttpsPolicyServer.StartAsync(certificates, policyAddress, FreePort.Get(policyAddress));
    dns.AddMx(recipient, 10, "mx." + recipient).AddA("mx." + recipient, "127.0.0.1")
        .AddTxt("_mta-sts." + recipient, "v=STSv1; id=bench1;")
        .AddA("mta-sts." + recipient, policyAddress.ToString());
    // testing mode: the policy is fetched, cached and applied to every delivery, and smtp-sink (no STARTTLS) still gets the mail.
    policies.Serve(recipient, $"version: STSv1\r\nmode: {mode}\r\nmx: mx.{recipient}\r\nmax_age: 86400\r\n");
    await File.WriteAllTextAsync(Path.Combine(work, "peer.env"), $"DNS={dns.Address}\nPOLICY_PORT={policies.Port}\nCA={Path.Combine(work, "ca.pem")}\n");
    var stdin = Task.Run(() => Console.In.ReadToEnd());
    while (!stdin.IsCompleted)
    {
        await File.WriteAllTextAsync(Path.Combine(work, "fetches"), policies.Fetches(recipient).ToString(CultureInfo.InvariantCulture));
        await Task.WhenAny(stdin, Task.Delay(200));
    }

    await File.WriteAllTextAsync(Path.Combine(work, "fetches"), policies.Fetches(recipient).ToString(CultureInfo.InvariantCulture));
    return 0;
}

if (args.Length >= 5 && args[0] == "seed")
{
    var (redis, work, domain, dkim) = (args[1], args[2], args[3], args[4]);
    var kek = KeyEncryption.Load(Path.Combine(work, "kek.key"), create: true);
    await using var mux = await ConnectionMultiplexer.ConnectAsync(redis);
    var db = mux.GetDatabase();
    DkimState? state = null;
    if (dkim != "none")
    {
        var algorithm = dkim == "ed25519" ? DkimKeyAlgorithm.Ed25519 : DkimKeyAlgorithm.Rsa;
        var pair = DkimKeyPair.Generate(algorithm);
        var store = new DkimKeyStore(mux, () => kek);
        await store.SaveAsync(domain, "bench", pair, DateTimeOffset.UtcNow);
        state = new DkimState { Phase = DkimPhase.Active, Current = new DkimKey("bench", algorithm, pair.PublicKey, DateTimeOffset.UtcNow), ActiveSince = DateTimeOffset.UtcNow };
    }

    var config = new DomainConfig
    {
        Name = domain, CompanyId = "bench", CreateTime = DateTimeOffset.UtcNow, UpdateTime = DateTimeOffset.UtcNow,
        Settings = new DomainSettings(false, [], new OutboundSettings(true, false, false, ["127.0.0.1"])),
        Verification = new VerificationState("00", true, VerificationMethod.Txt, DateTimeOffset.UtcNow),
        Dkim = state,
    };
    // As the ControlPlane's DomainStore writes it (docs/architecture.md).
    await db.HashSetAsync(RedisKeys.DomainRegistry, domain, "bench");
    await db.HashSetAsync(RedisKeys.Domain(domain), [new("company", "bench"), new("etag", 1), new("data", StoreJson.Serialize(config))]);
    return 0;
}

Console.Error.WriteLine("usage: OutboundPeer serve WORK RECIPIENT_DOMAIN | seed REDIS WORK SENDER_DOMAIN none|rsa|ed25519");
return 2;
