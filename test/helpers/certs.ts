import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/**
 * Certificates made with openssl at test time (never checked in): a CA, a server certificate for
 * 127.0.0.1/localhost, a client certificate from that CA (SAN DNS:prometheus), and a client
 * certificate from a second, untrusted CA.
 */

export interface TestCerts {
  dir: string;
  caCrt: string;
  serverCrt: string;
  serverKey: string;
  clientCrt: string;
  clientKey: string;
  rogueCrt: string;
  rogueKey: string;
  /** Another server certificate from the same CA (to test reloads). */
  server2Crt: string;
  server2Key: string;
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A new P-256 key: with `selfSigned` a CA certificate, else a signing request. */
function newKey(dir: string, name: string, cn: string, selfSigned: boolean): void {
  const out = selfSigned ? ['-x509', '-days', '2', '-out', `${name}.crt`] : ['-out', `${name}.csr`];
  openssl(dir, [
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-subj',
    `/CN=${cn}`,
    ...out,
  ]);
}

function keyAndCsr(dir: string, name: string, cn: string): void {
  newKey(dir, name, cn, false);
}

function ca(dir: string, name: string): void {
  newKey(dir, name, name, true);
}

function sign(dir: string, name: string, ca: string, san: string, usage: string): void {
  fs.writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=${usage}\n`);
  const args = ['-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial'];
  openssl(dir, ['x509', ...args, '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
}

export function makeCerts(): TestCerts {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-certs-'));
  ca(dir, 'ca');
  ca(dir, 'rogue-ca');
  keyAndCsr(dir, 'server', 'localhost');
  sign(dir, 'server', 'ca', 'IP:127.0.0.1,DNS:localhost', 'serverAuth');
  keyAndCsr(dir, 'server2', 'localhost');
  sign(dir, 'server2', 'ca', 'IP:127.0.0.1,DNS:localhost', 'serverAuth');
  keyAndCsr(dir, 'client', 'prometheus');
  sign(dir, 'client', 'ca', 'DNS:prometheus', 'clientAuth');
  keyAndCsr(dir, 'rogue', 'prometheus');
  sign(dir, 'rogue', 'rogue-ca', 'DNS:prometheus', 'clientAuth');
  const p = (f: string) => path.join(dir, f);
  return {
    dir,
    caCrt: p('ca.crt'),
    serverCrt: p('server.crt'),
    serverKey: p('server.key'),
    server2Crt: p('server2.crt'),
    server2Key: p('server2.key'),
    clientCrt: p('client.crt'),
    clientKey: p('client.key'),
    rogueCrt: p('rogue.crt'),
    rogueKey: p('rogue.key'),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}
