import { randomUUID } from 'crypto';
import type { JobView } from '../core';
import { COMPONENTS } from '../core';
import type { Attribution } from '../model/attribution';
import { UNATTRIBUTED } from '../model/attribution';
import { JOB_ID_RE, type DiscoveredJob } from './discovery';
import { JobError } from './errors';
import { emptyTotals } from './ledger';
import { JobPersistence, type PersistenceOptions } from './persistence';
import { addShare, recordFromRow, rowOf, seriesLabels, viewOf, type JobRecord, type JobSource, type NewJob } from './records';
import type { CarbonConfig, JobReport } from './report';
import { buildReport } from './report';
import { listJobs, type JobPage } from './listing';
import { WorkTally } from './work';

/**
 * The jobs registry (docs/design.md, section 4): job records and their lifecycle (register, end, retain,
 * expire) and their energy totals; their persistence in the ledger is jobs/persistence.ts. It knows nothing of
 * processes or metrics: the tracker tells it which jobs lost their processes, and the sampler's
 * snapshot reads view().
 */

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
  /** A process whose reaped children's CPU time belongs to this job (the in-process `jouleflow run`). */
  reaperPid?: number;
  /** The uid that registered the job through the API (web/job-access.ts): it alone (and root) may end it. */
  ownerUid?: number;
}

/** What registration needs to know of processes. */
export interface ProcessLookup {
  startOf(pid: number): number | undefined;
  /** The job a process with this start time was assigned to by the last scan. */
  ownerOf(pid: number, start: number): string | undefined;
}

/** How far before its registration a job's processes may be born and count from birth (`run` registers within 5 s). */
const BACKLOG_MS = 10_000;

export interface RegistryOptions extends PersistenceOptions {
  liveCap: number;
  /** Most ended jobs kept live (the oldest ended go first). */
  endedCap: number;
  carbon: CarbonConfig;
}

export class JobRegistry {
  private readonly jobs = new Map<string, JobRecord>();
  private readonly rejected = new Map<string, number>([['cap', 0]]);
  private readonly store: JobPersistence;
  /** Discovered ids refused for the cap: retried once a place is free. */
  private readonly refusedDiscovered = new Set<string>();
  /** Called for every new job (the metadata service looks up its scheduler's name, user, labels). */
  onJobAdded: ((job: { id: string; scheduler: string }) => void) | undefined;
  /** Bumped whenever the set of running jobs or their definitions change (membership must be redone). */
  generation = 0;

  constructor(private readonly opts: RegistryOptions) {
    this.store = new JobPersistence(opts);
  }

  get runningCount(): number {
    let n = 0;
    for (const j of this.jobs.values()) if (j.end === undefined) n++;
    return n;
  }

  job(id: string): JobRecord | undefined {
    return this.jobs.get(id);
  }

  /** Every live record (running and retained). */
  records(): IterableIterator<JobRecord> {
    return this.jobs.values();
  }

  reject(reason: string): void {
    this.rejected.set(reason, (this.rejected.get(reason) ?? 0) + 1);
  }

  /** Whether an id is taken, live or in the ledger. */
  exists(id: string): boolean {
    return this.jobs.has(id) || this.store.row(id) !== undefined;
  }

  /** Validates and adds a job given by the API or `run`; a PID already in a running job is a conflict. */
  register(input: JobInput, lookup: ProcessLookup): JobReport {
    const id = input.id ?? `job-${randomUUID().slice(0, 8)}`;
    const refuse = (kind: 'invalid' | 'conflict', reason: string, message: string): never => {
      this.reject(reason);
      throw new JobError(kind, message);
    };
    if (!JOB_ID_RE.test(id) || id === UNATTRIBUTED)
      refuse('invalid', 'invalid', `invalid job id "${id}": 1-128 characters of letters, digits and ._:@+=- (not "${UNATTRIBUTED}")`);
    if (this.exists(id)) refuse('conflict', 'duplicate', `job "${id}" already exists`);
    const pids = input.pids ?? [];
    const gpus = (input.gpus ?? []).map(String);
    if (pids.length === 0 && input.cgroup === undefined && gpus.length === 0)
      refuse('invalid', 'invalid', 'a job needs at least one of pids, cgroup or gpus');
    const starts = new Map<number, number>();
    for (const pid of pids) {
      const start = lookup.startOf(pid);
      if (start === undefined) refuse('invalid', 'invalid', `no such process: ${pid}`);
      starts.set(pid, start ?? -1);
      // A process belongs to one job: never moved silently from the job that holds it.
      const owner = this.ownerOf(pid, start ?? -1, lookup);
      if (owner !== undefined) refuse('conflict', 'conflict', `process ${pid} already belongs to job "${owner}"`);
    }
    const now = this.opts.clock();
    const labels = input.labels ?? {};
    const job = this.add({
      id,
      name: input.name,
      labels,
      user: labels.user,
      scheduler: labels.scheduler ?? (input.source === 'run' ? 'jouleflow-run' : 'api'),
      source: input.source ?? 'api',
      roots: new Set(pids),
      rootStarts: starts,
      cgroup: input.cgroup?.replace(/\/+$/, '') || (input.cgroup !== undefined ? '/' : undefined),
      gpus,
      reaperPid: input.reaperPid,
      ownerUid: input.ownerUid,
      start: input.start !== undefined && input.start <= now ? input.start : now,
      bornAfterMs: Math.max(input.start ?? now, now - BACKLOG_MS),
    });
    this.opts.log.info('job registered', { job_id: id, name: input.name, source: job.source });
    return this.reportOf(job);
  }

  /** The running job that holds a process: as a root, or as a member of the last scan. */
  private ownerOf(pid: number, start: number, lookup: ProcessLookup): string | undefined {
    for (const j of this.jobs.values()) if (j.end === undefined && j.roots.has(pid) && (j.rootStarts.get(pid) ?? -1) === start) return j.id;
    const member = lookup.ownerOf(pid, start);
    return member !== undefined && this.jobs.get(member)?.end === undefined ? member : undefined;
  }

  /** Adds a job (callers validated it) and persists it. */
  add(j: NewJob): JobRecord {
    if (this.runningCount >= this.opts.liveCap) {
      this.reject('cap');
      throw new JobError('cap', `too many running jobs: the live-job cap is ${this.opts.liveCap} (jobs.liveCap)`);
    }
    const job: JobRecord = {
      ...j,
      totals: emptyTotals(),
      hadMembers: false,
      members: 0,
      endRequested: false,
      waiters: [],
      seriesLabels: seriesLabels(j.id, j.name, j.user, j.scheduler),
      work: new WorkTally(),
    };
    for (const c of COMPONENTS) job.totals[c].measured = 0;
    this.jobs.set(job.id, job);
    this.generation++;
    this.store.save([job]);
    this.onJobAdded?.({ id: job.id, scheduler: job.scheduler });
    return job;
  }

  /**
   * Fills in a job's display metadata resolved after it was found (a Slurm or Kubernetes lookup):
   * its series get the new labels from the next snapshot on, and the ledger row is updated.
   * Extra `labels` (partition, account, namespace…) go to the record; labels it already has win.
   */
  describe(id: string, meta: { name?: string; user?: string; scheduler?: string; labels?: Record<string, string> }): boolean {
    const job = this.jobs.get(id);
    if (!job) return false;
    job.name = meta.name || job.name;
    job.user = meta.user || job.user;
    job.scheduler = meta.scheduler ?? job.scheduler;
    if (meta.labels) job.labels = { ...meta.labels, ...job.labels };
    job.seriesLabels = seriesLabels(job.id, job.name, job.user, job.scheduler);
    job.view = undefined;
    this.store.save([job]);
    return true;
  }

  /** A scheduler's job seen on a process: created once, refused over the cap, never reopened once ended. */
  discovered(d: DiscoveredJob, source: JobSource): JobRecord | undefined {
    const existing = this.jobs.get(d.id);
    if (existing) return existing.end === undefined ? existing : undefined;
    if (this.refusedDiscovered.has(d.id)) return undefined;
    if (this.store.row(d.id)?.end !== undefined) return undefined;
    try {
      const job = this.add({
        id: d.id,
        name: d.name,
        labels: {},
        user: d.user,
        scheduler: d.scheduler,
        source,
        roots: new Set(),
        rootStarts: new Map(),
        cgroup: d.cgroup,
        gpus: [],
        start: this.opts.clock(),
      });
      this.opts.log.info('job discovered', { job_id: d.id, scheduler: d.scheduler });
      return job;
    } catch (err) {
      if (!(err instanceof JobError)) throw err;
      this.refusedDiscovered.add(d.id);
      this.opts.log.warn('discovered job refused: live-job cap reached', { job_id: d.id, cap: this.opts.liveCap });
      return undefined;
    }
  }

  /** Restores running jobs (and recently ended ones, for their retention) from the ledger. */
  resume(rootStillRunning: (pid: number, start: number) => boolean): number {
    const rows = this.store.resumable();
    for (const r of rows) {
      const job = recordFromRow(r, this.opts.retentionMs);
      // Roots still running the same process (not a later one that got its PID) stay roots.
      (r.spec.pids ?? []).forEach((pid, i) => {
        const start = r.spec.pidStarts?.[i];
        if (job.end === undefined && start !== undefined && rootStillRunning(pid, start)) {
          job.roots.add(pid);
          job.rootStarts.set(pid, start);
        }
      });
      this.jobs.set(job.id, job);
    }
    this.generation++;
    if (rows.length) {
      const running = rows.filter((r) => r.end === undefined).length;
      this.opts.log.info('jobs resumed from the ledger', { running, ended: rows.length - running });
    }
    return rows.length;
  }

  /**
   * Ends a job: its last interval is measured at the next tick, then the final report resolves.
   * Ending an ended job returns its report; an exit code given then is kept if it had none (a Slurm
   * job may end with its last process just before its epilog's call). If no tick comes within
   * `timeoutMs` the job ends without that last interval.
   */
  end(id: string, opts: { timeoutMs?: number; exitCode?: number } = {}): Promise<JobReport> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const job = this.jobs.get(id);
    if (!job) {
      const row = this.store.row(id);
      if (row) return Promise.resolve(buildReport(row, row.end === undefined, this.opts.clock(), this.opts.carbon));
      return Promise.reject(new JobError('not_found', `no job "${id}"`));
    }
    if (job.end !== undefined) {
      if (opts.exitCode !== undefined && job.exitCode === undefined) {
        job.exitCode = opts.exitCode;
        this.store.save([job]);
      }
      return Promise.resolve(this.reportOf(job));
    }
    job.endRequested = true;
    if (opts.exitCode !== undefined) job.exitCode = opts.exitCode;
    return new Promise<JobReport>((resolve) => {
      const timer = setTimeout(() => {
        if (job.end === undefined) this.finish(job, this.opts.clock());
      }, timeoutMs);
      timer.unref?.();
      job.waiters.push((r) => {
        clearTimeout(timer);
        resolve(r);
      });
    });
  }

  /** The work tally of a running job, for a work report; an ended job takes no more work (409). */
  workOf(id: string): WorkTally {
    const job = this.jobs.get(id);
    if (job && job.end === undefined) {
      // The caller changes the tally at once (the API's work report): the next snapshot shows it.
      job.view = undefined;
      return job.work;
    }
    if (job || this.store.row(id)) throw new JobError('conflict', `job "${id}" has ended: it takes no more work reports`);
    throw new JobError('not_found', `no job "${id}"`);
  }

  /** Whether a job exists, live or in the ledger, and the uid that registered it (for the API's permission check). */
  ownerUidOf(id: string): { exists: boolean; ownerUid?: number } {
    const held = this.jobs.get(id) ?? this.store.row(id)?.spec;
    return held ? { exists: true, ownerUid: held.ownerUid } : { exists: false };
  }

  get(id: string): JobReport | undefined {
    const job = this.jobs.get(id);
    if (job) return this.reportOf(job);
    const row = this.store.row(id);
    return row ? buildReport(row, false, this.opts.clock(), this.opts.carbon) : undefined;
  }

  /**
   * One page of jobs ordered by (start, id): the live ones, or with `all` every job in the ledger
   * (live ones with their current totals). `cursor` is the previous page's next_cursor.
   */
  list(opts: { all?: boolean; limit?: number; cursor?: string } = {}): JobPage {
    const now = this.opts.clock();
    return listJobs(this.jobs, opts.all ? this.store.ledger : undefined, opts, {
      live: (j) => this.reportOf(j),
      stored: (row) => buildReport(row, false, now, this.opts.carbon),
    });
  }

  /** Adds an interval's shares to the running jobs' totals and ends, expires and checkpoints. */
  record(now: number, dt: number, attribution: Attribution): void {
    const shared = new Set<string>();
    for (const share of attribution.jobs) {
      const job = this.jobs.get(share.id);
      if (!job || job.end !== undefined) continue;
      shared.add(job.id);
      if (addShare(job, share, dt)) job.view = undefined;
    }
    for (const job of this.jobs.values()) {
      if (job.end !== undefined || job.watts === undefined || shared.has(job.id)) continue;
      job.watts = undefined; // no share this interval (it has no members)
      job.view = undefined;
    }
    for (const job of [...this.jobs.values()]) {
      if (job.end === undefined && job.endRequested) {
        this.finish(job, job.resumedUpdated !== undefined && !job.hadMembers ? job.resumedUpdated : now);
      }
    }
    for (const job of [...this.jobs.values()]) if (job.retainUntil !== undefined && now >= job.retainUntil) this.jobs.delete(job.id);
    this.store.maintain(now, () => this.running());
  }

  private finish(job: JobRecord, endMs: number): void {
    if (job.end !== undefined) return;
    job.end = Math.max(job.start, endMs);
    job.endRequested = false;
    job.retainUntil = job.end + this.opts.retentionMs;
    job.watts = undefined;
    job.view = undefined;
    this.store.save([job]);
    this.generation++;
    // A place under the live-job cap is free: discovered jobs refused for the cap get another try.
    this.refusedDiscovered.clear();
    this.opts.log.info('job ended', { job_id: job.id });
    const report = this.reportOf(job);
    for (const w of job.waiters.splice(0)) w(report);
    this.capEnded();
  }

  /** Keeps at most endedCap ended jobs live; the oldest ended leave first (the ledger keeps them). */
  private capEnded(): void {
    const ended = [...this.jobs.values()].filter((j) => j.end !== undefined);
    if (ended.length <= this.opts.endedCap) return;
    ended.sort((a, b) => (a.end ?? 0) - (b.end ?? 0));
    for (const j of ended.slice(0, ended.length - this.opts.endedCap)) this.jobs.delete(j.id);
  }

  /** The jobs as the metrics show them (sampler snapshot). */
  view(): { jobs: JobView[]; rejected: ReadonlyMap<string, number>; errors: ReadonlyMap<string, number> } {
    const jobs: JobView[] = [];
    for (const j of this.jobs.values()) jobs.push((j.view ??= viewOf(j)));
    jobs.sort((a, b) => a.startMs - b.startMs);
    const errors = new Map<string, number>();
    if (this.store.writeErrors > 0) errors.set('ledger\u0000write', this.store.writeErrors);
    return { jobs, rejected: new Map(this.rejected), errors };
  }

  /** Writes every running job's totals to the ledger. */
  checkpoint(): void {
    this.store.save(this.running());
  }

  close(): void {
    this.store.close(this.running());
  }

  private running(): JobRecord[] {
    return [...this.jobs.values()].filter((j) => j.end === undefined);
  }

  reportOf(job: JobRecord): JobReport {
    const now = this.opts.clock();
    return buildReport(rowOf(job, now), job.end === undefined, now, this.opts.carbon);
  }
}
