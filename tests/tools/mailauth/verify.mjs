// Verifies the DKIM signatures of one message with mailauth (an implementation independent of MimeKit), looking the
// keys up on the given DNS server only (the tests' DnsTestServer on loopback).
// Usage: node verify.mjs <dns ip:port> <message file>; prints one JSON line: [{ status, domain, selector, algo, info }].
import { readFile } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';

const [server, file] = process.argv.slice(2);
const resolver = new Resolver({ timeout: 2000, tries: 2 });
resolver.setServers([server]);
const message = await readFile(file);
const result = await dkimVerify(message, {
  resolver: async (name, type) => {
    if (type !== 'TXT') throw Object.assign(new Error('unexpected ' + type), { code: 'ENOTFOUND' });
    return resolver.resolveTxt(name);
  },
});
process.stdout.write(JSON.stringify(result.results.map(r => ({
  status: r.status.result, comment: r.status.comment || '', domain: r.signingDomain, selector: r.selector,
  algo: r.algo, canon: r.format, headers: r.signingHeaders?.keys || '', info: r.info || '',
}))) + '\n');
