import * as path from 'path';
import type { GpuProcess } from '../core';
import type { Attribution, JobUsage } from '../model/attribution';
import type { StepResult } from '../model/energy';
import type { Logger } from '../util/log';
import { CLOCK_TICKS_PER_SECOND } from '../util/procfs';
import { EnvironReader } from './environ-reader';
import { gpuMatches } from './gpu-shares';
import type { Ledger } from './ledger';
import { assignJobs, bornInJob, membershipRules } from './membership';
import { ProcessTable, type Proc } from './process-table';
import { parseUptimeTicks } from '../util/procfs';
import type { JobRecord, JobSource } from './records';
import type { JobPage } from './listing';
import { JobRegistry, type JobInput } from './registry';
import type { CarbonConfig, JobReport } from './report';
import { syncHpcJobs } from './hpc';
import { UsageMeter } from './usage';
import { countedDevices } from './cgroup-counters';
import type { WorkTally } from './work';

/**
 * The sampler's JobTracker (docs/design.md, section 4): composes the registry (records and lifecycle),
 * the process table (one procfs scan), the membership rule and the usage meter. Cost per tick:
 * the members' stat and io; one readdir of /proc (and identity reads of new processes) only on a
 * full scan, every `fullScanEvery` ticks or when the jobs changed. A process forked between full
 * scans is found at the next one and counted from its birth, so no CPU time is lost, only delayed.
 */

export { JobError } from './errors';
export type { JobSource } from './records';
export type { JobInput } from './registry';

export interface TrackerOptions {
  procfs: string;
  log: Logger;
  ledger?: Ledger;
  clock?: () => number;
  liveCap: number;
  endedCap?: number;
  retentionMs: number;
  checkpointMs: number;
  ledgerRetentionMs?: number;
  carbon: CarbonConfig;
  discovery: { slurm: boolean; kubernetes: boolean; env: boolean; hpcMappingDir?: string };
  /** USER_HZ; 100 on every mainstream Linux ABI. */
  ticksPerSecond?: number;
  /** Ticks between full scans of /proc (1: every tick). */
  fullScanEvery?: number;
  /**
   * `--path.sysfs`: jobs whose cgroup (under fs/cgroup) holds exactly their processes are counted by
   * its counters, storage bytes of the disks `disksExclude` (the storage source's rule) leaves in.
   */
  cgroups?: { sysfs: string; disksExclude: RegExp };
}

/** A full scan at least this often (ticks), even when /proc/loadavg says no process came or went. */
const QUIET_SCAN_TICKS = 60;

/**
 * "0.20 0.18 0.12 1/80 11206": the scheduling entities that exist and the last PID handed out
 * (undefined when unreadable: then every due scan runs). A fork changes the last PID, an exit the
 * count; the runnable count (before the slash) is left out, as it changes all the time.
 */
export function processSignature(loadavg: string | undefined): string | undefined {
  const slash = loadavg?.indexOf('/') ?? -1;
  return slash < 0 ? undefined : loadavg!.slice(slash + 1).trim();
}

/** How long a tick waits for environment reads; later ones apply on a later tick. */
const ENVIRON_WAIT_MS = 50;
const AUTO_END_SOURCES: ReadonlySet<JobSource> = new Set(['run', 'slurm', 'kubernetes', 'env']);

/**
 * Whether a job whose processes are all gone has ended: discovered and `run` jobs; API jobs given
 * by PIDs only; and a Slurm prolog's API job (scheduler=slurm), so that an epilog that cannot
 * reach the exporter never leaves it running for ever.
 */
/** How long a `jouleflow run` job outlives its processes before it ends without its wrapper. */
const RUN_END_GRACE_MS = 10_000;

function endsWithItsProcesses(job: JobRecord): boolean {
  if (AUTO_END_SOURCES.has(job.source)) return true;
  return job.source === 'api' && ((job.cgroup === undefined && job.gpus.length === 0) || job.scheduler === 'slurm');
}

export class JobTracker {
  readonly registry: JobRegistry;
  private readonly table: ProcessTable;
  private readonly meter: UsageMeter;
  private readonly clock: () => number;
  private readonly hz: number;
  private readonly environs: EnvironReader | undefined;
  private scannedGeneration = -1;
  private tick = 0;
  private prevUptime: number | undefined;
  private environBlockedLogged = false;
  /** The PIDs read for this tick's environ prefetch: the scan reuses them (one readdir per scan). */
  private scanPids: number[] | undefined;
  private readonly uptimePath: string;
  private readonly loadavgPath: string;
  private dueFor: { tick: number; due: boolean } | undefined;
  /** /proc/loadavg's process signature and the tick of the last full scan. */
  private scannedSignature: string | undefined;
  private scannedTick = 0;

  constructor(private readonly opts: TrackerOptions) {
    this.clock = opts.clock ?? Date.now;
    this.hz = opts.ticksPerSecond ?? CLOCK_TICKS_PER_SECOND;
    this.uptimePath = path.join(opts.procfs, 'uptime');
    this.loadavgPath = path.join(opts.procfs, 'loadavg');
    this.registry = new JobRegistry({
      ...opts,
      clock: this.clock,
      endedCap: opts.endedCap ?? 1000,
      ledgerRetentionMs: opts.ledgerRetentionMs ?? 0,
    });
    const needCgroups = () => opts.discovery.slurm || opts.discovery.kubernetes || this.running().some((j) => j.cgroup !== undefined);
    this.table = new ProcessTable(opts.procfs, { needCgroups, environ: opts.discovery });
    const cg = opts.cgroups;
    this.meter = cg
      ? new UsageMeter(this.table, path.join(cg.sysfs, 'fs/cgroup'), countedDevices(cg.sysfs, cg.disksExclude))
      : new UsageMeter(this.table);
    if (this.table.readsEnviron) {
      this.environs = new EnvironReader(opts.procfs, (pid, environ) => {
        const p = this.table.procs.get(pid);
        if (p && environ !== undefined && this.table.setEnviron(p, environ)) this.scannedGeneration = -1;
      });
    }
  }

  get runningCount(): number {
    return this.registry.runningCount;
  }

  private running(): JobRecord[] {
    return [...this.registry.records()].filter((j) => j.end === undefined);
  }

  resume(): number {
    return this.registry.resume((pid, start) => this.table.startOf(pid) === start);
  }

  register(input: JobInput): JobReport {
    const report = this.registry.register(input, {
      startOf: (pid) => this.table.startOf(pid),
      ownerOf: (pid, start) => {
        const p = this.table.procs.get(pid);
        return p && p.starttime === start && p.job !== undefined ? p.job : undefined;
      },
    });
    const job = this.registry.job(report.id);
    if (job) this.meter.registered(job);
    return report;
  }

  end(id: string, opts?: { timeoutMs?: number; exitCode?: number }): Promise<JobReport> {
    return this.registry.end(id, opts);
  }

  ownerUidOf(id: string): { exists: boolean; ownerUid?: number } {
    return this.registry.ownerUidOf(id);
  }

  /** A running job's work tally, for a work report (jobs/work.ts). */
  workOf(id: string): WorkTally {
    return this.registry.workOf(id);
  }

  get(id: string): JobReport | undefined {
    return this.registry.get(id);
  }

  list(opts: { all?: boolean; limit?: number; cursor?: string } = {}): JobPage {
    return this.registry.list(opts);
  }

  view(): ReturnType<JobRegistry['view']> {
    return this.registry.view();
  }

  /**
   * Whether this tick scans /proc: when the jobs changed; else every `fullScanEvery` ticks if a
   * process or thread was created or ended since the last scan (/proc/loadavg: the count of
   * scheduling entities and the last PID handed out; on a node where nothing forks or exits, the
   * readdir of thousands of entries is skipped), and at least every QUIET_SCAN_TICKS. Decided once a tick.
   */
  private fullScanDue(): boolean {
    if (this.dueFor?.tick === this.tick) return this.dueFor.due;
    let due = this.scannedGeneration !== this.registry.generation;
    if (due || (this.tick + 1) % (this.opts.fullScanEvery ?? 1) === 0) {
      const sign = processSignature(this.table.counters.textOrUndefined(this.loadavgPath, 'latin1', true));
      due ||= sign === undefined || sign !== this.scannedSignature || this.tick - this.scannedTick >= QUIET_SCAN_TICKS;
      if (due) this.scannedSignature = sign;
    }
    if (due) this.scannedTick = this.tick;
    this.dueFor = { tick: this.tick, due };
    return due;
  }

  async usage(now: number, _dtSeconds: number, gpuProcesses: readonly GpuProcess[]): Promise<JobUsage[]> {
    if (this.environs && this.fullScanDue()) {
      // New processes, and those due for their confirming re-read, get their environment read off
      // the event loop first; a read that blocks is left behind, not waited for.
      this.scanPids = this.table.pids();
      const due = this.scanPids.filter((pid) => (this.table.procs.get(pid)?.confirm ?? 1) > 0);
      await this.environs.prefetch(due, this.tick + 1, ENVIRON_WAIT_MS);
      const blocked = this.environs.blockedFor();
      if (blocked !== undefined && blocked > 5000 && !this.environBlockedLogged)
        this.opts.log.warn(
          'reading /proc/PID/environ is blocked (a process stuck in D state?); JOULEFLOW_JOB/SLURM_JOB_ID discovery waits',
          {
            blocked_ms: blocked,
          },
        );
      this.environBlockedLogged = blocked !== undefined && blocked > 5000;
    }
    return this.measure(now, gpuProcesses, this.environs);
  }

  /** The synchronous body of usage(): membership and the members' counters. */
  measure(now: number, gpuProcesses: readonly GpuProcess[], environs?: EnvironReader): JobUsage[] {
    this.table.envLookup = environs;
    if (this.opts.discovery.hpcMappingDir) syncHpcJobs(this.opts.discovery.hpcMappingDir, this.registry);
    const full = this.fullScanDue();
    this.tick++;
    const uptime = parseUptimeTicks(this.table.counters.textOrUndefined(this.uptimePath, 'latin1', true) ?? '', this.hz);
    let running = this.running();
    for (const j of running) if (j.countFromTicks === Infinity) j.countFromTicks = uptime; // resumed: count from now on
    this.meter.setReapers(running);
    const toClassify: Proc[] = [];
    let reclassifyAll = this.scannedGeneration !== this.registry.generation;
    let scannedExits = false;
    if (full) {
      const scan = this.table.scan(this.scanPids);
      this.scanPids = undefined;
      for (const p of scan.exited) this.meter.retire(p);
      scannedExits = scan.exited.length > 0;
      // New processes get a confirming re-read of cgroup and environ (an exec right after the fork):
      // the next due scan runs whatever loadavg says.
      if (scan.fresh.length > 0) this.scannedSignature = undefined;
      toClassify.push(...scan.fresh);
      reclassifyAll ||= scan.identityChanged;
      this.scannedGeneration = this.registry.generation;
    }
    // GPU holders of jobs given by GPU (new ones are read now, whatever the scan).
    const gpuJobs = running.filter((j) => j.gpus.length > 0);
    for (const g of gpuJobs.length ? gpuProcesses : []) {
      const p = this.table.procs.get(g.pid) ?? this.table.add(g.pid);
      const j = p && gpuJobs.find((job) => job.gpus.some((s) => gpuMatches(s, g)));
      if (p && j && p.gpuJob !== j.id) {
        p.gpuJob = j.id;
        toClassify.push(p);
      }
    }
    const born = (p: Proc, id: string) => bornInJob(p, this.registry.job(id), { uptime, prevUptime: this.prevUptime, now, hz: this.hz });
    // The rules are built only when someone is to be classified (most ticks: nobody).
    const classify = reclassifyAll || toClassify.length > 0;
    if (classify) {
      assignJobs(reclassifyAll ? undefined : toClassify, this.table.procs, membershipRules(this.registry, this.opts.discovery), born);
      running = this.running(); // discovery may have added jobs
    }
    if (classify || scannedExits) this.meter.decideCounting(running);
    const usage = this.meter.measure(running, gpuProcesses, this.hz);
    for (const u of usage) {
      const job = this.registry.job(u.id)!;
      job.members = u.members;
      if (u.members > 0) job.hadMembers = true;
      const rootsGone = job.roots.size > 0 && ![...job.roots].some((r) => this.table.procs.has(r));
      const gone = u.members === 0 && (job.hadMembers || job.resumedUpdated !== undefined || rootsGone);
      if (!gone || !endsWithItsProcesses(job)) job.goneSinceMs = undefined;
      else if (job.scheduler !== 'jouleflow-run') job.endRequested = true;
      // `jouleflow run` reports the command's final work and then ends its job itself; on a loaded
      // machine that can come a tick after the command exits, and an ended job takes no more work.
      // Its job outlives its processes for a grace period (with no share of energy: it has no
      // members); a wrapper that died leaves the ending to this.
      else if (this.clock() - (job.goneSinceMs ??= this.clock()) >= RUN_END_GRACE_MS) job.endRequested = true;
    }
    this.prevUptime = uptime;
    return usage; // each with its `members` too, which attribution does not read
  }

  record(step: StepResult, attribution: Attribution): void {
    const ended = this.running().filter((j) => j.endRequested);
    this.registry.record(step.t, step.dt, attribution);
    for (const j of ended) if (j.end !== undefined) this.meter.forget(j.id);
  }

  checkpoint(): void {
    this.registry.checkpoint();
  }

  close(): void {
    this.table.close();
    this.registry.close();
  }

  /** Process → job, for tests and diagnostics. */
  membership(): Map<number, string> {
    const m = new Map<number, string>();
    for (const p of this.table.procs.values()) if (p.job !== undefined) m.set(p.pid, p.job);
    return m;
  }
}
