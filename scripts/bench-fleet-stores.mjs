// The two stores of `npm run bench:fleet` (scripts/bench-fleet.mjs) as child processes on
// 127.0.0.1: VictoriaMetrics and Prometheus over a data directory that outlives them (--reuse).
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

const children = [];

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}
/** A long-running child; its stderr's tail is kept for the error message if it dies. */
export function start(cmd, argv) {
  const c = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  c.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  c.logs = () => err;
  children.push(c);
  return c;
}
export function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stdout}${r.stderr}`.slice(-4000));
  return r.stdout;
}
async function waitHttp(url, child, what) {
  for (let i = 0; i < 3000; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited:\n${child.logs()}`);
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} not ready at ${url}`);
}
export async function stop(c) {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const done = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 60_000);
  await done;
  clearTimeout(t);
}
export async function stopAll() {
  for (const c of children) await stop(c);
}

export async function startVictoriaMetrics(work) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = start('victoria-metrics', [
    `-httpListenAddr=127.0.0.1:${port}`,
    `-storageDataPath=${join(work, 'vm')}`,
    '-retentionPeriod=1y',
    '-search.disableCache',
    '-search.latencyOffset=0s',
    '-search.maxUniqueTimeseries=5000000',
    '-search.maxQueryDuration=300s',
    '-loggerLevel=ERROR',
  ]);
  await waitHttp(`${url}/health`, child, 'VictoriaMetrics');
  return { url, child };
}

export async function startPrometheus(work) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  writeFileSync(join(work, 'prometheus.yml'), 'global: { scrape_interval: 1m }\n');
  const child = start('prometheus', [
    `--config.file=${join(work, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(work, 'prom')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--web.enable-admin-api', // to drop the recorded series of changed rule files (loopback only)
    '--storage.tsdb.retention.time=3650d',
    '--query.max-samples=2000000000',
    '--query.timeout=10m',
    '--log.level=error',
  ]);
  await waitHttp(`${url}/-/ready`, child, 'Prometheus');
  return { url, child };
}

/** Recorded series (level:metric:operations names) out of both stores, before the rules are backfilled again. */
export async function deleteRecorded(promUrl, vmUrl) {
  const match = new URLSearchParams({ 'match[]': '{__name__=~".*:.*"}' });
  for (const url of [`${promUrl}/api/v1/admin/tsdb/delete_series`, `${vmUrl}/api/v1/admin/tsdb/delete_series`]) {
    const res = await fetch(`${url}?${match}`, { method: 'POST' });
    if (!res.ok) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  }
}

async function promMetric(promUrl, name) {
  const text = await fetch(`${promUrl}/metrics`).then((r) => r.text());
  const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}
/**
 * Prometheus compacts backfilled 2 h blocks into 6 h and 18 h ones in the background (a pass a
 * minute); queries timed during that would measure the compaction. Done when a pass found nothing
 * to do: the next pass started with no compaction finished since the previous one; bounded by `limitS`.
 */
export async function waitCompacted(promUrl, log, limitS = 3600) {
  const t0 = Date.now();
  let last = { passes: NaN, compactions: NaN };
  while (Date.now() - t0 < limitS * 1000) {
    const now = {
      passes: await promMetric(promUrl, 'prometheus_tsdb_compactions_triggered_total'),
      compactions: await promMetric(promUrl, 'prometheus_tsdb_compactions_total'),
    };
    if (now.passes !== last.passes) {
      if (now.compactions === last.compactions) return Math.round((Date.now() - t0) / 1000);
      last = now;
    }
    await new Promise((r) => setTimeout(r, 5000));
  }
  log(`Prometheus still compacting after ${limitS} s: timing anyway`);
  return Math.round((Date.now() - t0) / 1000);
}
