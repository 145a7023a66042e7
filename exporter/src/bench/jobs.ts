import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Ledger, emptyTotals, type LedgerRow } from '../jobs/ledger';
import { JobTracker } from '../jobs/tracker';
import { Metrics } from '../metrics';
import type { JobView } from '../core';
import type { Attribution, JobShare } from '../model/attribution';
import { EMPTY_SNAPSHOT } from '../snapshot';
import { silentLogger } from '../util/log';
import { percentile, type BenchRow } from './table';

/**
 * Jobs costs: the tracker's tick (process scan + member counters) with 100 live jobs on a node
 * of 2 000 processes (a fake procfs tree in a tmp dir, same formats as Linux), and /metrics render
 * time with 1 000 live jobs.
 */

function statLine(pid: number, ppid: number, cpu: number, start: number): string {
  return `${pid} (worker) S ${ppid} ${pid} ${pid} 0 -1 4194304 0 0 0 0 ${cpu} ${cpu >> 2} 0 0 20 0 1 0 ${start} 1000 100 0\n`;
}

function ioText(bytes: number): string {
  return `rchar: 0\nwchar: 0\nsyscr: 0\nsyscw: 0\nread_bytes: ${bytes}\nwrite_bytes: ${bytes}\ncancelled_write_bytes: 0\n`;
}

/** A procfs tree: `n` processes; jobs' roots are 1000 + 20·k with 3 descendants each. */
function fakeProcfs(n: number, jobs: number): { root: string; roots: number[]; members: number[] } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-bench-proc-'));
  fs.writeFileSync(path.join(root, 'uptime'), '100000.00 1.00\n');
  fs.mkdirSync(path.join(root, 'self/ns'), { recursive: true });
  fs.symlinkSync('net:[4026531833]', path.join(root, 'self/ns/net'));
  const roots: number[] = [];
  const members: number[] = [];
  const parent = new Map<number, number>();
  for (let k = 0; k < jobs; k++) {
    const r = 1000 + 20 * k;
    roots.push(r);
    parent.set(r, 1);
    parent.set(r + 1, r);
    parent.set(r + 2, r);
    parent.set(r + 3, r + 1);
    members.push(r, r + 1, r + 2, r + 3);
  }
  for (let pid = 1; parent.size < n; pid++)
    if (!parent.has(pid) && !(pid >= 1000 && pid < 1000 + 20 * jobs && (pid - 1000) % 20 < 4)) parent.set(pid, 1);
  for (const [pid, ppid] of parent) {
    const dir = path.join(root, String(pid));
    fs.mkdirSync(path.join(dir, 'ns'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'stat'), statLine(pid, ppid, 100, 5000));
    fs.writeFileSync(path.join(dir, 'io'), ioText(0));
    fs.writeFileSync(path.join(dir, 'cgroup'), '0::/user.slice/user-1000.slice/session-1.scope\n');
    fs.writeFileSync(path.join(dir, 'environ'), 'PATH=/usr/bin\0HOME=/root\0LANG=C.UTF-8\0');
    fs.symlinkSync('net:[4026531833]', path.join(dir, 'ns/net'));
  }
  return { root, roots, members };
}

async function benchTick(): Promise<BenchRow[]> {
  const N = 2000;
  const JOBS = 100;
  const { root, roots, members } = fakeProcfs(N, JOBS);
  let now = 1_800_000_000_000;
  const registry = new JobTracker({
    procfs: root,
    log: silentLogger,
    clock: () => now,
    liveCap: 1000,
    retentionMs: 900_000,
    checkpointMs: 5000,
    carbon: { zone: 'bench' },
    discovery: { slurm: true, kubernetes: true, env: true },
  });
  try {
    roots.forEach((r, k) => registry.register({ id: `job-${k}`, name: `job ${k}`, pids: [r] }));
    const time = (f: () => void) => {
      const t0 = process.hrtime.bigint();
      f();
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    const firstMs = time(() => registry.measure(now, [])); // stat, cgroup, environ of every process
    now += 1000;
    const confirmMs = time(() => registry.measure(now, [])); // cgroup and environ once more (fork → exec/move)
    const samples: number[] = [];
    let cpu = 100;
    for (let i = 0; i < 60; i++) {
      now += 1000;
      cpu += 3;
      // Members' counters move each tick, as they would on a busy node.
      if (i % 10 === 0)
        for (const pid of members)
          fs.writeFileSync(path.join(root, String(pid), 'stat'), statLine(pid, pid === 1 ? 0 : pid - 1, cpu, 5000));
      const t0 = process.hrtime.bigint();
      registry.measure(now, []);
      const usage: JobShare[] = roots.map((_, k) => ({
        id: `job-${k}`,
        joules: { compute: 1, transmit: 0.1, store: 0.1, cooling: 0.5 },
        method: { compute: 'measured', transmit: 'estimated', store: 'measured', cooling: 'measured' },
      }));
      const attribution: Attribution = { jobs: usage, unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } };
      registry.record({ t: now, dt: 1, series: [], events: [] }, attribution);
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    samples.sort((a, b) => a - b);
    const note = `${JOBS} jobs × 4 processes, ${N} processes (fake procfs)`;
    return [
      { area: 'jobs', metric: 'first scan', value: firstMs, unit: 'ms', note: `${N} new processes: stat+cgroup+environ each` },
      { area: 'jobs', metric: 'second scan', value: confirmMs, unit: 'ms', note: 'cgroup+environ re-read once per new process' },
      { area: 'jobs', metric: 'tick p50', value: percentile(samples, 50), unit: 'ms', note },
      { area: 'jobs', metric: 'tick p99', value: percentile(samples, 99), unit: 'ms', note },
    ];
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function benchRender(): Promise<BenchRow[]> {
  const JOBS = 1000;
  const metrics = new Metrics('normal', { processMetrics: false });
  const labels = Array.from({ length: JOBS }, (_, k) =>
    Object.freeze({ job_id: `job-${k}`, job_name: `training run ${k}`, user: 'ada', scheduler: 'slurm' }),
  );
  const samples: number[] = [];
  let series = 0;
  for (let i = 0; i < 30; i++) {
    const jobs: JobView[] = labels.map((l, k) => ({
      labels: l,
      startMs: 1.8e12,
      joules: {
        compute: { measured: (100 + k) * i },
        transmit: { estimated: i },
        store: { measured: 2 * i },
        cooling: { measured: 50 * i },
      },
      watts: { compute: 100 + k, transmit: 1, store: 2, cooling: 50 },
    }));
    metrics.publish({ ...EMPTY_SNAPSHOT, version: i + 1, jobs });
    const t0 = process.hrtime.bigint();
    // Not as a scrape: a scrape while the tick's text is being written gets the previous one.
    const out = await metrics.render(false, false, false);
    samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    series = out.text.split('\n').filter((l) => l && !l.startsWith('#')).length;
  }
  samples.sort((a, b) => a - b);
  const t0 = process.hrtime.bigint();
  await metrics.render(false, false);
  const cachedMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const note = `${JOBS} live jobs, ${series} series`;
  return [
    { area: 'jobs', metric: '/metrics render p50', value: percentile(samples, 50), unit: 'ms', note },
    { area: 'jobs', metric: '/metrics render p99', value: percentile(samples, 99), unit: 'ms', note },
    { area: 'jobs', metric: '/metrics cached', value: cachedMs, unit: 'ms', note: 'same tick, served from the cache' },
  ];
}

async function benchLedger(): Promise<BenchRow[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-bench-ledger-'));
  const ledger = new Ledger(path.join(dir, 'jobs.db'));
  try {
    const JOBS = 1000;
    const rows: LedgerRow[] = [];
    for (let k = 0; k < JOBS; k++) {
      const totals = emptyTotals();
      totals.compute.measured = k;
      rows.push({
        id: `job-${k}`,
        name: `job ${k}`,
        scheduler: 'api',
        labels: { team: 'ml' },
        spec: { pids: [k + 1], source: 'api' },
        start: 1.8e12,
        totals,
        updated: 1.8e12,
      });
    }
    const samples: number[] = [];
    for (let i = 0; i < 20; i++) {
      for (const r of rows) r.totals.compute.measured += 1;
      const t0 = process.hrtime.bigint();
      ledger.save(rows);
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    samples.sort((a, b) => a - b);
    return [
      {
        area: 'jobs',
        metric: 'ledger checkpoint p50',
        value: percentile(samples, 50),
        unit: 'ms',
        note: `${JOBS} running jobs, one WAL transaction`,
      },
    ];
  } finally {
    ledger.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchJobs(): Promise<BenchRow[]> {
  return [...(await benchTick()), ...(await benchRender()), ...(await benchLedger())];
}
