import * as fs from 'fs';
import * as path from 'path';
import Database from 'better-sqlite3';
import type { Component } from '../core';
import { ConfigError } from '../config';
import type { Logger } from '../util/log';

/**
 * The jobs ledger: one SQLite row per job with its per-component totals (better-sqlite3, WAL).
 * Running jobs are checkpointed every few seconds and at their end; a restarted exporter (even
 * after kill -9: committed WAL transactions survive a process crash) serves finished jobs from
 * here and resumes running ones from their checkpoint.
 */

/** Joules per component and per method (measured / estimated). */
export type Totals = Record<Component, Record<string, number>>;

export interface LedgerRow {
  id: string;
  name: string;
  scheduler: string;
  user?: string;
  labels: Record<string, string>;
  /** What defines the job's processes: pids, cgroup, gpus, source. */
  spec: { pids?: number[]; pidStarts?: number[]; cgroup?: string; gpus?: string[]; source: string; exitCode?: number; ownerUid?: number };
  /** Milliseconds since the epoch. */
  start: number;
  end?: number;
  totals: Totals;
  /** Work totals per unit the job reported (issue 15); monotonic, restored on resume. */
  work?: Record<string, number>;
  /** When the row was last written (ms since the epoch). */
  updated: number;
}

export function emptyTotals(): Totals {
  return { compute: {}, transmit: {}, store: {}, cooling: {} };
}

export function componentJoules(t: Totals, c: Component): number {
  return Object.values(t[c]).reduce((a, b) => a + b, 0);
}

interface RawRow {
  id: string;
  name: string;
  scheduler: string;
  user: string | null;
  labels: string;
  spec: string;
  start_ms: number;
  end_ms: number | null;
  totals: string;
  work: string;
  updated_ms: number;
}

export class Ledger {
  private readonly db: Database.Database;
  private readonly upsert: Database.Statement;
  private readonly byId: Database.Statement;
  private readonly running: Database.Statement;
  private readonly recent: Database.Statement;
  private readonly endedSince: Database.Statement;
  private readonly firstPage: Database.Statement;
  private readonly nextPage: Database.Statement;
  private readonly prune: Database.Statement;
  private readonly upsertMany: (rows: LedgerRow[]) => void;

  /** `log`: where a corrupt row is reported (it is skipped, never fatal). */
  constructor(
    readonly file: string,
    private readonly log?: Logger,
  ) {
    if (file !== ':memory:') refusePseudoFs(file);
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 2000');
    migrate(this.db);
    this.upsert = this.db.prepare(`INSERT INTO jobs (id, name, scheduler, user, labels, spec, start_ms, end_ms, totals, work, updated_ms)
      VALUES (@id, @name, @scheduler, @user, @labels, @spec, @start_ms, @end_ms, @totals, @work, @updated_ms)
      ON CONFLICT(id) DO UPDATE SET name = excluded.name, scheduler = excluded.scheduler, user = excluded.user,
        labels = excluded.labels, spec = excluded.spec, start_ms = excluded.start_ms, end_ms = excluded.end_ms,
        totals = excluded.totals, work = excluded.work, updated_ms = excluded.updated_ms`);
    this.byId = this.db.prepare('SELECT * FROM jobs WHERE id = ?');
    this.running = this.db.prepare('SELECT * FROM jobs WHERE end_ms IS NULL');
    this.recent = this.db.prepare('SELECT * FROM jobs ORDER BY start_ms DESC LIMIT ?');
    this.endedSince = this.db.prepare('SELECT * FROM jobs WHERE end_ms IS NOT NULL AND end_ms >= ?');
    this.firstPage = this.db.prepare('SELECT * FROM jobs ORDER BY start_ms, id LIMIT ?');
    this.nextPage = this.db.prepare('SELECT * FROM jobs WHERE (start_ms, id) > (?, ?) ORDER BY start_ms, id LIMIT ?');
    this.prune = this.db.prepare('DELETE FROM jobs WHERE end_ms IS NOT NULL AND end_ms < ?');
    this.upsertMany = this.db.transaction((rows: LedgerRow[]) => {
      for (const r of rows) this.upsert.run(toRaw(r));
    });
  }

  save(rows: LedgerRow[]): void {
    if (rows.length) this.upsertMany(rows);
  }

  get(id: string): LedgerRow | undefined {
    const r = this.byId.get(id) as RawRow | undefined;
    return r ? this.decode([r])[0] : undefined;
  }

  runningJobs(): LedgerRow[] {
    return this.decode(this.running.all() as RawRow[]);
  }

  endedSinceMs(ms: number): LedgerRow[] {
    return this.decode(this.endedSince.all(ms) as RawRow[]);
  }

  list(limit: number): LedgerRow[] {
    return this.decode(this.recent.all(limit) as RawRow[]);
  }

  /** Up to `limit` rows ordered by (start, id), after the given key. */
  page(after: { start: number; id: string } | undefined, limit: number): LedgerRow[] {
    const rows = after ? this.nextPage.all(after.start, after.id, limit) : this.firstPage.all(limit);
    return this.decode(rows as RawRow[]);
  }

  /** Deletes jobs that ended before `ms`; returns how many. */
  pruneEndedBefore(ms: number): number {
    return this.prune.run(ms).changes;
  }

  close(): void {
    this.db.close();
  }

  /** Rows that do not decode (hand-edited, torn by a foreign writer) are skipped with a warning naming the file and row. */
  private decode(rows: RawRow[]): LedgerRow[] {
    const out: LedgerRow[] = [];
    for (const r of rows) {
      try {
        out.push(fromRaw(r));
      } catch (err) {
        this.log?.warn('ledger row does not decode; skipped', { ledger: this.file, row: String(r.id), err: (err as Error).message });
      }
    }
    return out;
  }
}

/**
 * procfs and sysfs accept no database (SQLite blocks forever on their locks): a ledger there is a
 * configuration error, reported at start-up.
 */
function refusePseudoFs(file: string): void {
  const PSEUDO: Record<number, string> = { 0x9fa0: 'procfs', 0x62656572: 'sysfs' };
  let dir = path.dirname(path.resolve(file));
  for (;;) {
    try {
      const kind = PSEUDO[fs.statfsSync(dir).type];
      if (kind) throw new ConfigError(`jobs.ledger (--jobs.ledger): ${file} is on ${kind}, which cannot hold a database`);
      return;
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      const up = path.dirname(dir);
      if (up === dir) return;
      dir = up; // not created yet: judge the nearest existing ancestor
    }
  }
}

/**
 * Schema versions, applied in order and recorded in `PRAGMA user_version`: a ledger written by
 * an older exporter is upgraded in place, one written by a newer one is refused.
 */
const MIGRATIONS: string[] = [
  // 1: one row per job, totals as JSON per component and method (plus flat columns, until 2).
  `CREATE TABLE IF NOT EXISTS jobs (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      scheduler TEXT NOT NULL,
      user TEXT,
      labels TEXT NOT NULL,
      spec TEXT NOT NULL,
      start_ms REAL NOT NULL,
      end_ms REAL,
      compute_j REAL NOT NULL DEFAULT 0,
      transmit_j REAL NOT NULL DEFAULT 0,
      store_j REAL NOT NULL DEFAULT 0,
      cooling_j REAL NOT NULL DEFAULT 0,
      totals TEXT NOT NULL,
      updated_ms REAL NOT NULL
    );
    CREATE INDEX IF NOT EXISTS jobs_end ON jobs(end_ms);`,
  // 2: one representation of totals (the JSON); paging by (start, id).
  `ALTER TABLE jobs DROP COLUMN compute_j;
    ALTER TABLE jobs DROP COLUMN transmit_j;
    ALTER TABLE jobs DROP COLUMN store_j;
    ALTER TABLE jobs DROP COLUMN cooling_j;
    CREATE INDEX IF NOT EXISTS jobs_start ON jobs(start_ms, id);`,
  // 3: work totals per unit as JSON (issue 15); rows written before it reported no work.
  `ALTER TABLE jobs ADD COLUMN work TEXT NOT NULL DEFAULT '{}';`,
];

export const LEDGER_SCHEMA_VERSION = MIGRATIONS.length;

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new Error(`ledger schema version ${version} is newer than this exporter's (${MIGRATIONS.length}); use a newer jouleflow`);
  }
  db.transaction(() => {
    for (let v = version; v < MIGRATIONS.length; v++) db.exec(MIGRATIONS[v]);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
  })();
}

function toRaw(r: LedgerRow): Record<string, unknown> {
  return {
    id: r.id,
    name: r.name,
    scheduler: r.scheduler,
    user: r.user ?? null,
    labels: JSON.stringify(r.labels),
    spec: JSON.stringify(r.spec),
    start_ms: r.start,
    end_ms: r.end ?? null,
    totals: JSON.stringify(r.totals),
    work: JSON.stringify(r.work ?? {}),
    updated_ms: r.updated,
  };
}

function fromRaw(r: RawRow): LedgerRow {
  return {
    id: r.id,
    name: r.name,
    scheduler: r.scheduler,
    user: r.user ?? undefined,
    labels: JSON.parse(r.labels) as Record<string, string>,
    spec: JSON.parse(r.spec) as LedgerRow['spec'],
    start: r.start_ms,
    end: r.end_ms ?? undefined,
    totals: { ...emptyTotals(), ...(JSON.parse(r.totals) as Partial<Totals>) },
    work: JSON.parse(r.work) as Record<string, number>,
    updated: r.updated_ms,
  };
}
