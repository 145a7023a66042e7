import { spawn, type ChildProcess } from 'child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { setTimeout as sleep } from 'timers/promises';
import { benchProcessLoad } from './process-load';
import type { BenchRow } from './table';

/**
 * Whole-process costs of `jouleflow serve`, measured from outside as an operator would: cold start
 * to the first full /metrics, idle background CPU (no scrapes) over a window, and RSS. The exporter
 * runs on this host's /proc and /sys with no ledger (cold start also with a new one), through the
 * build's bin/jouleflow.js launcher (its V8 flags) where it has one. `JOULEFLOW_BENCH_MAIN` names
 * other builds' main.js (comma-separated, e.g. the previous release's) to measure side by side in
 * one run: cold starts alternate, idle CPU is measured over the same window;
 * `JOULEFLOW_BENCH_IDLE_S` sets it.
 */

const MAINS = [path.join(__dirname, '..', 'main.js'), ...(process.env.JOULEFLOW_BENCH_MAIN?.split(',').filter(Boolean) ?? [])];
const IDLE_S = Number(process.env.JOULEFLOW_BENCH_IDLE_S ?? 60);

/** utime + stime of a process, in seconds (USER_HZ = 100). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** The build's `jouleflow` launcher (bin/jouleflow.js: its V8 flags) where it has one, else `node main.js`. */
function command(main: string): string[] {
  const launcher = path.join(path.dirname(main), '..', 'bin', 'jouleflow.js');
  return existsSync(launcher) ? [launcher] : [process.execPath, main];
}

export async function startServe(
  main: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; url: string; startedAt: bigint }> {
  const startedAt = process.hrtime.bigint();
  const [cmd, ...argv] = command(main);
  const child = spawn(cmd, [...argv, 'serve', '--web.listen-address=127.0.0.1:0', '--jobs.ledger=', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, ...env },
  });
  let err = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /url=(http:\/\/[^\s]+)/.exec(err);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`exporter exited with ${code}: ${err}`)));
  });
  return { child, url, startedAt };
}

/** Waits (bounded) until /metrics carries node energy: the first full exposition. */
export async function firstFullMetrics(url: string): Promise<void> {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    const text = await fetch(url).then(
      (r) => r.text(),
      () => '',
    );
    if (/^jouleflow_node_energy_joules_total\{/m.test(text)) return;
    await sleep(5);
  }
  throw new Error('no node energy in /metrics within 30 s');
}

export async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** Registers 1 000 live jobs (by cgroup: no processes needed); returns the series a scrape then shows. */
async function thousandJobs(url: string): Promise<number> {
  for (let k = 0; k < 1000; k++) {
    const res = await fetch(`${url.replace(/\/metrics$/, '')}/api/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id: `bench-${k}`, name: `bench job ${k}`, cgroup: `/bench.slice/job-${k}` }),
    });
    if (res.status !== 201) throw new Error(`registering job ${k}: HTTP ${res.status} ${await res.text()}`);
  }
  await sleep(3000);
  const scraped = await fetch(url).then((r) => r.text());
  return scraped.split('\n').filter((l) => l && !l.startsWith('#')).length;
}

/** This tree's build, or another one by its directory (two builds are both `dist`), and how it is started. */
export const serveLabel = (main: string) =>
  `serve (${main === MAINS[0] ? 'this tree' : path.dirname(path.resolve(main))}, ${command(main).length === 1 ? 'launcher' : 'node'})`;

export async function benchProcess(): Promise<BenchRow[]> {
  const colds = new Map<string, number[]>(MAINS.map((m) => [m, []]));
  const coldsLedger = new Map<string, number[]>(MAINS.map((m) => [m, []]));
  const dir = mkdtempSync(path.join(tmpdir(), 'jf-bench-'));
  for (let i = 0; i < 3; i++) {
    for (const main of MAINS) {
      for (const [times, args] of [
        [colds, []],
        // A ledger with no jobs in it yet: opened (and restored) before the first exposition.
        [coldsLedger, [`--jobs.ledger=${path.join(dir, `${i}-${MAINS.indexOf(main)}.db`)}`]],
      ] as const) {
        const { child, url, startedAt } = await startServe(main, [...args]);
        await firstFullMetrics(url);
        times.get(main)!.push(Number(process.hrtime.bigint() - startedAt) / 1e6);
        await stop(child);
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
  const running = [];
  for (const main of MAINS) {
    // No /metrics before the idle window: a scrape makes the exporter render ahead of the next
    // one for a minute (metrics.ts), which is scrape cost, not idle cost. The "listening" line that
    // startServe waits for is logged after the first tick.
    const s = await startServe(main, []);
    running.push({ main, ...s });
  }
  await sleep(2000);
  const cpu0 = running.map((r) => cpuSeconds(r.child.pid!));
  const rss0 = running.map((r) => rssMiB(r.child.pid!));
  await sleep(IDLE_S * 1000);
  const rows: BenchRow[] = [];
  for (const [i, r] of running.entries()) {
    const pid = r.child.pid!;
    const cpu = cpuSeconds(pid) - cpu0[i];
    const rss = rssMiB(pid);
    const series = await thousandJobs(r.url);
    const rssJobs = rssMiB(pid);
    await stop(r.child);
    const cold = colds.get(r.main)!.sort((a, b) => a - b)[1];
    const coldLedger = coldsLedger.get(r.main)!.sort((a, b) => a - b)[1];
    const area = serveLabel(r.main);
    rows.push(
      { area, metric: 'cold start to first full /metrics (median of 3)', value: cold, unit: 'ms', note: 'spawn → node energy served' },
      { area, metric: 'cold start with a (new) ledger (median of 3)', value: coldLedger, unit: 'ms', note: '--jobs.ledger=FILE' },
      {
        area,
        metric: 'idle CPU, 1 s ticks, no scrapes',
        value: (100 * cpu) / IDLE_S,
        unit: '% of a core',
        note: `${IDLE_S} s, this host's /proc`,
      },
      { area, metric: 'RSS after start', value: rss0[i], unit: 'MiB' },
      { area, metric: `RSS after ${IDLE_S} s idle`, value: rss, unit: 'MiB' },
      { area, metric: 'RSS with 1 000 live jobs', value: rssJobs, unit: 'MiB', note: `${series} series after 3 s` },
    );
  }
  // Under load: GPUs and jobs (every build), scrapes (this tree's, beside node_exporter), in windows of their own.
  rows.push(...(await benchProcessLoad(MAINS, IDLE_S)));
  return rows;
}
