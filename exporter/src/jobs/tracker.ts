import { randomUUID } from 'crypto';
import * as path from 'path';
import type { Attribution, JobUsage } from '../model/attribution';
import { UNATTRIBUTED } from '../model/attribution';
import type { StepResult } from '../model/energy';
import type { Metrics } from '../metrics';
import type { JobTracker as SamplerJobTracker } from '../sampler';
import type { GpuProcess } from '../sources/types';
import { COMPONENTS } from '../sources/types';
import type { Logger } from '../util/log';
import { CLOCK_TICKS_PER_SECOND } from '../util/procfs';
import type { DiscoveredJob } from './discovery';
import { EnvironReader, PENDING } from './environ-reader';
import { JOB_ID_RE, cgroupPaths, envJob, kubernetesFromCgroup, readHpcMapping, slurmFromCgroup } from './discovery';
import { GpuShareWindow, gpuMatches } from './gpu-shares';
import type { Ledger, LedgerRow, Totals } from './ledger';
import { emptyTotals } from './ledger';
import {
  environValue,
  listPids,
  parseNetDevBytes,
  parseProcPidIo,
  parseProcPidStat,
  parseUptimeTicks,
  pidPath,
  readFileOrUndefined,
  readLinkOrUndefined,
} from './procfs';
import type { CarbonConfig, JobReport } from './report';
import { buildReport } from './report';

/**
 * The jobs registry and the sampler's JobTracker (design §2, §4). Each tick it refreshes which
 * processes belong to which job and measures what each job did in the interval (CPU time,
 * storage bytes, GPU shares, own-namespace network bytes); after the split it adds each job's
 * joules to its totals, checkpoints them to the ledger, ends jobs and expires ended ones.
 *
 * Cost per tick: one readdir of /proc, plus stat and cgroup (and environ) reads of processes
 * seen for the first time (and once more on the tick after, to catch a fork that moved into a
 * cgroup or exec'd with a new environment), plus stat and io reads of job members only. Other
 * processes cost a set lookup.
 */

export type JobSource = 'api' | 'run' | 'slurm' | 'kubernetes' | 'env' | 'hpc';

export interface JobInput {
  id?: string;
  name: string;
  pids?: number[];
  cgroup?: string;
  gpus?: Array<string | number>;
  labels?: Record<string, string>;
  /** Milliseconds since the epoch; default now. Processes born after it count from their birth. */
  start?: number;
  source?: JobSource;
  /**
   * A process whose waited-for children's CPU time (cutime+cstime) belongs to this job: the
   * in-process `jouleflow run` names itself, so the last partial interval of the command it
   * spawned and reaped is not lost.
   */
  reaperPid?: number;
  /** The uid that registered the job through the API (web/job-access.ts): it alone (and root) may end it. */
  ownerUid?: number;
}

export class JobError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'JobError';
  }
}

export interface TrackerOptions {
  procfs: string;
  log: Logger;
  metrics?: Metrics;
  ledger?: Ledger;
  clock?: () => number;
  liveCap: number;
  retentionMs: number;
  checkpointMs: number;
  gpuWindow: number;
  carbon: CarbonConfig;
  discovery: { slurm: boolean; kubernetes: boolean; env: boolean; hpcMappingDir?: string };
  /** USER_HZ; 100 on every mainstream Linux ABI. */
  ticksPerSecond?: number;
}

interface Job {
  id: string;
  name: string;
  labels: Record<string, string>;
  user?: string;
  scheduler: string;
  source: JobSource;
  roots: Set<number>;
  /** Start time (clock ticks after boot) of each root, to tell a root from a later process with its PID. */
  rootStarts: Map<number, number>;
  cgroup?: string;
  gpus: string[];
  reaperPid?: number;
  ownerUid?: number;
  start: number;
  end?: number;
  /** Processes born before this (clock ticks since boot) count only from their first reading. */
  countFromTicks?: number;
  /**
   * Processes born after this (ms since the epoch) count from their birth: the job's start, but
   * no earlier than shortly before its registration, so a start given far in the past does not
   * pour CPU time used before the job was tracked into one interval.
   */
  bornAfterMs?: number;
  totals: Totals;
  /** A member process was seen at some point. */
  hadMembers: boolean;
  /** Members seen in the latest scan. */
  members: number;
  endRequested: boolean;
  /** Ledger timestamp of a resumed job (used as its end if its processes are gone). */
  resumedUpdated?: number;
  waiters: Array<(r: JobReport) => void>;
  retainUntil?: number;
}

interface Proc {
  pid: number;
  ppid: number;
  starttime: number;
  kernel: boolean;
  cgroups?: string[];
  envJob?: string;
  /** Remaining re-reads of cgroup and environ (a fresh fork may move or exec right after). */
  confirm: number;
  gpuJob?: string;
  job?: string;
  /** Last readings; undefined = no baseline yet. */
  cpu?: number;
  child?: number;
  io?: number;
  /** CPU ticks / io bytes of reaped children already counted, subtracted from the next deltas. */
  pendingCpu: number;
  pendingIo: number;
  pendingAge: number;
  netns?: string;
}

/**
 * How long before its registration a job's processes may have been born and still count from
 * birth (`jouleflow run` registers the command it spawned within its 5 s API timeout).
 */
const BACKLOG_MS = 10_000;

/** How long a tick waits for environment reads (usage()); later ones apply on a later tick. */
const ENVIRON_WAIT_MS = 50;

const AUTO_END_SOURCES: ReadonlySet<JobSource> = new Set(['run', 'slurm', 'kubernetes', 'env']);

export class JobRegistry implements SamplerJobTracker {
  private readonly jobs = new Map<string, Job>();
  private readonly procs = new Map<number, Proc>();
  private readonly gpuWindow: GpuShareWindow;
  private readonly clock: () => number;
  private readonly hz: number;
  private reclassifyAll = true;
  /** Environment reads off the event loop (usage()); measure() alone (tests, bench) reads inline. */
  private readonly environs: EnvironReader | undefined;
  private envLookup: EnvironReader | undefined;
  private environBlockedLogged = false;
  private prevUptime: number | undefined;
  private lastCheckpoint = 0;
  private readonly refusedDiscovered = new Set<string>();
  private hostNetns: string | undefined;
  private readonly netnsLast = new Map<string, number>();
  private tick = 0;
  private metrics: Metrics | undefined;
  /** Ledger totals of resumed jobs, exported once metrics are attached. */
  private readonly restored = new Map<string, Totals>();

  constructor(private readonly opts: TrackerOptions) {
    this.metrics = opts.metrics;
    if (opts.discovery.env) {
      this.environs = new EnvironReader(opts.procfs, (pid, environ) => {
        const p = this.procs.get(pid);
        if (!p || environ === undefined) return;
        const job = environValue(environ, 'JOULEFLOW_JOB');
        if (job !== p.envJob) {
          p.envJob = job;
          this.reclassifyAll = true;
        }
      });
    }
    this.gpuWindow = new GpuShareWindow(opts.gpuWindow);
    this.clock = opts.clock ?? Date.now;
    this.hz = opts.ticksPerSecond ?? CLOCK_TICKS_PER_SECOND;
    this.hostNetns = readLinkOrUndefined(path.join(opts.procfs, '1/ns/net')) ?? readLinkOrUndefined(path.join(opts.procfs, 'self/ns/net'));
  }

  // ---------------------------------------------------------------- registry

  /**
   * Connects the registry to the exporter's metrics (created inside createExporter, after the
   * registry): publishes every known job's info and start/end times and resumed jobs' totals.
   */
  attach(metrics: Metrics): void {
    this.metrics = metrics;
    for (const job of this.jobs.values()) {
      metrics.setJob(this.labelsOf(job), job.start / 1000, job.end !== undefined ? job.end / 1000 : undefined);
    }
    for (const [id, totals] of this.restored) metrics.restoreJobEnergy(id, totals);
    this.restored.clear();
    this.updateLiveGauge();
  }

  get runningCount(): number {
    let n = 0;
    for (const j of this.jobs.values()) if (j.end === undefined) n++;
    return n;
  }

  /** Restores running jobs (and recently ended ones, for their retention) from the ledger. */
  resume(): number {
    const { ledger } = this.opts;
    const metrics = this.metrics;
    if (!ledger) return 0;
    const now = this.clock();
    const rows = [...ledger.runningJobs(), ...ledger.endedSinceMs(now - this.opts.retentionMs)];
    for (const r of rows) {
      const job: Job = {
        id: r.id,
        name: r.name,
        labels: r.labels,
        user: r.user,
        scheduler: r.scheduler,
        source: r.spec.source as JobSource,
        roots: new Set(),
        rootStarts: new Map(),
        cgroup: r.spec.cgroup,
        gpus: r.spec.gpus ?? [],
        ownerUid: r.spec.ownerUid,
        start: r.start,
        end: r.end,
        totals: r.totals,
        hadMembers: false,
        members: 0,
        endRequested: false,
        resumedUpdated: r.updated,
        waiters: [],
        retainUntil: r.end !== undefined ? r.end + this.opts.retentionMs : undefined,
        countFromTicks: Infinity, // set at the first scan: only CPU used after the restart counts
      };
      // Roots still running the same process (not a later one that got its PID) stay roots.
      (r.spec.pids ?? []).forEach((pid, i) => {
        const start = r.spec.pidStarts?.[i];
        if (job.end === undefined && start !== undefined && this.startOf(pid) === start) {
          job.roots.add(pid);
          job.rootStarts.set(pid, start);
        }
      });
      this.jobs.set(job.id, job);
      metrics?.setJob(this.labelsOf(job), job.start / 1000, job.end !== undefined ? job.end / 1000 : undefined);
      const snapshot = JSON.parse(JSON.stringify(job.totals)) as Totals;
      if (metrics) metrics.restoreJobEnergy(job.id, snapshot);
      else this.restored.set(job.id, snapshot);
    }
    this.reclassifyAll = true;
    this.updateLiveGauge();
    if (rows.length)
      this.opts.log.info('jobs resumed from the ledger', {
        running: rows.filter((r) => r.end === undefined).length,
        ended: rows.filter((r) => r.end !== undefined).length,
      });
    return rows.length;
  }

  register(input: JobInput): JobReport {
    const id = input.id ?? `job-${randomUUID().slice(0, 8)}`;
    if (!JOB_ID_RE.test(id) || id === UNATTRIBUTED) {
      this.reject('invalid');
      throw new JobError(400, `invalid job id "${id}": 1-128 characters of letters, digits and ._:@+=- (not "${UNATTRIBUTED}")`);
    }
    if (this.jobs.has(id) || this.opts.ledger?.get(id)) {
      this.reject('duplicate');
      throw new JobError(409, `job "${id}" already exists`);
    }
    const pids = input.pids ?? [];
    const gpus = (input.gpus ?? []).map(String);
    if (pids.length === 0 && input.cgroup === undefined && gpus.length === 0) {
      this.reject('invalid');
      throw new JobError(400, 'a job needs at least one of pids, cgroup or gpus');
    }
    for (const pid of pids) {
      if (this.startOf(pid) === undefined) {
        this.reject('invalid');
        throw new JobError(400, `no such process: ${pid}`);
      }
    }
    if (this.runningCount >= this.opts.liveCap) {
      this.reject('cap');
      throw new JobError(429, `too many running jobs: the live-job cap is ${this.opts.liveCap} (jobs.liveCap)`);
    }
    const now = this.clock();
    const labels = input.labels ?? {};
    const job = this.addJob({
      id,
      name: input.name,
      labels,
      user: labels.user,
      scheduler: labels.scheduler ?? (input.source === 'run' ? 'jouleflow-run' : 'api'),
      source: input.source ?? 'api',
      roots: new Set(pids),
      rootStarts: new Map(pids.map((pid) => [pid, this.startOf(pid) ?? -1])),
      cgroup: input.cgroup?.replace(/\/+$/, '') || (input.cgroup !== undefined ? '/' : undefined),
      gpus,
      reaperPid: input.reaperPid,
      ownerUid: input.ownerUid,
      start: input.start !== undefined && input.start <= now ? input.start : now,
      bornAfterMs: Math.max(input.start ?? now, now - BACKLOG_MS),
    });
    this.save([this.rowOf(job)]);
    this.opts.log.info('job registered', { job_id: id, name: input.name, source: job.source });
    return this.reportOf(job);
  }

  private addJob(j: Omit<Job, 'totals' | 'hadMembers' | 'members' | 'endRequested' | 'waiters'>): Job {
    const job: Job = { ...j, totals: emptyTotals(), hadMembers: false, members: 0, endRequested: false, waiters: [] };
    for (const c of COMPONENTS) job.totals[c].measured = 0;
    this.jobs.set(job.id, job);
    this.reclassifyAll = true;
    this.metrics?.setJob(this.labelsOf(job), job.start / 1000);
    this.updateLiveGauge();
    return job;
  }

  private reject(reason: string): void {
    this.metrics?.jobsRejected.inc({ reason });
  }

  private labelsOf(job: Job): { id: string; name: string; user?: string; scheduler?: string } {
    return { id: job.id, name: job.name, user: job.user, scheduler: job.scheduler };
  }

  /**
   * Ends a job: its last interval is measured at the next tick, then the final report resolves.
   * Ending an ended job returns its report. If no tick comes within `timeoutMs` the job ends
   * without that last interval.
   */
  end(id: string, timeoutMs = 10_000): Promise<JobReport> {
    const job = this.jobs.get(id);
    if (!job) {
      const row = this.opts.ledger?.get(id);
      if (row) return Promise.resolve(buildReport(row, row.end === undefined, this.clock(), this.opts.carbon));
      return Promise.reject(new JobError(404, `no job "${id}"`));
    }
    if (job.end !== undefined) return Promise.resolve(this.reportOf(job));
    job.endRequested = true;
    return new Promise<JobReport>((resolve) => {
      const timer = setTimeout(() => {
        if (job.end === undefined) this.finish(job, this.clock());
      }, timeoutMs);
      timer.unref?.();
      job.waiters.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  /** Whether a job exists and the uid that registered it (for the API's permission check). */
  ownerOf(id: string): { exists: boolean; ownerUid?: number } {
    const job = this.jobs.get(id);
    if (job) return { exists: true, ownerUid: job.ownerUid };
    const row = this.opts.ledger?.get(id);
    return row ? { exists: true, ownerUid: row.spec.ownerUid } : { exists: false };
  }

  get(id: string): JobReport | undefined {
    const job = this.jobs.get(id);
    if (job) return this.reportOf(job);
    const row = this.opts.ledger?.get(id);
    return row ? buildReport(row, false, this.clock(), this.opts.carbon) : undefined;
  }

  /** Live jobs (running and retained), or with `all` the ledger's latest `limit` too. */
  list(all = false, limit = 1000): JobReport[] {
    const out = [...this.jobs.values()].map((j) => this.reportOf(j));
    if (all && this.opts.ledger) {
      const seen = new Set(out.map((r) => r.id));
      for (const row of this.opts.ledger.list(limit))
        if (!seen.has(row.id)) out.push(buildReport(row, false, this.clock(), this.opts.carbon));
    }
    return out.sort((a, b) => a.startTime - b.startTime);
  }

  private rowOf(job: Job): LedgerRow {
    return {
      id: job.id,
      name: job.name,
      scheduler: job.scheduler,
      user: job.user,
      labels: job.labels,
      spec: {
        pids: job.roots.size ? [...job.roots] : undefined,
        pidStarts: job.roots.size ? [...job.roots].map((pid) => job.rootStarts.get(pid) ?? -1) : undefined,
        cgroup: job.cgroup,
        gpus: job.gpus.length ? job.gpus : undefined,
        source: job.source,
        ownerUid: job.ownerUid,
      },
      start: job.start,
      end: job.end,
      totals: job.totals,
      updated: this.clock(),
    };
  }

  private reportOf(job: Job): JobReport {
    return buildReport(this.rowOf(job), job.end === undefined, this.clock(), this.opts.carbon);
  }

  private updateLiveGauge(): void {
    const m = this.metrics;
    if (!m) return;
    const running = this.runningCount;
    m.jobsLive.set({ state: 'running' }, running);
    m.jobsLive.set({ state: 'ended' }, this.jobs.size - running);
  }

  private finish(job: Job, endMs: number): void {
    if (job.end !== undefined) return;
    job.end = Math.max(job.start, endMs);
    job.endRequested = false;
    job.retainUntil = job.end + this.opts.retentionMs;
    this.metrics?.setJob(this.labelsOf(job), job.start / 1000, job.end / 1000);
    this.save([this.rowOf(job)]);
    this.reclassifyAll = true;
    // A place under the live-job cap is free: discovered jobs refused for the cap get another try.
    this.refusedDiscovered.clear();
    this.reaperPending.delete(job.id);
    this.reaperLast.delete(job.id);
    this.updateLiveGauge();
    this.opts.log.info('job ended', { job_id: job.id });
    const report = this.reportOf(job);
    for (const w of job.waiters.splice(0)) w(report);
  }

  // ---------------------------------------------------------------- discovery

  private discovered(d: DiscoveredJob, source: JobSource): Job | undefined {
    const existing = this.jobs.get(d.id);
    if (existing) return existing.end === undefined ? existing : undefined;
    if (this.refusedDiscovered.has(d.id)) return undefined;
    if (this.runningCount >= this.opts.liveCap) {
      this.refusedDiscovered.add(d.id);
      this.reject('cap');
      this.opts.log.warn('discovered job refused: live-job cap reached', { job_id: d.id, cap: this.opts.liveCap });
      return undefined;
    }
    const row = this.opts.ledger?.get(d.id);
    if (row?.end !== undefined) return undefined; // an ended job whose id reappears is not reopened
    const job = this.addJob({
      id: d.id,
      name: d.name,
      labels: {},
      user: d.user,
      scheduler: d.scheduler,
      source,
      roots: new Set(),
      rootStarts: new Map(),
      gpus: [],
      start: this.clock(),
    });
    this.save([this.rowOf(job)]);
    this.opts.log.info('job discovered', { job_id: d.id, scheduler: d.scheduler });
    return job;
  }

  private syncHpcMapping(): void {
    const dir = this.opts.discovery.hpcMappingDir;
    if (!dir) return;
    const mapping = readHpcMapping(dir);
    // An unreadable directory (being replaced, a transient error) says nothing about the jobs:
    // ending every HPC job on it would end them for good (ended ids are not reopened).
    if (!mapping) return;
    for (const [id, indexes] of mapping) {
      const job = this.discovered({ id, name: `job ${id}`, scheduler: 'hpc' }, 'hpc');
      if (!job) continue;
      const gpus = indexes.map(String);
      if (job.gpus.join(',') !== gpus.join(',')) {
        job.gpus = gpus;
        this.reclassifyAll = true;
      }
    }
    for (const job of this.jobs.values()) {
      if (job.source === 'hpc' && job.end === undefined && !mapping.has(job.id)) job.endRequested = true;
    }
  }

  // ---------------------------------------------------------------- process table

  /** A process's start time (clock ticks after boot), or undefined when it does not exist. */
  private startOf(pid: number): number | undefined {
    return parseProcPidStat(readFileOrUndefined(pidPath(this.opts.procfs, pid, 'stat')) ?? '')?.starttime;
  }

  private readNew(pid: number): Proc | undefined {
    const st = parseProcPidStat(readFileOrUndefined(pidPath(this.opts.procfs, pid, 'stat')) ?? '');
    if (!st) return undefined;
    const p: Proc = {
      pid,
      ppid: st.ppid,
      starttime: st.starttime,
      kernel: pid === 2 || st.ppid === 2,
      confirm: 1,
      pendingCpu: 0,
      pendingIo: 0,
      pendingAge: 0,
    };
    this.readIdentity(p);
    return p;
  }

  private needCgroups(): boolean {
    const d = this.opts.discovery;
    if (d.slurm || d.kubernetes) return true;
    for (const j of this.jobs.values()) if (j.cgroup !== undefined && j.end === undefined) return true;
    return false;
  }

  /** cgroup paths and JOULEFLOW_JOB, as far as permitted. */
  private readIdentity(p: Proc): void {
    if (p.kernel) return;
    if (this.needCgroups()) {
      const text = readFileOrUndefined(pidPath(this.opts.procfs, p.pid, 'cgroup'));
      if (text !== undefined) p.cgroups = cgroupPaths(text);
    }
    if (this.opts.discovery.env) {
      const env = this.envLookup ? this.envLookup.lookup(p.pid) : readFileOrUndefined(pidPath(this.opts.procfs, p.pid, 'environ'));
      if (env !== undefined && env !== PENDING) p.envJob = environValue(env, 'JOULEFLOW_JOB');
    }
  }

  /** Indexes for classification, rebuilt once per tick. */
  private index(): { roots: Map<number, string>; cgroupJobs: Job[] } {
    const roots = new Map<number, string>();
    const cgroupJobs: Job[] = [];
    for (const j of this.jobs.values()) {
      if (j.end !== undefined) continue;
      for (const r of j.roots) roots.set(r, j.id);
      if (j.cgroup !== undefined) cgroupJobs.push(j);
    }
    cgroupJobs.sort((a, b) => (b.cgroup ?? '').length - (a.cgroup ?? '').length);
    return { roots, cgroupJobs };
  }

  /**
   * The job of a process, by precedence: an explicit root; its own JOULEFLOW_JOB; an API cgroup
   * (longest prefix); its parent's job; the GPUs it holds; Slurm/Kubernetes cgroup paths.
   * `fresh` holds the processes being (re)classified; others keep their current job.
   */
  private classify(
    p: Proc,
    ix: { roots: Map<number, string>; cgroupJobs: Job[] },
    memo: Map<number, string | undefined>,
    fresh: ((p: Proc) => boolean) | undefined,
    depth = 0,
  ): string | undefined {
    if (memo.has(p.pid)) return memo.get(p.pid);
    if (fresh && !fresh(p)) return p.job;
    memo.set(p.pid, undefined); // cycle guard
    const live = (id: string | undefined) => (id !== undefined && this.jobs.get(id)?.end === undefined ? id : undefined);
    let job = ix.roots.get(p.pid);
    if (job !== undefined) {
      const start = this.jobs.get(job)?.rootStarts.get(p.pid);
      if (start !== undefined && start >= 0 && start !== p.starttime) job = undefined; // a later process with the root's PID
    }
    if (job === undefined && p.envJob !== undefined) {
      const d = envJob(p.envJob);
      if (d) job = this.jobs.has(d.id) ? live(d.id) : this.discovered(d, 'env')?.id;
    }
    if (job === undefined && p.cgroups && ix.cgroupJobs.length) {
      const cgs = p.cgroups;
      const hit = ix.cgroupJobs.find((j) => {
        const cg = j.cgroup ?? '';
        return cg === '/' || cgs.some((c) => c === cg || c.startsWith(cg + '/'));
      });
      job = hit?.id;
    }
    if (job === undefined && depth < 512) {
      const parent = this.procs.get(p.ppid);
      if (parent && parent.starttime <= p.starttime) job = this.classify(parent, ix, memo, fresh, depth + 1);
    }
    if (job === undefined) job = live(p.gpuJob);
    if (job === undefined && p.cgroups) {
      const d =
        (this.opts.discovery.slurm ? slurmFromCgroup(p.cgroups) : undefined) ??
        (this.opts.discovery.kubernetes ? kubernetesFromCgroup(p.cgroups) : undefined);
      if (d) job = this.discovered(d, d.scheduler === 'slurm' ? 'slurm' : 'kubernetes')?.id;
    }
    memo.set(p.pid, job);
    return job;
  }

  private assign(p: Proc, job: string | undefined, bornAfter: (p: Proc, job: string) => boolean): void {
    if (p.job === job) return;
    p.job = job;
    // A process joining a job starts from a fresh baseline, unless it was born during the job.
    p.cpu = p.child = p.io = undefined;
    p.pendingCpu = p.pendingIo = 0;
    if (job !== undefined && bornAfter(p, job)) {
      p.cpu = p.child = p.io = 0;
    }
  }

  // ---------------------------------------------------------------- per tick

  async usage(now: number, _dtSeconds: number, gpuProcesses: readonly GpuProcess[]): Promise<JobUsage[]> {
    if (this.environs) {
      // New processes, and those due for their confirming re-read, get their environment read
      // off the event loop first; a read that blocks is left behind, not waited for.
      const due = listPids(this.opts.procfs).filter((pid) => (this.procs.get(pid)?.confirm ?? 1) > 0);
      await this.environs.prefetch(due, this.tick + 1, ENVIRON_WAIT_MS);
      const blocked = this.environs.blockedFor();
      if (blocked !== undefined && blocked > 5000 && !this.environBlockedLogged) {
        this.environBlockedLogged = true;
        this.opts.log.warn('reading /proc/PID/environ is blocked (a process stuck in D state?); JOULEFLOW_JOB discovery waits', {
          blocked_ms: blocked,
        });
      }
      if (blocked === undefined) this.environBlockedLogged = false;
    }
    return this.measure(now, gpuProcesses, this.environs);
  }

  /** The synchronous body of usage(): a scan of the process table and the members' counters. */
  measure(now: number, gpuProcesses: readonly GpuProcess[], environs?: EnvironReader): JobUsage[] {
    const { procfs } = this.opts;
    this.envLookup = environs;
    this.tick++;
    this.syncHpcMapping();
    const uptime = parseUptimeTicks(readFileOrUndefined(path.join(procfs, 'uptime')) ?? '', this.hz);
    const bootMs = uptime !== undefined ? now - (uptime / this.hz) * 1000 : undefined;
    for (const j of this.jobs.values()) {
      if (j.countFromTicks === Infinity) j.countFromTicks = uptime; // resumed: count from now on
    }
    const prevUptime = this.prevUptime;
    const bornAfter = (p: Proc, jobId: string): boolean => {
      const j = this.jobs.get(jobId);
      if (!j || uptime === undefined || bootMs === undefined) return false;
      const jobStartTicks = j.countFromTicks ?? (((j.bornAfterMs ?? j.start) - bootMs) / 1000) * this.hz;
      // Born after the job started (with a tick of slack for the clock conversion), or born
      // during this interval, so its whole life happened inside the job's measured time.
      return (
        p.starttime >= jobStartTicks - 1 ||
        (prevUptime !== undefined && p.starttime >= prevUptime && p.starttime >= (j.countFromTicks ?? 0))
      );
    };

    this.reapers.clear();
    for (const j of this.jobs.values()) {
      if (j.end === undefined && j.reaperPid !== undefined) this.reapers.set(j.reaperPid, [...(this.reapers.get(j.reaperPid) ?? []), j]);
    }

    // 1. The process list: exits and new processes.
    const pids = listPids(procfs);
    const current = new Set(pids);
    const exited: Proc[] = [];
    for (const [pid, p] of this.procs) if (!current.has(pid)) exited.push(p);
    // Children before their parents: a parent that waited for a child and exited in the same
    // interval passes what was counted of that child on to its own reaper.
    if (exited.length > 1) exited.sort((a, b) => b.starttime - a.starttime || b.pid - a.pid);
    for (const p of exited) this.exit(p);
    const toClassify: Proc[] = [];
    for (const pid of pids) {
      const known = this.procs.get(pid);
      if (known) {
        if (known.confirm > 0) {
          known.confirm--;
          const before = `${known.envJob}|${known.cgroups?.join(',')}`;
          this.readIdentity(known);
          if (`${known.envJob}|${known.cgroups?.join(',')}` !== before) this.reclassifyAll = true;
        }
        continue;
      }
      const p = this.readNew(pid);
      if (!p) continue;
      this.procs.set(pid, p);
      toClassify.push(p);
    }

    // 2. GPU holders of jobs given by GPU.
    const gpuJobs = [...this.jobs.values()].filter((j) => j.end === undefined && j.gpus.length > 0);
    if (gpuJobs.length) {
      for (const g of gpuProcesses) {
        const p = this.procs.get(g.pid);
        if (!p) continue;
        const j = gpuJobs.find((job) => job.gpus.some((s) => gpuMatches(s, g.device)));
        if (j && p.gpuJob !== j.id) {
          p.gpuJob = j.id;
          toClassify.push(p);
        }
      }
    }

    // 3. Membership.
    const memo = new Map<number, string | undefined>();
    if (this.reclassifyAll) {
      this.reclassifyAll = false;
      const ix = this.index();
      for (const p of this.procs.values()) this.assign(p, this.classify(p, ix, memo, undefined), bornAfter);
    } else if (toClassify.length) {
      const ix = this.index();
      const set = new Set(toClassify);
      for (const p of toClassify)
        this.assign(
          p,
          this.classify(p, ix, memo, (q) => set.has(q)),
          bornAfter,
        );
    }

    // 4. Counters of members.
    const acc = new Map<string, { cpu: number; io: number; members: number; sample?: Proc }>();
    for (const j of this.jobs.values()) if (j.end === undefined) acc.set(j.id, { cpu: 0, io: 0, members: 0 });
    for (const p of this.procs.values()) {
      if (p.job === undefined) continue;
      const a = acc.get(p.job);
      if (!a) continue;
      const d = this.readCounters(p);
      if (!d) continue;
      a.cpu += d.cpu;
      a.io += d.io;
      a.members++;
      if (!a.sample || p.pid < a.sample.pid) a.sample = p;
    }
    for (const j of this.jobs.values()) {
      if (j.end !== undefined || j.reaperPid === undefined) continue;
      const r = this.readReaper(j);
      const a = acc.get(j.id);
      if (a) a.cpu += r;
    }

    // 5. GPU shares over the window.
    this.gpuWindow.push(gpuProcesses, (pid) => this.procs.get(pid)?.job);
    const gpuShares = this.gpuWindow.shares();

    // 6. Per-job usage; jobs whose processes are all gone end after this interval.
    const out: JobUsage[] = [];
    const nsJobs = new Map<string, { ids: string[]; pid: number }>();
    for (const [id, a] of acc) {
      const job = this.jobs.get(id);
      if (!job) continue;
      job.members = a.members;
      if (a.members > 0) job.hadMembers = true;
      const shares: Record<string, number> = {};
      for (const [device, s] of gpuShares) {
        const v = s.byJob.get(id);
        if (v) shares[device] = v;
      }
      out.push({ id, cpuSeconds: a.cpu / this.hz, ioBytes: a.io, gpuShares: shares });
      if (a.sample) {
        const ns = this.netnsOf(a.sample);
        if (ns !== undefined && this.hostNetns !== undefined && ns !== this.hostNetns) {
          const e = nsJobs.get(ns) ?? { ids: [], pid: a.sample.pid };
          e.ids.push(id);
          nsJobs.set(ns, e);
        }
      }
      const rootsGone = job.roots.size > 0 && ![...job.roots].some((r) => current.has(r));
      const gone = a.members === 0 && (job.hadMembers || job.resumedUpdated !== undefined || rootsGone);
      if (gone && (AUTO_END_SOURCES.has(job.source) || (job.source === 'api' && job.cgroup === undefined && job.gpus.length === 0))) {
        job.endRequested = true;
      }
    }
    // 7. Own network namespaces: bytes through their interfaces (lo excluded).
    for (const [ns, { ids, pid }] of nsJobs) {
      const text = readFileOrUndefined(pidPath(procfs, pid, 'net/dev'));
      if (text === undefined) continue;
      const bytes = parseNetDevBytes(text);
      const last = this.netnsLast.get(ns);
      this.netnsLast.set(ns, bytes);
      const delta = last !== undefined && bytes >= last ? bytes - last : 0;
      for (const u of out) if (ids.includes(u.id)) u.netnsBytes = delta / ids.length;
    }
    if (this.netnsLast.size > nsJobs.size) for (const ns of this.netnsLast.keys()) if (!nsJobs.has(ns)) this.netnsLast.delete(ns);
    this.prevUptime = uptime;
    return out;
  }

  private exit(p: Proc): void {
    this.procs.delete(p.pid);
    this.environs?.forget(p.pid);
    if (p.cpu === undefined) return;
    const parent = this.procs.get(p.ppid);
    // The parent's cutime/cstime and io now include this child's totals (it was reaped: it left
    // /proc). What we counted of it already is subtracted from the parent's next deltas. That
    // includes what the child had not yet subtracted of its own reaped children (pending): its
    // cutime holds them too, and they were counted while they ran.
    const counted = p.cpu + (p.child ?? 0) + p.pendingCpu;
    if (parent && parent.starttime <= p.starttime) {
      parent.pendingCpu += counted;
      parent.pendingIo += (p.io ?? 0) + p.pendingIo;
      parent.pendingAge = 0;
    }
    for (const j of this.reapers.get(p.ppid) ?? []) {
      if (j.end === undefined) this.reaperPending.set(j.id, (this.reaperPending.get(j.id) ?? 0) + counted);
    }
  }

  /** Running jobs by reaper pid, rebuilt each tick: exits are many, jobs with a reaper few. */
  private readonly reapers = new Map<number, Job[]>();
  private readonly reaperPending = new Map<string, number>();
  private readonly reaperLast = new Map<string, number>();

  private readReaper(job: Job): number {
    const st = parseProcPidStat(readFileOrUndefined(pidPath(this.opts.procfs, job.reaperPid ?? 0, 'stat')) ?? '');
    if (!st) return 0;
    const last = this.reaperLast.get(job.id);
    this.reaperLast.set(job.id, st.childTicks);
    if (last === undefined) return 0;
    const d = Math.max(0, st.childTicks - last);
    const pending = this.reaperPending.get(job.id) ?? 0;
    this.reaperPending.set(job.id, Math.max(0, pending - d));
    return Math.max(0, d - pending);
  }

  /** CPU ticks and io bytes of one member since its last reading (0 on the first). */
  private readCounters(p: Proc): { cpu: number; io: number } | undefined {
    const st = parseProcPidStat(readFileOrUndefined(pidPath(this.opts.procfs, p.pid, 'stat')) ?? '');
    if (!st) return undefined;
    if (st.starttime !== p.starttime) {
      // PID reused since we looked: the old process is gone, the new one is classified next tick.
      this.exit(p);
      return undefined;
    }
    const ioNow = parseProcPidIo(readFileOrUndefined(pidPath(this.opts.procfs, p.pid, 'io')) ?? '');
    let cpu = 0;
    let io = 0;
    if (p.cpu !== undefined && p.child !== undefined) {
      const own = st.cpuTicks - p.cpu;
      const kids = st.childTicks - p.child;
      const fromKids = Math.max(0, kids - p.pendingCpu);
      p.pendingCpu = Math.max(0, p.pendingCpu - Math.max(0, kids));
      cpu = Math.max(0, own) + fromKids;
    }
    if (ioNow !== undefined && p.io !== undefined) {
      const d = ioNow - p.io;
      if (d >= 0) {
        io = Math.max(0, d - p.pendingIo);
        p.pendingIo = Math.max(0, p.pendingIo - d);
      }
    }
    // Pending amounts are consumed at the parent's next readings; stale ones (a parent that does
    // not wait for its children) are dropped after a few ticks.
    if (p.pendingCpu > 0 || p.pendingIo > 0) {
      if (++p.pendingAge > 3) p.pendingCpu = p.pendingIo = 0;
    }
    p.cpu = st.cpuTicks;
    p.child = st.childTicks;
    if (ioNow !== undefined && (p.io === undefined || ioNow >= p.io)) p.io = ioNow;
    return { cpu, io };
  }

  private netnsOf(p: Proc): string | undefined {
    if (p.netns === undefined) p.netns = readLinkOrUndefined(pidPath(this.opts.procfs, p.pid, 'ns/net'));
    return p.netns;
  }

  record(step: StepResult, attribution: Attribution): void {
    const now = step.t;
    for (const share of attribution.jobs) {
      const job = this.jobs.get(share.id);
      if (!job || job.end !== undefined) continue;
      for (const c of COMPONENTS) {
        const m = share.method[c];
        job.totals[c][m] = (job.totals[c][m] ?? 0) + share.joules[c];
      }
    }
    for (const job of [...this.jobs.values()]) {
      if (job.end === undefined && job.endRequested) {
        const endMs = job.resumedUpdated !== undefined && !job.hadMembers ? job.resumedUpdated : now;
        this.finish(job, endMs);
      }
    }
    for (const job of [...this.jobs.values()]) {
      if (job.retainUntil !== undefined && now >= job.retainUntil) {
        this.jobs.delete(job.id);
        this.metrics?.removeJob(job.id);
        this.updateLiveGauge();
      }
    }
    if (this.opts.ledger && now - this.lastCheckpoint >= this.opts.checkpointMs) {
      this.checkpoint();
      this.lastCheckpoint = now;
    }
  }

  /** Writes every running job's totals to the ledger. */
  checkpoint(): void {
    const rows = [...this.jobs.values()].filter((j) => j.end === undefined).map((j) => this.rowOf(j));
    this.save(rows);
  }

  /**
   * Writes rows to the ledger. A failing write (disk full, I/O error) is logged and counted, never
   * thrown: a job must still end, its waiters get their report, and the next checkpoint retries.
   */
  private save(rows: LedgerRow[]): void {
    try {
      this.opts.ledger?.save(rows);
    } catch (err) {
      this.metrics?.sourceErrors.inc({ source: 'ledger', reason: 'write' });
      this.opts.log.warn('writing the jobs ledger failed', { err: (err as Error).message });
    }
  }

  /** Checkpoints and closes the ledger. */
  close(): void {
    if (!this.opts.ledger) return;
    this.checkpoint();
    this.opts.ledger.close();
  }

  /** Process → job, for tests and diagnostics. */
  membership(): Map<number, string> {
    const m = new Map<number, string>();
    for (const p of this.procs.values()) if (p.job !== undefined) m.set(p.pid, p.job);
    return m;
  }
}
