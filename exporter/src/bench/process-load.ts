import { execFileSync, spawn, type ChildProcess } from 'child_process';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'fs';
import { createServer } from 'net';
import * as path from 'path';
import { setTimeout as sleep } from 'timers/promises';
import { cpuSeconds, firstFullMetrics, serveLabel, startServe, stop } from './process';
import type { BenchRow } from './table';

/**
 * `jouleflow serve` under load, measured from outside over a window: (a) background CPU with 8 fake
 * GPUs (test/fakes/nvml) and 100 jobs on 2 000 sleeping processes, no scrapes, registered by PID,
 * then by cgroup (one per job, as Slurm and Kubernetes make; needs root);
 * (b) CPU at a 15 s scrape interval, beside node_exporter scraped the same way in the same window
 * when `prometheus-node-exporter` or `node_exporter` is on PATH (Debian: apt-get install
 * prometheus-node-exporter). The windows run one after the other, so (a)'s processes are not in (b).
 */

const ROOT = path.resolve(__dirname, '../../..');
const FAKE_NVML_DIR = path.join(ROOT, 'test/fakes/nvml');
const FAKE_NVML = path.join(FAKE_NVML_DIR, 'build/libnvidia-ml.so.1');
// Two processes on every GPU, so each tick also reads per-process GPU use.
const TRACE = path.join(ROOT, 'test/fixtures/nvidia-h200/two-gpu-trace.json');
const GPUS = 8;
const JOBS = 100;
const PER_JOB = 20;
const SCRAPE_EVERY_S = 15;
/** Seconds between the jobs' registration and the window. */
const SETTLE_S = 30;

const thousands = (n: number) => String(n).replace(/\B(?=(\d{3})+$)/g, ' ');

/**
 * One tree per job: a shell and its PER_JOB − 1 sleeping children, in a process group of its own;
 * with `cgroups`, the shell first joins its job's cgroup (its children are born there), as a Slurm
 * or Kubernetes job's processes are.
 */
function startTrees(cgroups?: BenchCgroups): ChildProcess[] {
  return Array.from({ length: JOBS }, (_, k) => {
    const join = (cgroups?.procsFiles(k) ?? []).map((f) => `echo $$ > ${f} && `).join('');
    const script = `${join}for i in $(seq ${PER_JOB - 1}); do sleep 3600 & done; wait`;
    return spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  });
}

const CGROUP_ROOT = '/sys/fs/cgroup';

interface BenchCgroups {
  /** The job's cgroup as /proc/PID/cgroup names it. */
  name(k: number): string;
  /** The cgroup.procs files a process writes its PID to, to join the job's cgroup. */
  procsFiles(k: number): string[];
  /** Removes what it can; true when nothing is left. */
  remove(): boolean;
}

/** A cgroup per job (v2, or v1 cpuacct + blkio on a hybrid mount), or why there can be none (not root). */
function makeBenchCgroups(): BenchCgroups | string {
  const top = `/jouleflow-bench-${process.pid}`;
  const pureV2 = existsSync(path.join(CGROUP_ROOT, 'cgroup.controllers'));
  // v1: CPU from cpuacct (storage stays per process there, as blkio misses buffered writeback).
  const bases = pureV2 ? [CGROUP_ROOT] : [path.join(CGROUP_ROOT, 'cpuacct')];
  const name = (k: number) => `${top}/job-${k}`;
  const made: string[] = [];
  const remove = () => {
    for (const d of [...made].reverse()) {
      try {
        rmdirSync(d);
      } catch {
        // still has a process, or already gone
      }
    }
    return made.every((d) => !existsSync(d));
  };
  try {
    for (const b of bases) {
      mkdirSync(path.join(b, top));
      made.push(path.join(b, top));
      // v2: the io controller for the jobs' io.stat, where the root has it on.
      if (pureV2 && readFileSync(path.join(CGROUP_ROOT, 'cgroup.subtree_control'), 'utf8').includes('io'))
        writeFileSync(path.join(b, top, 'cgroup.subtree_control'), '+io');
      for (let k = 0; k < JOBS; k++) {
        mkdirSync(path.join(b, name(k)));
        made.push(path.join(b, name(k)));
      }
    }
  } catch (err) {
    remove();
    return `cannot make cgroups under ${CGROUP_ROOT}: ${(err as Error).message}`;
  }
  return { name, procsFiles: (k) => bases.map((b) => path.join(b, name(k), 'cgroup.procs')), remove };
}

/** Processes whose parent is one of `parents` (from /proc). */
function childrenOf(parents: ReadonlySet<number>): number {
  let n = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      if (parents.has(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))) n++;
    } catch {
      // exited meanwhile
    }
  }
  return n;
}

async function treesReady(trees: ChildProcess[]): Promise<void> {
  const shells = new Set(trees.map((t) => t.pid!));
  const until = Date.now() + 60_000;
  while (childrenOf(shells) < JOBS * (PER_JOB - 1)) {
    if (Date.now() > until) throw new Error(`the ${JOBS} process trees did not start within 60 s`);
    await sleep(200);
  }
}

function killTrees(trees: ChildProcess[]): void {
  for (const t of trees) {
    try {
      process.kill(-t.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function registerJobs(url: string, trees: ChildProcess[], cgroups?: BenchCgroups): Promise<void> {
  const api = `${url.replace(/\/metrics$/, '')}/api/v1/jobs`;
  for (const [k, t] of trees.entries()) {
    const by = cgroups ? { cgroup: cgroups.name(k) } : { pids: [t.pid] };
    const res = await fetch(api, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: `tree-${k}`, name: `process tree ${k}`, ...by }),
    });
    if (res.status !== 201) throw new Error(`registering job ${k}: HTTP ${res.status} ${await res.text()}`);
  }
}

/** Jobs still running (an API job given by PIDs ends when its processes are gone). */
async function runningJobs(url: string): Promise<number> {
  const page = (await fetch(`${url.replace(/\/metrics$/, '')}/api/v1/jobs?limit=1000`).then((r) => r.json())) as {
    jobs: Array<{ state: string }>;
  };
  return page.jobs.filter((j) => j.state === 'running').length;
}

function ensureFakeNvml(): void {
  if (!existsSync(FAKE_NVML)) execFileSync('sh', [path.join(FAKE_NVML_DIR, 'build.sh')], { stdio: 'pipe' });
}

/**
 * (a) 8 fake GPUs and 100 jobs on 2 000 processes, 1 s ticks, no scrapes: every build in `mains`
 * tracks the same processes, side by side over the same window.
 */
async function gpusAndJobs(mains: string[], windowS: number, by: 'pids' | 'cgroup'): Promise<BenchRow[]> {
  ensureFakeNvml();
  const what = `idle CPU, ${GPUS} fake GPUs + ${JOBS} jobs${by === 'cgroup' ? ' by cgroup' : ''} on ${thousands(JOBS * PER_JOB)} processes, 1 s ticks`;
  const cgroups = by === 'cgroup' ? makeBenchCgroups() : undefined;
  if (typeof cgroups === 'string') return [{ area: 'jouleflow', metric: `${what}: skipped`, value: 0, unit: '', note: cgroups }];
  const trees = startTrees(cgroups);
  const running: Array<Awaited<ReturnType<typeof startServe>>> = [];
  try {
    await treesReady(trees);
    const env = { JOULEFLOW_FAKE_NVML_TRACE: TRACE, JOULEFLOW_FAKE_NVML_GPUS: String(GPUS) };
    for (const main of mains) running.push(await startServe(main, [`--nvml.library=${FAKE_NVML}`], env));
    // No /metrics here: a scrape makes the exporter render ahead for a minute (scrape cost).
    for (const s of running) await registerJobs(s.url, trees, cgroups);
    // Background cost is the steady state: the first seconds after 100 registrations place 2 000
    // processes in their jobs (identity reads, the first full scans) and V8 compiles the hot paths
    // on its threads; the window starts SETTLE_S later.
    await sleep(SETTLE_S * 1000);
    const cpu0 = running.map((s) => cpuSeconds(s.child.pid!));
    await sleep(windowS * 1000);
    const cpu = running.map((s, i) => cpuSeconds(s.child.pid!) - cpu0[i]);
    const rows: BenchRow[] = [];
    for (const [i, s] of running.entries()) {
      rows.push({
        area: serveLabel(mains[i]),
        metric: what,
        value: (100 * cpu[i]) / windowS,
        unit: '% of a core',
        note: `${windowS} s from ${SETTLE_S} s after registration, no scrapes; ${await runningJobs(s.url)} jobs running at the end`,
      });
    }
    return rows;
  } finally {
    for (const s of running) await stop(s.child);
    killTrees(trees);
    // The kernel empties a cgroup once its processes are reaped.
    let gone = !cgroups;
    for (let i = 0; !gone && i < 50; i++) {
      gone = cgroups!.remove();
      if (!gone) await sleep(100);
    }
    if (!gone) process.stderr.write(`bench: cgroups ${cgroups!.name(0)}… are left behind (a process is still in them)\n`);
  }
}

function onPath(names: string[]): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    for (const n of names) {
      const file = path.join(dir, n);
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function startNodeExporter(bin: string): Promise<{ child: ChildProcess; url: string; version: string }> {
  const version = /version (\S+)/.exec(execFileSync(bin, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }))?.[1];
  const port = await freePort();
  const child = spawn(bin, [`--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'ignore'] });
  const url = `http://127.0.0.1:${port}/metrics`;
  const until = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > until || child.exitCode !== null) throw new Error(`${bin} did not serve ${url} within 30 s`);
    await sleep(100);
  }
  return { child, url, version: version ?? '?' };
}

/** (b) jouleflow and node_exporter, each scraped every 15 s over the same window. */
async function scrapedEvery15s(main: string, windowS: number): Promise<BenchRow[]> {
  const bin = onPath(['prometheus-node-exporter', 'node_exporter']);
  const s = await startServe(main, []);
  const ne = bin ? await startNodeExporter(bin) : undefined;
  const targets = [{ name: serveLabel(main), child: s.child, url: s.url }];
  if (ne) targets.push({ name: `node_exporter ${ne.version}`, child: ne.child, url: ne.url });
  try {
    await firstFullMetrics(s.url);
    await sleep(2000);
    const cpu0 = targets.map((t) => cpuSeconds(t.child.pid!));
    const bytes = targets.map(() => 0);
    const t0 = Date.now();
    for (let k = 0; k * SCRAPE_EVERY_S < windowS; k++) {
      await sleep(Math.max(0, t0 + k * SCRAPE_EVERY_S * 1000 - Date.now()));
      for (const [i, t] of targets.entries()) bytes[i] = (await fetch(t.url).then((r) => r.text())).length;
    }
    await sleep(Math.max(0, t0 + windowS * 1000 - Date.now()));
    const rows: BenchRow[] = targets.map((t, i) => ({
      area: t.name,
      metric: `CPU at a ${SCRAPE_EVERY_S} s scrape interval`,
      value: (100 * (cpuSeconds(t.child.pid!) - cpu0[i])) / windowS,
      unit: '% of a core',
      note: `${windowS} s, same window${i === 0 ? ', 1 s ticks' : ', default collectors'}; ${(bytes[i] / 1024).toFixed(0)} KiB a scrape`,
    }));
    if (!ne)
      rows.push({
        area: 'node_exporter',
        metric: 'skipped',
        value: 0,
        unit: '',
        note: 'not on PATH (apt-get install prometheus-node-exporter)',
      });
    return rows;
  } finally {
    await stop(s.child);
    if (ne) await stop(ne.child);
  }
}

/** `mains[0]` is this tree's build: only it is measured beside node_exporter. */
export async function benchProcessLoad(mains: string[], windowS: number): Promise<BenchRow[]> {
  return [
    ...(await gpusAndJobs(mains, windowS, 'pids')),
    ...(await gpusAndJobs(mains, windowS, 'cgroup')),
    ...(await scrapedEvery15s(mains[0], windowS)),
  ];
}
