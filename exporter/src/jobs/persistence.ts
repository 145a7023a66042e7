import type { Logger } from '../util/log';
import type { Ledger, LedgerRow } from './ledger';
import { rowOf, type JobRecord } from './records';

/**
 * The registry's side of the ledger (jobs/ledger.ts): writes that never throw, periodic
 * checkpoints of running totals, pruning of old ended jobs, and the rows a restart resumes.
 * Without a ledger every call is a no-op and every lookup finds nothing.
 */

export interface PersistenceOptions {
  log: Logger;
  ledger?: Ledger;
  clock: () => number;
  /** How long ended jobs stay live (their rows are resumed for that long after a restart). */
  retentionMs: number;
  checkpointMs: number;
  /** Ended jobs older than this are pruned from the ledger (0 = never). */
  ledgerRetentionMs: number;
}

const PRUNE_EVERY_MS = 3_600_000;

export class JobPersistence {
  /** Failed ledger writes, for jouleflow_source_errors_total{source="ledger",reason="write"}. */
  writeErrors = 0;
  private lastCheckpoint = 0;
  private lastPrune = -Infinity;

  constructor(private readonly opts: PersistenceOptions) {}

  /** The ledger, for reads of ended jobs (listing, reports). */
  get ledger(): Ledger | undefined {
    return this.opts.ledger;
  }

  row(id: string): LedgerRow | undefined {
    return this.opts.ledger?.get(id);
  }

  /** Writes the jobs' rows, stamped now. */
  save(jobs: readonly JobRecord[]): void {
    if (!this.opts.ledger || jobs.length === 0) return;
    const now = this.opts.clock();
    this.write(jobs.map((j) => rowOf(j, now)));
  }

  /** After a tick: the running jobs' totals every checkpoint interval, pruning every hour. */
  maintain(now: number, running: () => JobRecord[]): void {
    const { ledger } = this.opts;
    if (!ledger) return;
    if (now - this.lastCheckpoint >= this.opts.checkpointMs) {
      this.save(running());
      this.lastCheckpoint = now;
    }
    if (this.opts.ledgerRetentionMs > 0 && now - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = now;
      const pruned = ledger.pruneEndedBefore(now - this.opts.ledgerRetentionMs);
      if (pruned > 0) this.opts.log.info('pruned ended jobs from the ledger', { rows: pruned });
    }
  }

  /** The rows a restart resumes: running jobs, and ended ones still within their retention. */
  resumable(): LedgerRow[] {
    const { ledger } = this.opts;
    if (!ledger) return [];
    return [...ledger.runningJobs(), ...ledger.endedSinceMs(this.opts.clock() - this.opts.retentionMs)];
  }

  /** A last checkpoint of the running jobs, then the ledger closes. */
  close(running: JobRecord[]): void {
    if (!this.opts.ledger) return;
    this.save(running);
    this.opts.ledger.close();
  }

  /**
   * A failing write (disk full, I/O error) is logged and counted, never thrown: a job must still
   * end, its waiters get their report, and the next checkpoint retries.
   */
  private write(rows: LedgerRow[]): void {
    try {
      this.opts.ledger?.save(rows);
    } catch (err) {
      this.writeErrors++;
      this.opts.log.warn('writing the jobs ledger failed', { err: (err as Error).message });
    }
  }
}
