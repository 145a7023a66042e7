#!/usr/bin/env node
// `npm run bench:fleet`: jouleflow's dashboards and recording rules at fleet scale, on Prometheus
// and on VictoriaMetrics. A synthetic fleet (default: the issue's 1 000 nodes × 8 GPUs × 10
// concurrent jobs over 24 h, a sample every 30 s) is generated in the exporter's own exposition
// (same families, labels and label values as /metrics), backfilled into Prometheus with
// `promtool tsdb create-blocks-from openmetrics` and into VictoriaMetrics through its import API;
// the recording rules of dashboards/alerts are backfilled with `promtool tsdb create-blocks-from
// rules` and `vmalert -replay`. Then every dashboard panel and every recording rule is queried
// over the 24 h on both stores; it prints a table of query time and series touched, worst first.
//
//   node scripts/bench-fleet.mjs [--nodes 1000] [--gpus 8] [--jobs 10] [--hours 24]
//                                [--interval 30] [--job-hours 6] [--keep DIR]
//
// Needs Debian's `prometheus` and `victoria-metrics` packages. Everything listens on 127.0.0.1.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { fleet } from './bench-fleet-data.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const NODES = Number(flag('nodes', 1000));
const GPUS = Number(flag('gpus', 8));
const JOBS = Number(flag('jobs', 10));
const HOURS = Number(flag('hours', 24));
const STEP = Number(flag('interval', 30)); // seconds between samples: a scrape interval; the 1m rules need ≤ 30 s
const JOB_HOURS = Number(flag('job-hours', 6));
const KEEP = flag('keep', '');
for (const [k, v] of Object.entries({ NODES, GPUS, JOBS, HOURS, STEP, JOB_HOURS })) {
  if (!(v > 0) || (k === 'JOBS' && v > NODES)) {
    process.stderr.write(`bench-fleet: invalid --${k.toLowerCase().replace('_', '-')}: ${v}\n`);
    process.exit(2);
  }
}

const log = (m) => process.stderr.write(`[bench:fleet ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const work = KEEP || mkdtempSync(join(tmpdir(), 'jouleflow-bench-fleet-'));
const children = [];

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}
function start(cmd, argv) {
  const c = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  c.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
  c.logs = () => err;
  children.push(c);
  return c;
}
function run(cmd, argv) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stdout}${r.stderr}`.slice(-4000));
  return r.stdout;
}
async function waitHttp(url, child, what) {
  for (let i = 0; i < 600; i++) {
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
async function stop(c) {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const done = new Promise((r) => c.once('exit', r));
  c.kill('SIGTERM');
  const t = setTimeout(() => c.kill('SIGKILL'), 20_000);
  await done;
  clearTimeout(t);
}
async function cleanup() {
  for (const c of children) await stop(c);
  if (!KEEP) rmSync(work, { recursive: true, force: true });
}
process.on('SIGINT', () => cleanup().then(() => process.exit(130)));

// ---------------------------------------------------------------- what is queried
const VAR = /\$\{?(\w+)\}?/g;
/** Every panel target of the three dashboards, variables substituted as Grafana would over HOURS. */
function dashboardQueries(qstep) {
  const rate = `${Math.max(4 * STEP, qstep + STEP)}s`;
  const out = [];
  for (const f of ['fleet.json', 'training-jobs.json', 'node-energy.json']) {
    const d = JSON.parse(readFileSync(join(ROOT, 'dashboards', f), 'utf8'));
    // the node dashboard is read one node at a time; the fleet and jobs dashboards for all of it
    const vars = {
      __range: `${HOURS}h`,
      __interval: `${qstep}s`,
      __rate_interval: rate,
      node: d.uid === 'jouleflow-node' ? 'node-0001:10042' : '.*',
      job_id: '.+',
    };
    for (const p of d.panels.flatMap((x) => [x, ...(x.panels ?? [])])) {
      for (const t of p.targets ?? []) {
        if (!t.expr) continue;
        const expr = t.expr.replace(VAR, (m, v) => vars[v] ?? m);
        out.push({ what: `${d.uid.replace('jouleflow-', '')}: ${p.title} ${t.refId}`, expr, range: t.range === true });
      }
    }
  }
  return out;
}
function ruleQueries() {
  return readdirSync(join(ROOT, 'dashboards/alerts'))
    .filter((f) => f.endsWith('.rules.yml'))
    .flatMap((f) => parseYaml(readFileSync(join(ROOT, 'dashboards/alerts', f), 'utf8')).groups.flatMap((g) => g.rules))
    .filter((r) => r.record && !r.record.startsWith('jouleflow:threshold:'))
    .map((r) => ({ what: `rule: ${r.record}`, expr: r.expr.trim(), range: false }));
}

async function timed(base, q, end, qstep, stats) {
  const params = q.range
    ? { query: q.expr, start: String(BEGIN), end: String(end), step: String(qstep) }
    : { query: q.expr, time: String(end) };
  if (stats) params.stats = 'all';
  const t0 = performance.now();
  const res = await fetch(`${base}/api/v1/${q.range ? 'query_range' : 'query'}`, { method: 'POST', body: new URLSearchParams(params) });
  const body = await res.json();
  const ms = performance.now() - t0;
  if (body.status !== 'success') return { ms, error: `${body.errorType}: ${body.error}`.slice(0, 80) };
  return { ms, result: body.data.result.length, samples: body.data.stats?.samples?.totalQueryableSamples };
}
/** Series a query reads: every jouleflow selector in it, counted over the whole range. */
async function seriesTouched(base, expr, end) {
  let n = 0;
  for (const m of expr.matchAll(/(?<![\w:])([\w:]*jouleflow[\w:]*)(\{[^}]*\})?/g)) {
    const q = `count(last_over_time(${m[1]}${m[2] ?? ''}[${HOURS}h]))`;
    const body = await fetch(`${base}/api/v1/query`, { method: 'POST', body: new URLSearchParams({ query: q, time: String(end) }) }).then(
      (x) => x.json(),
    );
    n += Number(body.data?.result?.[0]?.value?.[1] ?? 0);
  }
  return n;
}

// ---------------------------------------------------------------- the run
const model = fleet({ NODES, GPUS, JOBS, HOURS, STEP, JOB_HOURS });
const BEGIN = model.BEGIN;
const END = model.END;
const QSTEP = Math.max(STEP, Math.ceil((HOURS * 3600) / 1000 / 60) * 60); // Grafana's interval for a ~1000 px panel
const timings = {};
const tick = (name, t0) => (timings[name] = ((performance.now() - t0) / 1000).toFixed(0));

try {
  run('promtool', ['--version']);
  run('victoria-metrics', ['-version']);
  log(`fleet: ${NODES} nodes × ${GPUS} GPUs, ${JOBS} concurrent jobs of ${JOB_HOURS} h, ${HOURS} h at ${STEP} s; data in ${work}`);
  const vmPort = await freePort();
  const vmUrl = `http://127.0.0.1:${vmPort}`;
  const vm = start('victoria-metrics', [
    `-httpListenAddr=127.0.0.1:${vmPort}`,
    `-storageDataPath=${join(work, 'vm')}`,
    '-retentionPeriod=1y',
    '-search.disableCache',
    '-search.latencyOffset=0s',
    '-search.maxUniqueTimeseries=5000000',
    '-search.maxQueryDuration=300s',
    '-loggerLevel=ERROR',
  ]);
  await waitHttp(`${vmUrl}/health`, vm, 'VictoriaMetrics');
  const blocks = join(work, 'prom');
  mkdirSync(blocks, { recursive: true });
  let t0 = performance.now();
  const { series, samples } = await model.backfill(vmUrl, blocks, work, log);
  tick('backfill (generate, promtool, VictoriaMetrics import)', t0);

  const promPort = await freePort();
  const promUrl = `http://127.0.0.1:${promPort}`;
  writeFileSync(join(work, 'prometheus.yml'), 'global: { scrape_interval: 1m }\n');
  const promArgs = [
    `--config.file=${join(work, 'prometheus.yml')}`,
    `--storage.tsdb.path=${blocks}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
    '--storage.tsdb.retention.time=3650d',
    '--query.max-samples=2000000000',
    '--query.timeout=10m',
    '--log.level=error',
  ];
  let prom = start('prometheus', promArgs);
  await waitHttp(`${promUrl}/-/ready`, prom, 'Prometheus');

  // the recording rules over the whole range, on each store by its own rule engine
  const rules = readdirSync(join(ROOT, 'dashboards/alerts'))
    .filter((f) => f.endsWith('.rules.yml'))
    .map((f) => join(ROOT, 'dashboards/alerts', f));
  t0 = performance.now();
  const ruleBlocks = join(work, 'rule-blocks');
  run('promtool', [
    'tsdb',
    'create-blocks-from',
    'rules',
    `--start=${BEGIN}`,
    `--end=${END}`,
    `--url=${promUrl}`,
    `--output-dir=${ruleBlocks}`,
    `--eval-interval=${STEP}s`,
    ...rules,
  ]);
  tick('recording rules: promtool create-blocks-from rules', t0);
  await stop(prom);
  for (const b of readdirSync(ruleBlocks)) renameSync(join(ruleBlocks, b), join(blocks, b));
  prom = start('prometheus', promArgs);
  await waitHttp(`${promUrl}/-/ready`, prom, 'Prometheus');
  t0 = performance.now();
  const iso = (s) => new Date(s * 1000).toISOString();
  const replay = start('vmalert', [
    ...rules.map((r) => `-rule=${r}`),
    `-datasource.url=${vmUrl}`,
    `-remoteWrite.url=${vmUrl}`,
    `-replay.timeFrom=${iso(BEGIN)}`,
    `-replay.timeTo=${iso(END)}`,
    '-replay.disableProgressBar',
    `-evaluationInterval=${STEP}s`,
    '-loggerLevel=ERROR',
  ]);
  const code = await new Promise((r) => replay.once('exit', r));
  if (code !== 0) throw new Error(`vmalert -replay failed:\n${replay.logs()}`);
  await fetch(`${vmUrl}/internal/force_flush`);
  tick('recording rules: vmalert -replay', t0);

  const rows = [];
  for (const q of [...dashboardQueries(QSTEP), ...ruleQueries()]) {
    await timed(promUrl, q, END, QSTEP, false); // warm the page cache; the second run is reported
    await timed(vmUrl, q, END, QSTEP, false);
    const p = await timed(promUrl, q, END, QSTEP, true);
    const v = await timed(vmUrl, q, END, QSTEP, false);
    rows.push({ ...q, p, v, series: await seriesTouched(promUrl, q.expr, END) });
    log(`${q.what}: ${p.error ?? `${p.ms.toFixed(0)} ms`} / ${v.error ?? `${v.ms.toFixed(0)} ms`}`);
  }
  rows.sort((a, b) => Math.max(b.p.ms, b.v.ms) - Math.max(a.p.ms, a.v.ms));
  const fmt = (r) => (r.error ? `error: ${r.error}` : r.ms.toFixed(0));
  const lines = [
    `jouleflow fleet benchmark: ${NODES} nodes × ${GPUS} GPUs, ${JOBS} concurrent jobs (${JOB_HOURS} h each), ${HOURS} h at one sample per ${STEP} s`,
    `${series.toLocaleString('en')} series at a time, ${samples.toLocaleString('en')} samples; range queries step ${QSTEP} s; times are the second of two runs`,
    '',
    ...Object.entries(timings).map(([k, v]) => `${k}: ${v} s`),
    '',
    '| query | Prometheus ms | VictoriaMetrics ms | series touched | samples (Prometheus) | kind |',
    '|---|---:|---:|---:|---:|---|',
    ...rows.map(
      (r) =>
        `| ${r.what} | ${fmt(r.p)} | ${fmt(r.v)} | ${r.series.toLocaleString('en')} | ${r.p.samples?.toLocaleString('en') ?? '—'} | ${r.range ? 'range' : 'instant'} |`,
    ),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  mkdirSync(join(ROOT, 'test/artifacts'), { recursive: true });
  writeFileSync(join(ROOT, 'test/artifacts/bench-fleet.md'), lines.join('\n') + '\n');
} finally {
  await cleanup();
}
