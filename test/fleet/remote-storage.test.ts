import { spawnSync } from 'child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { createServer, type Server } from 'http';
import { tmpdir } from 'os';
import { basename, join } from 'path';
import { stringify as toYaml } from 'yaml';
import { dashboardExpressions, labelValuesSelector, substitute, TEMPLATE_VALUES } from '../dashboards/lib';
import { ensureBuilt, startServe, waitFor, type RunningExporter } from '../helpers/exporter-process';
import { freePort, loadRules, REPO, requireBinary, ruleFiles } from '../prometheus/lib';
import { fasterRules } from './lib';
import { byLabels, instant, type Peer, startPeer, stopPeer, waitReady } from './peers';

/**
 * jouleflow on Prometheus remote storage, proven with VictoriaMetrics (Debian 1.79): three real
 * exporters on loopback (one `npm run demo` with the fake NVML GPU replaying the H200 trace, two
 * `serve` on this machine's /sys and /proc sharing a job across both nodes) scraped every second
 * by Prometheus, which evaluates every rule file of dashboards/alerts and remote_writes all its
 * series to VictoriaMetrics. Every dashboard expression is then evaluated on Prometheus and on
 * VictoriaMetrics at the same instant, over the same samples, and must agree. The alternative
 * pipeline runs beside it: vmagent scrapes the same exporters into a second VictoriaMetrics, where
 * vmalert evaluates the same rule files, records and notifies.
 *
 * Rules run FACTOR× faster here (windows and intervals shortened by fasterRules) so the suite
 * takes about a minute rather than ten.
 */

const FACTOR = 20;
const JOB = 'fleet-it-job';
const VARS = { ...TEMPLATE_VALUES, __range: '30s', __rate_interval: '10s', __interval: '1s' };
/**
 * Agreement bounds: both stores hold the same samples (recorded series included, from Prometheus).
 * Gauges, counts, joins and *_over_time() of recorded series read the same samples and agree to
 * rounding. rate()/increase() of raw counters do not compute the same thing: Prometheus
 * extrapolates to the window edges, VictoriaMetrics starts from the sample before the window; over
 * a 10 s window of 1 s scrapes (late ones on a loaded machine) of a GPU stepping between idle and
 * training, that is up to tens of percent. histogram_quantile() over a few reads: same series only.
 */
function tolerance(expr: string): { rel: number; why: string } {
  if (/histogram_quantile/.test(expr))
    return { rel: Infinity, why: 'p99 of the few reads in a 10 s window is the slowest read: windows one sample apart differ' };
  if (/\[1h\]/.test(expr))
    return {
      rel: Infinity,
      why: "the 1 h window holds the counters' first samples: VictoriaMetrics counts from 0, Prometheus from the first sample",
    };
  if (/\b(rate|increase)\(/.test(expr)) return { rel: 0.35, why: 'rate()/increase() of raw counters: extrapolation vs previous sample' };
  return { rel: 1e-9, why: 'the same samples read by both engines' };
}

const peers: Peer[] = [];
let nodeB: RunningExporter | undefined;
let nodeC: RunningExporter | undefined;
const burners: Peer[] = [];
let sink: Server | undefined;
const notified: Array<{ labels: Record<string, string> }> = [];
let work = '';
let prom = '';
let vm = '';
let vm2 = '';
let vmalertUrl = '';
let targets: string[] = [];
const ARTIFACTS = join(REPO, 'test/artifacts/fleet');
let evalTime = 0;

function port(url: string): string {
  return url.replace(/^http:\/\//, '');
}

async function startVm(name: string): Promise<string> {
  const p = await freePort();
  const vmPeer = startPeer(name, 'victoria-metrics', [
    `-httpListenAddr=127.0.0.1:${p}`,
    `-storageDataPath=${join(work, name)}`,
    '-retentionPeriod=1d',
    '-search.latencyOffset=1s',
    '-search.disableCache',
    '-loggerLevel=WARN',
  ]);
  peers.push(vmPeer);
  await waitReady(vmPeer, `http://127.0.0.1:${p}/health`);
  return `http://127.0.0.1:${p}`;
}

/** Rule files as the stores load them here: FACTOR× faster; for vmalert one alert driven to fire. */
function writeRules(dir: string, drive: boolean): string[] {
  mkdirSync(dir, { recursive: true });
  return ruleFiles().map((f) => {
    const r = fasterRules(loadRules(f), FACTOR);
    for (const g of r.groups) {
      for (const rule of g.rules) {
        if (!drive) continue;
        if (rule.record === 'jouleflow:threshold:node_power_watts') rule.expr = 'vector(0.001)';
        if (rule.alert === 'JouleflowNodePowerHigh') rule.for = '0s';
      }
    }
    const out = join(dir, basename(f));
    writeFileSync(out, toYaml(r));
    return out;
  });
}

/** A job registered and ended at once on one node, so the end-time expressions have data too. */
async function registerEndedJob(url: string): Promise<void> {
  const headers = { 'content-type': 'application/json' };
  const body = JSON.stringify({ id: `${JOB}-ended`, name: 'ended fleet job', pids: [process.pid] });
  const res = await fetch(`${url}/api/v1/jobs`, { method: 'POST', headers, body });
  if (res.status !== 201) throw new Error(`registering ${JOB}-ended: ${res.status} ${await res.text()}`);
  const end = await fetch(`${url}/api/v1/jobs/${JOB}-ended/end`, { method: 'POST' });
  if (end.status !== 200) throw new Error(`ending ${JOB}-ended: ${end.status} ${await end.text()}`);
}

async function registerCrossNodeJob(url: string): Promise<void> {
  const burner = startPeer('burner', process.execPath, [
    '-e',
    'setInterval(() => { const e = Date.now() + 30; while (Date.now() < e); }, 100)',
  ]);
  burners.push(burner);
  const res = await fetch(`${url}/api/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: JOB, name: 'fleet integration job', pids: [burner.child.pid] }),
  });
  if (res.status !== 201) throw new Error(`registering ${JOB} on ${url}: ${res.status} ${await res.text()}`);
}

beforeAll(async () => {
  requireBinary('prometheus', 'prometheus');
  for (const b of ['victoria-metrics', 'vmagent', 'vmalert']) requireBinary(b, 'victoria-metrics', ['-version']);
  ensureBuilt();
  const lib = spawnSync('sh', [join(REPO, 'test/fakes/nvml/build.sh')], { encoding: 'utf8' });
  if (lib.status !== 0) throw new Error(`building the fake NVML library failed:\n${lib.stdout}${lib.stderr}`);
  work = mkdtempSync(join(tmpdir(), 'jouleflow-fleet-'));

  // three exporters: the demo (fake NVML GPU job) and two real ones sharing a job
  const demo = startPeer('demo', process.execPath, [join(REPO, 'scripts/demo.mjs')], {
    JOULEFLOW_DEMO_LISTEN: '127.0.0.1:0',
    JOULEFLOW_DEMO_HOURS: '0.05',
    JOULEFLOW_JOBS_TOKEN: '',
  });
  peers.push(demo);
  const demoUrl = await waitFor(
    async () => {
      if (demo.child.exitCode !== null) throw new Error(demo.logs());
      return /^demo ready (http:\/\/\S+)$/m.exec(demo.logs())?.[1];
    },
    'the demo to start',
    60_000,
  );
  const cfg = join(work, 'jouleflow.yml');
  writeFileSync(cfg, toYaml({ carbon: { zone: 'fleet-zone', gramsPerKwh: 300 } }));
  nodeB = await startServe([`--config.file=${cfg}`, '--sample.interval=1s']);
  nodeC = await startServe(['--sample.interval=1s']);
  await registerCrossNodeJob(nodeB.url);
  await registerCrossNodeJob(nodeC.url);
  await registerEndedJob(nodeC.url);
  targets = [port(demoUrl), port(nodeB.url), port(nodeC.url)];

  vm = await startVm('vm');
  vm2 = await startVm('vm-vmagent');
  const scrape = { job_name: 'jouleflow', static_configs: [{ targets }] };

  // Prometheus: scrapes, evaluates its rules, remote_writes raw series (vmalert records for VictoriaMetrics)
  const promPort = await freePort();
  prom = `http://127.0.0.1:${promPort}`;
  const promRules = writeRules(join(work, 'prom-rules'), false);
  writeFileSync(
    join(work, 'prometheus.yml'),
    toYaml({
      global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
      rule_files: promRules,
      scrape_configs: [scrape],
      remote_write: [
        {
          url: `${vm}/api/v1/write`,
          queue_config: { batch_send_deadline: '1s' },
        },
      ],
    }),
  );
  const p = startPeer('prometheus', 'prometheus', [
    `--config.file=${join(work, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(work, 'prom')}`,
    `--web.listen-address=127.0.0.1:${promPort}`,
    '--log.level=warn',
  ]);
  peers.push(p);
  await waitReady(p, `${prom}/-/ready`);

  // vmagent: the alternative scraper, into its own VictoriaMetrics
  writeFileSync(join(work, 'scrape.yml'), toYaml({ global: { scrape_interval: '1s', scrape_timeout: '900ms' }, scrape_configs: [scrape] }));
  const agentPort = await freePort();
  const agent = startPeer('vmagent', 'vmagent', [
    `-promscrape.config=${join(work, 'scrape.yml')}`,
    `-remoteWrite.url=${vm2}/api/v1/write`,
    `-remoteWrite.tmpDataPath=${join(work, 'vmagent')}`,
    '-remoteWrite.flushInterval=1s',
    `-httpListenAddr=127.0.0.1:${agentPort}`,
    '-loggerLevel=WARN',
  ]);
  peers.push(agent);

  // an Alertmanager stand-in that records what vmalert sends
  const sinkPort = await freePort();
  sink = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.method === 'POST' && /\/api\/v[12]\/alerts$/.test(req.url ?? '')) notified.push(...(JSON.parse(body) as typeof notified));
      res.writeHead(200).end('{}');
    });
  }).listen(sinkPort, '127.0.0.1');

  const alertPort = await freePort();
  vmalertUrl = `http://127.0.0.1:${alertPort}`;
  writeRules(join(work, 'vmalert-rules'), true);
  const alert = startPeer('vmalert', 'vmalert', [
    `-rule=${join(work, 'vmalert-rules')}/*.yml`,
    `-datasource.url=${vm2}`,
    `-remoteWrite.url=${vm2}`,
    '-remoteWrite.flushInterval=1s',
    '-evaluationInterval=1s',
    `-notifier.url=http://127.0.0.1:${sinkPort}`,
    `-httpListenAddr=127.0.0.1:${alertPort}`,
    '-loggerLevel=WARN',
  ]);
  peers.push(alert);
  await waitReady(alert, `${vmalertUrl}/-/healthy`);

  // ≥ 45 s of every exporter in VictoriaMetrics (the 30 s range and the 15 s rate5m windows covered)
  await waitFor(
    async () => {
      const r = await instant(vm, 'count_over_time(jouleflow_build_info[45s]) >= 40', Date.now() / 1000 - 2);
      return r.length === targets.length ? true : undefined;
    },
    '45 s of samples from the three exporters in VictoriaMetrics',
    120_000,
  );
  // an instant up to which VictoriaMetrics holds every sample (remote_write lags on a loaded machine)
  evalTime = Math.floor(Date.now() / 1000) - 3 + 0.237;
  const newest = async (base: string, q: string) => Number((await instant(base, q, Date.now() / 1000))[0]?.value[1] ?? 0);
  await waitFor(
    async () =>
      (await newest(vm, 'min(timestamp(jouleflow_build_info))')) > evalTime + 2 &&
      (await newest(vm, 'min(timestamp(job_id_component:jouleflow_job_power_watts:rate2m))')) > evalTime + 2
        ? true
        : undefined,
    'VictoriaMetrics to hold the samples past the evaluation time',
    60_000,
  );
  // ... and the alternative pipeline has recorded through vmalert
  await waitFor(
    async () => ((await newest(vm2, 'count(job_id_component:jouleflow_job_energy_joules:increase1m)')) > 0 ? true : undefined),
    'vmalert to record into the vmagent VictoriaMetrics',
    60_000,
  );
}, 200_000);

afterAll(async () => {
  for (const b of burners) await stopPeer(b);
  await nodeB?.stop();
  await nodeC?.stop();
  for (const p of [...peers].reverse()) await stopPeer(p);
  await new Promise((r) => (sink ? sink.close(r) : r(undefined)));
  if (work) rmSync(work, { recursive: true, force: true });
}, 60_000);

describe('Prometheus remote_write to VictoriaMetrics, vmagent and vmalert', () => {
  test('every dashboard expression agrees between Prometheus and VictoriaMetrics', async () => {
    const report: Array<{ where: string; series: number; bound: number; worst: number }> = [];
    const problems: string[] = [];
    // Jobs that appeared within the last minute (other processes on this machine are discovered as
    // jobs too) are compared by labels only: for a counter whose first sample falls inside the
    // window, VictoriaMetrics' increase() counts from 0 and Prometheus' from the first sample.
    const young = new Set(
      (await instant(prom, 'count by (job_id) (count_over_time(jouleflow_job_info[60s])) < 55', evalTime)).map((x) => x.metric.job_id),
    );
    const isYoung = (k: string) => [...young].some((j) => k.includes(`job_id="${j}"`));
    for (const e of dashboardExpressions()) {
      let expr = substitute(e.expr, VARS);
      if (e.source === 'variable') expr = labelValuesSelector(expr)?.selector ?? expr;
      const [a, b] = await Promise.all([instant(prom, expr, evalTime), instant(vm, expr, evalTime)]);
      const pa = byLabels(a);
      const vb = byLabels(b);
      const tol = tolerance(expr);
      const where = `${e.dashboard} ${e.where}`;
      const entry = { where, series: pa.size, bound: tol.rel, worst: 0 };
      report.push(entry);
      if (pa.size === 0 && !/counter_reset|snmp\|modbus|source_up == 0/.test(expr))
        problems.push(`${where}: no data on Prometheus\n  ${expr}`);
      const only = [...[...pa.keys()].filter((k) => !vb.has(k)), ...[...vb.keys()].filter((k) => !pa.has(k))].filter((k) => !isYoung(k));
      if (only.length) problems.push(`${where}: series on one store only: ${only.join(' ')}\n  ${expr}`);
      const scale = Math.max(...[...pa.values()].map(Math.abs), 1e-9);
      for (const [k, x] of pa) {
        const y = vb.get(k);
        if (y === undefined || isYoung(k)) continue;
        const rel = x === y ? 0 : Math.abs(x - y) / Math.max(Math.abs(x), Math.abs(y));
        if (Number.isFinite(tol.rel)) entry.worst = Math.max(entry.worst, rel);
        if (Math.abs(x - y) > tol.rel * Math.max(Math.abs(x), Math.abs(y)) + 1e-6 * scale)
          problems.push(`${where} ${k}: Prometheus ${x} vs VictoriaMetrics ${y} (bound ${tol.rel}: ${tol.why})\n  ${expr}`);
      }
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    writeFileSync(
      join(ARTIFACTS, 'agreement.json'),
      JSON.stringify(
        report.sort((a, b) => b.worst - a.worst),
        null,
        2,
      ),
    );
    expect(report.length).toBeGreaterThan(50);
    expect(problems).toEqual([]);
  });

  test('vmalert evaluates every rule of dashboards/alerts on the vmagent VictoriaMetrics without errors, and notifies', async () => {
    const body = (await (await fetch(`${vmalertUrl}/api/v1/rules`)).json()) as {
      data: { groups: Array<{ name: string; file: string; rules: Array<{ name: string; lastError: string; type: string }> }> };
    };
    const rules = body.data.groups.flatMap((g) => g.rules.map((r) => ({ group: g.name, name: r.name, lastError: r.lastError })));
    const expected = ruleFiles().reduce((n, f) => n + loadRules(f).groups.reduce((k, g) => k + g.rules.length, 0), 0);
    expect(rules.length).toBe(expected);
    expect(rules.filter((r) => r.lastError)).toEqual([]);
    const fired = await waitFor(
      async () => notified.find((a) => a.labels.alertname === 'JouleflowNodePowerHigh'),
      'vmalert to send JouleflowNodePowerHigh to the notifier',
      60_000,
    );
    expect(targets).toContain(fired.labels.instance);
  }, 90_000);

  test('vmagent + vmalert: recorded series for every component; Σ job counters = node counters per component', async () => {
    const now = Date.now() / 1000 - 2;
    const recorded = 'sum by (component) (last_over_time(job_id_component:jouleflow_job_energy_joules:increase1m[10s]))';
    const jobs = byLabels(await instant(vm2, recorded, now));
    const node = byLabels(await instant(vm2, 'sum by (component) (jouleflow_node_energy_joules_total)', now));
    expect([...jobs.keys()].sort()).toEqual([...node.keys()].sort());
    const counters = byLabels(await instant(vm2, 'sum by (component) (jouleflow_job_energy_joules_total)', evalTime));
    const nodeCounters = byLabels(await instant(vm2, 'sum by (component) (jouleflow_node_energy_joules_total)', evalTime));
    for (const [k, v] of nodeCounters)
      expect({ k, rel: Math.abs((counters.get(k) ?? 0) - v) / Math.max(v, 1e-9) < 1e-6 }).toEqual({ k, rel: true });
  });

  test('the job that spans two nodes is summed across them, by Prometheus and by vmalert', async () => {
    const nodes = await instant(prom, `job_id:jouleflow_job_nodes:count{job_id="${JOB}"}`, evalTime);
    expect(nodes.map((s) => Number(s.value[1]))).toEqual([2]);
    const q = `last_over_time(job_id:jouleflow_job_nodes:count{job_id="${JOB}"}[10s])`;
    const vmNodes = await instant(vm2, q, Date.now() / 1000 - 2);
    expect(vmNodes.map((s) => Number(s.value[1]))).toEqual([2]);
  });

  test('vmagent scrapes the same series as Prometheus', async () => {
    const q = 'count by (instance) (jouleflow_node_energy_joules_total)';
    const viaProm = byLabels(await instant(vm, q, evalTime));
    const viaAgent = byLabels(await instant(vm2, q, evalTime));
    expect(viaProm.size).toBe(3);
    expect(Object.fromEntries(viaAgent)).toEqual(Object.fromEntries(viaProm));
    // the same energy counters, read at most a couple of scrapes apart
    const e1 = byLabels(await instant(vm, 'sum by (instance) (rate(jouleflow_node_energy_joules_total[20s]))', evalTime));
    const e2 = byLabels(await instant(vm2, 'sum by (instance) (rate(jouleflow_node_energy_joules_total[20s]))', evalTime));
    for (const [k, v] of e1) expect({ k, close: Math.abs((e2.get(k) ?? 0) - v) <= 0.2 * v }).toEqual({ k, close: true });
  });
});
