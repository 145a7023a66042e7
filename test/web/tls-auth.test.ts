import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import bcrypt from 'bcryptjs';
import { stringify } from 'yaml';
import { makeCerts, type TestCerts } from '../helpers/certs';
import { MAIN, ensureBuilt, startServe, waitFor, type RunningExporter } from '../helpers/exporter-process';
import { freePort, requireBinary } from '../prometheus/lib';
import { get } from './lib';

/**
 * --web.config.file end to end (issue 10 §6): TLS with basic auth (bcrypt) and security headers,
 * TLS with verified client certificates, both scraped by a real Prometheus; SIGHUP reloads
 * certificates and users; a bad file stops start-up with exit 2 naming the field and the flag.
 */

jest.setTimeout(180_000);

let certs: TestCerts;
let basic: RunningExporter;
let mtls: RunningExporter;
let prometheus: ChildProcess | undefined;
let promLog = '';
let promUrl = '';
let webFile: string;

const HEADERS = { 'X-Content-Type-Options': 'nosniff', 'X-Frame-Options': 'deny', 'Strict-Transport-Security': 'max-age=31536000' };

/** Resolves with `p`, or rejects naming `what` after `ms` (the timer cleared either way). */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<T>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out waiting for ${what}`)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function writeWebConfig(file: string, content: unknown): string {
  fs.writeFileSync(file, stringify(content));
  return file;
}

beforeAll(async () => {
  requireBinary('prometheus', 'prometheus');
  requireBinary('openssl', 'openssl', ['version']);
  ensureBuilt();
  certs = makeCerts();
  webFile = writeWebConfig(path.join(certs.dir, 'basic.yml'), {
    tls_server_config: { cert_file: certs.serverCrt, key_file: certs.serverKey },
    http_server_config: { headers: HEADERS },
    basic_auth_users: { prom: bcrypt.hashSync('secret', 6) },
  });
  const mtlsFile = writeWebConfig(path.join(certs.dir, 'mtls.yml'), {
    tls_server_config: {
      cert_file: certs.serverCrt,
      key_file: certs.serverKey,
      client_auth_type: 'RequireAndVerifyClientCert',
      client_ca_file: certs.caCrt,
      client_allowed_sans: ['prometheus'],
    },
  });
  basic = await startServe([`--web.config.file=${webFile}`, '--sample.interval=500ms'], { JOULEFLOW_JOBS_TOKEN: 'tls-token' });
  mtls = await startServe([`--web.config.file=${mtlsFile}`, '--sample.interval=500ms']);
});

afterAll(async () => {
  prometheus?.kill('SIGKILL');
  await basic?.stop();
  await mtls?.stop();
  certs?.cleanup();
});

describe('TLS with basic auth and headers', () => {
  it('serves /metrics, / and the API over TLS to a valid user, with the configured headers', async () => {
    expect(basic.url).toMatch(/^https:\/\//);
    for (const p of ['/metrics', '/', '/healthz']) {
      const r = await get(basic.url + p, { ca: certs.caCrt, user: 'prom', password: 'secret' });
      expect([p, r.status]).toEqual([p, r.status === 503 ? 503 : 200]);
      for (const [k, v] of Object.entries(HEADERS)) expect(r.headers[k.toLowerCase()]).toBe(v);
    }
    const m = await get(basic.url + '/metrics', { ca: certs.caCrt, user: 'prom', password: 'secret' });
    expect(m.body).toMatch(/^# HELP jouleflow_/m);
  });

  it('the jobs API also takes its own credentials: this host’s callers by uid (so `jouleflow run` works), the token; a wrong token is 401', async () => {
    const local = await get(basic.url + '/api/v1/jobs', { ca: certs.caCrt });
    expect(local.status).toBe(200);
    expect(Array.isArray((JSON.parse(local.body) as { jobs: unknown }).jobs)).toBe(true);
    const wrong = await get(basic.url + '/api/v1/jobs', { ca: certs.caCrt, headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const right = await get(basic.url + '/api/v1/jobs', { ca: certs.caCrt, headers: { authorization: 'Bearer tls-token' } });
    expect(right.status).toBe(200);
  });

  it('a wrong password, an unknown user or none: 401 with a Basic challenge (headers still set)', async () => {
    for (const [user, password] of [
      ['prom', 'wrong'],
      ['nobody', 'secret'],
      [undefined, undefined],
    ]) {
      for (const p of ['/metrics', '/', '/healthz']) {
        const r = await get(basic.url + p, { ca: certs.caCrt, user, password });
        expect([user, p, r.status]).toEqual([user, p, 401]);
        expect(r.headers['www-authenticate']).toMatch(/^Basic/);
        expect(r.headers['x-frame-options']).toBe('deny');
        expect(r.body).not.toMatch(/jouleflow_/);
      }
    }
  });

  it('plain HTTP to the TLS port gets no answer', async () => {
    const plain = basic.url.replace(/^https:/, 'http:');
    const r = await get(plain + '/metrics', { user: 'prom', password: 'secret' }).then(
      (x) => x.status,
      (err: Error) => err.message,
    );
    expect(r).not.toBe(200);
    expect(typeof r === 'string' || r >= 400).toBe(true);
  });

  it('a client without the CA refuses the self-signed chain', async () => {
    await expect(get(basic.url + '/metrics', { user: 'prom', password: 'secret' })).rejects.toThrow(/certificate/);
  });
});

describe('TLS with verified client certificates', () => {
  it('a certificate from the configured CA gets in; none, or one from another CA, does not', async () => {
    const ok = await get(mtls.url + '/metrics', { ca: certs.caCrt, cert: certs.clientCrt, key: certs.clientKey });
    expect(ok.status).toBe(200);
    const failed = async (o: Parameters<typeof get>[1]) =>
      get(mtls.url + '/metrics', o).then(
        (r) => `answered ${r.status}`,
        (err: Error) => err.message,
      );
    expect(await failed({ ca: certs.caCrt })).not.toMatch(/answered 200/);
    expect(await failed({ ca: certs.caCrt, cert: certs.rogueCrt, key: certs.rogueKey })).not.toMatch(/answered 200/);
  });
});

describe('a real Prometheus scrapes over TLS', () => {
  it('with basic auth and with a client certificate; a wrong password is a failed scrape', async () => {
    const work = certs.dir;
    const promPort = await freePort();
    promUrl = `http://127.0.0.1:${promPort}`;
    const target = (u: string) => new URL(u).host;
    const tlsConfig = { ca_file: certs.caCrt, server_name: 'localhost' };
    fs.writeFileSync(
      path.join(work, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', scrape_timeout: '900ms' },
        scrape_configs: [
          {
            job_name: 'basic',
            scheme: 'https',
            tls_config: tlsConfig,
            basic_auth: { username: 'prom', password: 'secret' },
            static_configs: [{ targets: [target(basic.url)] }],
          },
          {
            job_name: 'wrongpass',
            scheme: 'https',
            tls_config: tlsConfig,
            basic_auth: { username: 'prom', password: 'nope' },
            static_configs: [{ targets: [target(basic.url)] }],
          },
          {
            job_name: 'mtls',
            scheme: 'https',
            tls_config: { ...tlsConfig, cert_file: certs.clientCrt, key_file: certs.clientKey },
            static_configs: [{ targets: [target(mtls.url)] }],
          },
        ],
      }),
    );
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${path.join(work, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(work, 'data')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout!.on('data', (d: Buffer) => (promLog += d.toString()));
    prometheus.stderr!.on('data', (d: Buffer) => (promLog += d.toString()));
    type Target = { labels: { job: string }; health: string; lastError: string };
    const targets = await waitFor(
      async () => {
        const t = (await (await fetch(`${promUrl}/api/v1/targets`)).json()) as { data: { activeTargets: Target[] } };
        const all = t.data.activeTargets;
        return all.length === 3 && all.every((x) => x.health !== 'unknown') && all.filter((x) => x.health === 'up').length === 2
          ? all
          : undefined;
      },
      `Prometheus to scrape all three targets (log: ${promLog})`,
      60_000,
    );
    const byJob = Object.fromEntries(targets.map((t) => [t.labels.job, t]));
    expect(byJob.basic.health).toBe('up');
    expect(byJob.mtls.health).toBe('up');
    expect(byJob.wrongpass.health).toBe('down');
    expect(byJob.wrongpass.lastError).toMatch(/401/);
    const q = (await (
      await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent('count by (job) (jouleflow_build_info)')}`)
    ).json()) as {
      data: { result: Array<{ metric: { job: string } }> };
    };
    expect(q.data.result.map((r) => r.metric.job).sort()).toEqual(['basic', 'mtls']);
  });
});

describe('SIGHUP reloads the web configuration', () => {
  it('new certificate and password apply without a restart; an invalid file keeps the running one', async () => {
    const before = await get(basic.url + '/metrics', { ca: certs.caCrt, user: 'prom', password: 'secret' });
    writeWebConfig(webFile, {
      tls_server_config: { cert_file: certs.server2Crt, key_file: certs.server2Key },
      http_server_config: { headers: HEADERS },
      basic_auth_users: { prom: bcrypt.hashSync('rotated', 6) },
    });
    basic.child.kill('SIGHUP');
    await waitFor(async () => {
      const r = await get(basic.url + '/metrics', { ca: certs.caCrt, user: 'prom', password: 'rotated' });
      return r.status === 200 ? r : undefined;
    }, 'the rotated password to work');
    // A connection whose handshake preceded the reload may have served that first success: ask anew.
    const after = await get(basic.url + '/metrics', { ca: certs.caCrt, user: 'prom', password: 'rotated' });
    expect(after.status).toBe(200);
    expect(after.fingerprint).not.toBe(before.fingerprint);
    expect((await get(basic.url + '/metrics', { ca: certs.caCrt, user: 'prom', password: 'secret' })).status).toBe(401);
    fs.writeFileSync(webFile, 'basic_auth_users: { prom: not-a-hash }\n');
    basic.child.kill('SIGHUP');
    await waitFor(async () => (/web configuration not reloaded/.test(basic.logs()) ? true : undefined), 'the refused reload to be logged');
    expect((await get(basic.url + '/metrics', { ca: certs.caCrt, user: 'prom', password: 'rotated' })).status).toBe(200);
  });
});

describe('start-up validation and slow clients', () => {
  it('an invalid --web.config.file exits 2 naming the field and the flag', () => {
    const bad = writeWebConfig(path.join(certs.dir, 'bad.yml'), {
      tls_server_config: { cert_file: 'missing.crt', key_file: certs.serverKey },
    });
    const r = spawnSync(
      process.execPath,
      [MAIN, 'serve', '--web.listen-address=127.0.0.1:0', '--jobs.ledger=', `--web.config.file=${bad}`],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/tls_server_config\.cert_file \(--web\.config\.file\): cannot read missing\.crt/);
    const flag = spawnSync(
      process.execPath,
      [MAIN, 'serve', '--web.listen-address=127.0.0.1:0', '--jobs.ledger=', '--web.max-connections=0'],
      {
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(flag.status).toBe(2);
    expect(flag.stderr).toMatch(/web\.maxConnections \(--web\.max-connections\)/);
  });

  it('drops a client that never finishes its headers, and caps open connections', async () => {
    const exp = await startServe(['--web.header-timeout=1s', '--web.max-connections=3']);
    try {
      const { hostname, port } = new URL(exp.url);
      const open = () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(Number(port), hostname, () => resolve(s));
          s.resume(); // read what the server sends (a 408), so that its close is seen
          s.once('error', reject);
        });
      const closed = (s: net.Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));
      const slow = await open();
      slow.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'); // …and never the blank line
      await within(closed(slow), 30_000, 'the slow client to be dropped');
      const idle = [await open(), await open(), await open()];
      const extra = await open();
      extra.on('error', () => undefined);
      await within(closed(extra), 30_000, 'the connection over the cap to be closed');
      idle.forEach((s) => s.destroy());
      await waitFor(
        async () => ((await fetch(`${exp.url}/metrics`)).status === 200 ? true : undefined),
        '/metrics once the idle connections are gone',
      );
    } finally {
      await exp.stop();
    }
  });
});
