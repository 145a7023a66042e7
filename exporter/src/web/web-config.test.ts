import * as fs from 'fs';
import * as path from 'path';
import bcrypt from 'bcryptjs';
import { stringify } from 'yaml';
import { makeCerts, type TestCerts } from '../../../test/helpers/certs';
import { ConfigError } from '../config';
import { loadWebConfig } from './web-config';

/** --web.config.file: the exporter-toolkit format, validated completely (certificates loaded and paired). */

let certs: TestCerts;
let n = 0;
const HASH = bcrypt.hashSync('secret', 4);

beforeAll(() => {
  certs = makeCerts();
});
afterAll(() => certs.cleanup());

function write(content: unknown): string {
  const file = path.join(certs.dir, `web-${n++}.yml`);
  fs.writeFileSync(file, typeof content === 'string' ? content : stringify(content));
  return file;
}

async function error(content: unknown): Promise<string> {
  try {
    await loadWebConfig(write(content));
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('loadWebConfig', () => {
  it('reads TLS (files relative to the config file), users and headers', async () => {
    const c = await loadWebConfig(
      write({
        tls_server_config: {
          cert_file: path.basename(certs.serverCrt),
          key_file: certs.serverKey,
          client_auth_type: 'RequireAndVerifyClientCert',
          client_ca_file: certs.caCrt,
          min_version: 'TLS13',
          cipher_suites: ['TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256'],
          curve_preferences: ['X25519', 'CurveP256'],
        },
        http_server_config: {
          http2: true,
          headers: { 'X-Frame-Options': 'deny', 'Strict-Transport-Security': 'max-age=31536000', 'X-XSS-Protection': '' },
        },
        basic_auth_users: { prom: HASH },
      }),
    );
    expect(c.tls?.secure).toMatchObject({
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      requestCert: true,
      rejectUnauthorized: true,
      ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256',
      ecdhCurve: 'X25519:P-256',
      cert: fs.readFileSync(certs.serverCrt, 'utf8'),
    });
    expect(c.users.get('prom')).toBe(HASH);
    expect(c.headers).toEqual({ 'X-Frame-Options': 'deny', 'Strict-Transport-Security': 'max-age=31536000' });
  });

  it('an empty file is plain HTTP without auth (as in the toolkit)', async () => {
    const c = await loadWebConfig(write(''));
    expect(c.tls).toBeUndefined();
    expect(c.users.size).toBe(0);
  });

  it.each([
    [{ tls_server_config: { cert_file: 'x' }, extra: 1 }, /extra.*--web\.config\.file.*Unrecognized|Unrecognized.*extra/s],
    [{ basic_auth_users: { prom: 'plaintext' } }, /basic_auth_users\.prom \(--web\.config\.file\): must be a bcrypt hash/],
    [
      { http_server_config: { headers: { 'Set-Cookie': 'a=b' } } },
      /http_server_config\.headers\.Set-Cookie \(--web\.config\.file\): header not allowed/,
    ],
    [{ http_server_config: { headers: { 'X-Frame-Options': 'allow' } } }, /X-Frame-Options.*invalid value "allow"/],
    [{ tls_server_config: { client_auth_type: 'Sometimes' } }, /tls_server_config\.client_auth_type \(--web\.config\.file\)/],
    [{ tls_server_config: { min_version: 'SSL3' } }, /tls_server_config\.min_version/],
    [{ tls_server_config: { cipher_suites: ['TLS_RSA_WITH_RC4_128_SHA'] } }, /unknown or insecure cipher suite "TLS_RSA_WITH_RC4_128_SHA"/],
    [{ tls_server_config: { curve_preferences: ['P256'] } }, /unknown curve "P256"/],
  ])('rejects %j naming the field and the flag', async (content, re) => {
    expect(await error(content)).toMatch(re);
  });

  it('loads certificates at start-up: missing files, unpaired keys, missing CA', async () => {
    expect(await error({ tls_server_config: { cert_file: 'nope.crt', key_file: certs.serverKey } })).toMatch(
      /tls_server_config\.cert_file \(--web\.config\.file\): cannot read nope\.crt/,
    );
    expect(await error({ tls_server_config: { cert_file: certs.serverCrt } })).toMatch(/tls_server_config\.key_file.*required/);
    expect(await error({ tls_server_config: { cert_file: certs.server2Crt, key_file: certs.serverKey } })).toMatch(
      /tls_server_config \(--web\.config\.file\): the certificate, key or CA cannot be used/,
    );
    const base = { cert_file: certs.serverCrt, key_file: certs.serverKey };
    expect(await error({ tls_server_config: { ...base, client_auth_type: 'RequireAndVerifyClientCert' } })).toMatch(
      /client_ca_file.*required with client_auth_type RequireAndVerifyClientCert/,
    );
    expect(await error({ tls_server_config: { ...base, min_version: 'TLS13', max_version: 'TLS12' } })).toMatch(/above max_version/);
    expect(await error({ tls_server_config: { ...base, client_allowed_sans: ['x'] } })).toMatch(
      /client_allowed_sans.*RequireAnyClientCert/,
    );
    expect(await error({ http_server_config: { headers: { 'Strict-Transport-Security': 'max-age=1' } } })).toMatch(
      /needs tls_server_config/,
    );
  });
});
