import { spawn, type ChildProcess } from 'child_process';
import { readFileSync } from 'fs';
import * as path from 'path';
import { setTimeout as sleep } from 'timers/promises';
import type { BenchRow } from './table';

/**
 * Whole-process costs of `jouleflow serve`, measured from outside as an operator would: cold start
 * to the first full /metrics, idle background CPU (no scrapes) over a window, and RSS. The exporter
 * runs on this host's /proc and /sys with no ledger. `JOULEFLOW_BENCH_MAIN` points at another build
 * (e.g. the previous release) to put both side by side; `JOULEFLOW_BENCH_IDLE_S` sets the window.
 */

const MAIN = process.env.JOULEFLOW_BENCH_MAIN ?? path.join(__dirname, '..', 'main.js');
const IDLE_S = Number(process.env.JOULEFLOW_BENCH_IDLE_S ?? 60);

/** utime + stime of a process, in seconds (USER_HZ = 100). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function startServe(args: string[]): Promise<{ child: ChildProcess; url: string; startedAt: bigint }> {
  const startedAt = process.hrtime.bigint();
  const child = spawn(process.execPath, [MAIN, 'serve', '--web.listen-address=127.0.0.1:0', '--jobs.ledger=', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
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
async function firstFullMetrics(url: string): Promise<void> {
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

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

export async function benchProcess(): Promise<BenchRow[]> {
  const area = `serve (${path.basename(path.dirname(path.resolve(MAIN)))})`;
  const colds: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { child, url, startedAt } = await startServe([]);
    await firstFullMetrics(url);
    colds.push(Number(process.hrtime.bigint() - startedAt) / 1e6);
    await stop(child);
  }
  colds.sort((a, b) => a - b);
  const { child, url } = await startServe([]);
  await firstFullMetrics(url);
  await sleep(2000);
  const pid = child.pid!;
  const cpu0 = cpuSeconds(pid);
  const rss0 = rssMiB(pid);
  await sleep(IDLE_S * 1000);
  const cpu = cpuSeconds(pid) - cpu0;
  const rss = rssMiB(pid);
  await stop(child);
  return [
    { area, metric: 'cold start to first full /metrics (median of 3)', value: colds[1], unit: 'ms', note: 'spawn → node energy served' },
    {
      area,
      metric: 'idle CPU, 1 s ticks, no scrapes',
      value: (100 * cpu) / IDLE_S,
      unit: '% of a core',
      note: `${IDLE_S} s, this host's /proc`,
    },
    { area, metric: 'RSS after start', value: rss0, unit: 'MiB' },
    { area, metric: `RSS after ${IDLE_S} s idle`, value: rss, unit: 'MiB' },
  ];
}
