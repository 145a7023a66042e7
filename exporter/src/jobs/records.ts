import type { Component, JobLabels, JobView } from '../core';
import { COMPONENTS } from '../core';
import type { JobShare } from '../model/attribution';
import { safeLabelValue } from '../util/labels';
import type { LedgerRow, Totals } from './ledger';
import type { JobReport } from './report';
import { WorkTally } from './work';

/** A job as the registry holds it, and its conversions to and from a ledger row. */

export type JobSource = 'api' | 'run' | 'slurm' | 'kubernetes' | 'env' | 'hpc';

export interface JobRecord {
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
  /** The uid that registered the job through the API (web/job-access.ts): it alone (and root) may end it. */
  ownerUid?: number;
  start: number;
  end?: number;
  /** Processes born before this (clock ticks since boot) count only from their first reading. */
  countFromTicks?: number;
  /** Processes born after this (ms since the epoch) count from their birth (see tracker). */
  bornAfterMs?: number;
  totals: Totals;
  /** A member process was seen at some point; members seen in the latest scan. */
  hadMembers: boolean;
  members: number;
  endRequested: boolean;
  /** When its processes were last seen gone (ms, the tracker's clock); a `jouleflow run` job ends a grace period later. */
  goneSinceMs?: number;
  /** Ledger timestamp of a resumed job (used as its end if its processes are gone). */
  resumedUpdated?: number;
  waiters: Array<(r: JobReport) => void>;
  retainUntil?: number;
  /** The exit status its end call reported (a Slurm epilog's job script), when one did. */
  exitCode?: number;
  /** The labels of its series; replaced (never mutated) when name, user or scheduler change. */
  seriesLabels: JobLabels;
  /** Mean power per component over the last interval. */
  watts?: Record<Component, number>;
  /** Work totals per unit the job reported (issue 15). */
  work: WorkTally;
  /**
   * The job as the last snapshot showed it, reused while nothing in it changed (a thousand idle
   * jobs then cost no allocation per tick); cleared by every change to what it shows.
   */
  view?: JobView;
}

export type NewJob = Omit<JobRecord, 'totals' | 'hadMembers' | 'members' | 'endRequested' | 'waiters' | 'seriesLabels' | 'work' | 'view'>;

/** A record resumed from the ledger; roots are re-checked by the caller. */
export function recordFromRow(r: LedgerRow, retentionMs: number): JobRecord {
  return {
    seriesLabels: seriesLabels(r.id, r.name, r.user, r.scheduler),
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
    retainUntil: r.end !== undefined ? r.end + retentionMs : undefined,
    exitCode: r.spec.exitCode,
    countFromTicks: Infinity, // set at the first scan: only CPU used after the restart counts
    work: restoredWork(r.work ?? {}),
  };
}

/** The saved totals, so a resumed job's work stays monotonic: a lower total after a restart is still a 409. */
function restoredWork(saved: Record<string, number>): WorkTally {
  const tally = new WorkTally();
  for (const [unit, total] of Object.entries(saved)) tally.setTotal(unit, total);
  return tally;
}

/** The ledger row of a record, stamped `updated`. */
export function rowOf(job: JobRecord, updated: number): LedgerRow {
  const pids = [...job.roots];
  return {
    id: job.id,
    name: job.name,
    scheduler: job.scheduler,
    user: job.user,
    labels: job.labels,
    spec: {
      pids: pids.length ? pids : undefined,
      pidStarts: pids.length ? pids.map((pid) => job.rootStarts.get(pid) ?? -1) : undefined,
      cgroup: job.cgroup,
      gpus: job.gpus.length ? job.gpus : undefined,
      source: job.source,
      exitCode: job.exitCode,
      ownerUid: job.ownerUid,
    },
    start: job.start,
    end: job.end,
    totals: job.totals,
    work: job.work.snapshot(),
    updated,
  };
}

export function seriesLabels(id: string, name: string, user: string | undefined, scheduler: string | undefined): JobLabels {
  return Object.freeze({
    job_id: id,
    job_name: safeLabelValue(name),
    user: safeLabelValue(user ?? ''),
    scheduler: safeLabelValue(scheduler ?? ''),
  });
}

/** What a snapshot shows of a job: copies, frozen, so that the record may change after it is published. */
export function viewOf(j: JobRecord): JobView {
  const copy = (c: Component) => Object.freeze({ ...j.totals[c] });
  return Object.freeze({
    labels: j.seriesLabels,
    startMs: j.start,
    endMs: j.end,
    joules: Object.freeze({ compute: copy('compute'), transmit: copy('transmit'), store: copy('store'), cooling: copy('cooling') }),
    watts: j.end === undefined && j.watts ? Object.freeze({ ...j.watts }) : undefined,
    work: Object.freeze(j.work.snapshot()),
  });
}

/**
 * Adds an interval's share (J) to a running job's totals and sets its power (W = J / dt s). True
 * when what its view shows changed: an idle job (no energy, 0 W) keeps its snapshot view from tick
 * to tick, with no allocation (views are copies, so the record may change in place).
 */
export function addShare(job: JobRecord, share: JobShare, dt: number): boolean {
  let changed = job.watts === undefined;
  const watts = (job.watts ??= { compute: 0, transmit: 0, store: 0, cooling: 0 });
  for (const c of COMPONENTS) {
    const m = share.method[c];
    const before = job.totals[c][m];
    const after = (before ?? 0) + share.joules[c];
    if (after !== before) {
      job.totals[c][m] = after;
      changed = true;
    }
    const w = dt > 0 ? share.joules[c] / dt : 0;
    if (w !== watts[c]) {
      watts[c] = w;
      changed = true;
    }
  }
  return changed;
}
