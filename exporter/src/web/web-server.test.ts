import * as fs from 'fs';
import type { Server } from 'http';
import * as path from 'path';
import * as tls from 'tls';
import bcrypt from 'bcryptjs';
import express from 'express';
import { stringify } from 'yaml';
import { makeCerts, type TestCerts } from '../../../test/helpers/certs';
import { silentLogger } from '../util/log';
import { BasicAuth } from './basic-auth';
import { WebFront } from './web-server';

/** Client-certificate policies, cipher suites and basic auth, against real TLS handshakes (Node's client). */

let certs: TestCerts;
let n = 0;
const LIMITS = { headersTimeoutMs: 5000, requestTimeoutMs: 10_000, keepAliveTimeoutMs: 1000, maxConnections: 50 };

beforeAll(() => {
  certs = makeCerts();
});
afterAll(() => certs.cleanup());

async function serveWith(tlsConfig: Record<string, unknown>): Promise<{ server: Server; port: number }> {
  const file = path.join(certs.dir, `ws-${n++}.yml`);
  fs.writeFileSync(file, stringify({ tls_server_config: { cert_file: certs.serverCrt, key_file: certs.serverKey, ...tlsConfig } }));
  const front = await WebFront.create(file, LIMITS, silentLogger);
  const app = express();
  app.use(front.guard);
  app.get('/', (_req, res) => res.send('ok'));
  const server = front.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

/** One HTTPS GET over a raw TLS connection: the body, or the reason it failed. */
function attempt(port: number, opts: tls.ConnectionOptions): Promise<string> {
  return new Promise((resolve) => {
    let out = '';
    const s = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(certs.caCrt), servername: 'localhost', ...opts }, () => {
      s.write('GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
    });
    s.setEncoding('utf8');
    s.on('data', (d: string) => (out += d));
    s.on('error', (e) => resolve(`error: ${e.message}`));
    s.on('close', () => resolve(/\r\n\r\nok$/.test(out) ? 'ok' : `closed: ${out.slice(0, 40)}`));
  });
}

const pair = (crt: string, key: string) => ({ cert: fs.readFileSync(crt), key: fs.readFileSync(key) });

describe('client certificate policies', () => {
  it.each([
    ['NoClientCert', {}, 'ok', 'ok'],
    ['RequireAnyClientCert', {}, 'refused', 'ok'],
    ['VerifyClientCertIfGiven', { client_ca_file: 'ca.crt' }, 'ok', 'refused'],
    ['RequireAndVerifyClientCert', { client_ca_file: 'ca.crt' }, 'refused', 'refused'],
  ])('%s %j: without a certificate → %s; with one from an unknown CA → %s; with a good one → ok', async (type, extra, none, rogue) => {
    const { server, port } = await serveWith({ client_auth_type: type, ...extra });
    try {
      const verdict = (r: string) => (r === 'ok' ? 'ok' : 'refused');
      expect(verdict(await attempt(port, {}))).toBe(none);
      expect(verdict(await attempt(port, pair(certs.rogueCrt, certs.rogueKey)))).toBe(rogue);
      if (type !== 'NoClientCert') expect(await attempt(port, pair(certs.clientCrt, certs.clientKey))).toBe('ok');
    } finally {
      server.close();
    }
  });

  it('client_allowed_sans: only a certificate naming an allowed SAN', async () => {
    const allowed = await serveWith({
      client_auth_type: 'RequireAndVerifyClientCert',
      client_ca_file: 'ca.crt',
      client_allowed_sans: ['prometheus'],
    });
    const other = await serveWith({
      client_auth_type: 'RequireAndVerifyClientCert',
      client_ca_file: 'ca.crt',
      client_allowed_sans: ['grafana'],
    });
    try {
      expect(await attempt(allowed.port, pair(certs.clientCrt, certs.clientKey))).toBe('ok');
      expect(await attempt(other.port, pair(certs.clientCrt, certs.clientKey))).not.toBe('ok');
    } finally {
      allowed.server.close();
      other.server.close();
    }
  });
});

describe('TLS versions and cipher suites', () => {
  it('a TLS 1.2 client gets only the configured suites; min_version TLS13 refuses it', async () => {
    const { server, port } = await serveWith({ cipher_suites: ['TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'] });
    const strict = await serveWith({ min_version: 'TLS13' });
    try {
      const v12 = { maxVersion: 'TLSv1.2' as const };
      expect(await attempt(port, { ...v12, ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' })).toBe('ok');
      expect(await attempt(port, { ...v12, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' })).toMatch(/error/);
      expect(await attempt(port, {})).toBe('ok'); // TLS 1.3 suites stay on, as in Go
      expect(await attempt(strict.port, v12)).toMatch(/error/);
      expect(await attempt(strict.port, {})).toBe('ok');
    } finally {
      server.close();
      strict.server.close();
    }
  });
});

describe('BasicAuth', () => {
  const hash = bcrypt.hashSync('pw', 4);
  const header = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;
  it('accepts the right password (also for $2y$ hashes, as htpasswd writes them), refuses the rest', async () => {
    const auth = new BasicAuth(
      new Map([
        ['a', hash],
        ['b', hash.replace(/^\$2b\$/, '$2y$')],
      ]),
    );
    expect(await auth.check(header('a', 'pw'))).toBe(true);
    expect(await auth.check(header('a', 'pw'))).toBe(true); // cached
    expect(await auth.check(header('b', 'pw'))).toBe(true);
    expect(await auth.check(header('a', 'PW'))).toBe(false);
    expect(await auth.check(header('nobody', 'pw'))).toBe(false);
    expect(await auth.check(header('a:pw', ''))).toBe(false);
    expect(await auth.check('Bearer x')).toBe(false);
    expect(await auth.check(undefined)).toBe(false);
  });
});
