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
//                                [--interval 30] [--job-hours 6] [--reuse DIR]
//
// --reuse DIR (or --keep DIR) keeps both stores in DIR. A DIR that already holds a complete
// backfill of the same fleet (DIR/backfill.json, written last) goes straight to the queries; the
// recording rules are backfilled again only when the rule files changed (DIR/rules.json holds
// their hash), so the query phase can be re-run alone, later, on a quieter machine.
//
// Needs Debian's `prometheus` and `victoria-metrics` packages. Everything listens on 127.0.0.1.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { DATA_VERSION, fleet } from './bench-fleet-data.mjs';
import { backfillRules } from './bench-fleet-rules.mjs';
import { deleteRecorded, run, startPrometheus, startVictoriaMetrics, stopAll, waitCompacted } from './bench-fleet-stores.mjs';

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
const KEEP = flag('reuse', '') || flag('keep', '');
// Each value under the flag it came from (the variable names are not the flags: STEP is --interval).
const given = { nodes: NODES, gpus: GPUS, jobs: JOBS, hours: HOURS, interval: STEP, 'job-hours': JOB_HOURS };
for (const [name, v] of Object.entries(given)) {
  if (!(v > 0) || (name === 'jobs' && v > NODES)) {
    process.stderr.write(
      `bench-fleet: invalid --${name}: ${flag(name, v)}${name === 'jobs' && v > NODES ? ` (more jobs than --nodes ${NODES})` : ''}\n`,
    );
    process.exit(2);
  }
}

const log = (m) => process.stderr.write(`[bench:fleet ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const work = KEEP ? resolve(KEEP) : mkdtempSync(join(tmpdir(), 'jouleflow-bench-fleet-'));
mkdirSync(work, { recursive: true });
async function cleanup() {
  await stopAll();
  if (!KEEP) rmSync(work, { recursive: true, force: true });
}
process.on('SIGINT', () => cleanup().then(() => process.exit(130)));
process.on('SIGTERM', () => cleanup().then(() => process.exit(143)));

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
      unit: '.+', // the synthetic fleet reports no work: the efficiency panels read their energy side only
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
  return RULE_FILES.flatMap((f) => parseYaml(readFileSync(f, 'utf8')).groups.flatMap((g) => g.rules))
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
const PARAMS = { nodes: NODES, gpus: GPUS, jobs: JOBS, hours: HOURS, interval: STEP, jobHours: JOB_HOURS, data: DATA_VERSION };
const RULE_FILES = readdirSync(join(ROOT, 'dashboards/alerts'))
  .filter((f) => f.endsWith('.rules.yml'))
  .sort()
  .map((f) => join(ROOT, 'dashboards/alerts', f));
/** The rule files as they are now (read when their backfill starts: they may change during a long run). */
function rulesHash() {
  const h = createHash('sha256');
  for (const f of RULE_FILES) h.update(`${f.slice(ROOT.length)}\0${readFileSync(f, 'utf8')}\0`);
  return h.digest('hex');
}
const readMarker = (name) => {
  try {
    return JSON.parse(readFileSync(join(work, name), 'utf8'));
  } catch {
    return undefined;
  }
};
const writeMarker = (name, value) => writeFileSync(join(work, name), JSON.stringify(value, null, 2) + '\n');
const sameFleet = (m) => m && JSON.stringify(m.params) === JSON.stringify(PARAMS);

const t0run = performance.now();
const secondsSince = (t0) => Math.round((performance.now() - t0) / 1000);
let backfilled = readMarker('backfill.json');
if (!sameFleet(backfilled)) {
  if (backfilled) log(`${work} holds another fleet (${JSON.stringify(backfilled.params)}): backfilling again`);
  backfilled = undefined;
  // only what a run writes: DIR may be any directory
  for (const d of readdirSync(work).filter((f) => /^(vm|prom|rule-blocks|rule-levels|prometheus\.yml|rules\.json|chunk-\d+\.om)$/.test(f)))
    rmSync(join(work, d), { recursive: true, force: true });
}
const model = fleet({ NODES, GPUS, JOBS, HOURS, STEP, JOB_HOURS, ...(backfilled ? { END: backfilled.END } : {}) });
const { BEGIN, END } = model;
const QSTEP = Math.max(STEP, Math.ceil((HOURS * 3600) / 1000 / 60) * 60); // Grafana's interval for a ~1000 px panel

try {
  run('promtool', ['--version']);
  run('victoria-metrics', ['-version']);
  log(`fleet: ${NODES} nodes × ${GPUS} GPUs, ${JOBS} concurrent jobs of ${JOB_HOURS} h, ${HOURS} h at ${STEP} s; data in ${work}`);
  const vm = await startVictoriaMetrics(work);
  if (backfilled) log(`reusing the backfill of ${backfilled.finished} (${backfilled.samples.toLocaleString('en')} samples)`);
  else {
    mkdirSync(join(work, 'prom'), { recursive: true });
    const t0 = performance.now();
    const { series, samples } = await model.backfill(vm.url, join(work, 'prom'), work, log);
    await fetch(`${vm.url}/internal/force_flush`);
    backfilled = { params: PARAMS, BEGIN, END, series, samples, seconds: secondsSince(t0), finished: new Date().toISOString() };
    writeMarker('backfill.json', backfilled); // last: a backfill cut short is redone
    log(`backfill done: ${samples.toLocaleString('en')} samples in ${backfilled.seconds} s`);
  }

  let prom = await startPrometheus(work);
  // the recording rules over the whole range, on each store by its own rule engine
  let recorded = readMarker('rules.json');
  const hash = rulesHash();
  if (recorded?.hash !== hash || recorded?.END !== END) {
    // what changed rule files, or a rule backfill cut short, recorded before: none of it stays
    if (recorded) log('the rule files changed since their backfill: recording them again');
    await deleteRecorded(prom.url, vm.url);
    rmSync(join(work, 'rules.json'), { force: true });
    const done = await backfillRules({ work, prom, vmUrl: vm.url, ruleFiles: RULE_FILES, BEGIN, END, STEP, log });
    prom = done.prom;
    recorded = { hash, END, seconds: done.seconds, finished: new Date().toISOString() };
    writeMarker('rules.json', recorded);
  } else log(`reusing the rule backfill of ${recorded.finished}`);

  log('waiting for Prometheus to finish compacting the backfilled blocks');
  const compactS = await waitCompacted(prom.url, log);
  const rows = [];
  const loads = [loadavg()[0]];
  const t0q = performance.now();
  for (const q of [...dashboardQueries(QSTEP), ...ruleQueries()]) {
    await timed(prom.url, q, END, QSTEP, false); // warm the page cache; the second run is reported
    await timed(vm.url, q, END, QSTEP, false);
    const p = await timed(prom.url, q, END, QSTEP, true);
    const v = await timed(vm.url, q, END, QSTEP, false);
    rows.push({ ...q, p, v, series: await seriesTouched(prom.url, q.expr, END) });
    loads.push(loadavg()[0]);
    log(`${q.what}: ${p.error ?? `${p.ms.toFixed(0)} ms`} / ${v.error ?? `${v.ms.toFixed(0)} ms`}`);
  }
  rows.sort((a, b) => Math.max(b.p.ms, b.v.ms) - Math.max(a.p.ms, a.v.ms));
  const fmt = (r) => (r.error ? `error: ${r.error}` : r.ms.toFixed(0));
  const lines = [
    `jouleflow fleet benchmark: ${NODES} nodes × ${GPUS} GPUs, ${JOBS} concurrent jobs (${JOB_HOURS} h each), ${HOURS} h at one sample per ${STEP} s`,
    `${backfilled.series.toLocaleString('en')} series at a time, ${backfilled.samples.toLocaleString('en')} samples; range queries step ${QSTEP} s; times are the second of two runs`,
    '',
    `backfill (generate, promtool, VictoriaMetrics import): ${backfilled.seconds} s (${backfilled.finished})`,
    `recording rules: promtool create-blocks-from rules ${recorded.seconds.promtool} s, vmalert -replay ${recorded.seconds.vmalert} s`,
    `Prometheus compaction waited for: ${compactS} s; queries: ${secondsSince(t0q)} s; this run: ${secondsSince(t0run)} s`,
    `load average (1 min) while measuring: ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} on ${availableParallelism()} cores`,
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
