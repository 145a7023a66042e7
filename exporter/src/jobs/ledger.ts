import * as fs from 'fs';
import * as path from 'path';
import Database from 'better-sqlite3';
import type { Component } from '../sources/types';
import { COMPONENTS } from '../sources/types';

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
  spec: { pids?: number[]; pidStarts?: number[]; cgroup?: string; gpus?: string[]; source: string; ownerUid?: number };
  /** Milliseconds since the epoch. */
  start: number;
  end?: number;
  totals: Totals;
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
  updated_ms: number;
}

export class Ledger {
  private readonly db: Database.Database;
  private readonly upsert: Database.Statement;
  private readonly byId: Database.Statement;
  private readonly running: Database.Statement;
  private readonly recent: Database.Statement;
  private readonly endedSince: Database.Statement;
  private readonly upsertMany: (rows: LedgerRow[]) => void;

  constructor(readonly file: string) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 2000');
    this.db.exec(`CREATE TABLE IF NOT EXISTS jobs (
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
    CREATE INDEX IF NOT EXISTS jobs_end ON jobs(end_ms);`);
    this.upsert = this.db.prepare(`INSERT INTO jobs (id, name, scheduler, user, labels, spec, start_ms, end_ms,
        compute_j, transmit_j, store_j, cooling_j, totals, updated_ms)
      VALUES (@id, @name, @scheduler, @user, @labels, @spec, @start_ms, @end_ms,
        @compute_j, @transmit_j, @store_j, @cooling_j, @totals, @updated_ms)
      ON CONFLICT(id) DO UPDATE SET name = excluded.name, scheduler = excluded.scheduler, user = excluded.user,
        labels = excluded.labels, spec = excluded.spec, start_ms = excluded.start_ms, end_ms = excluded.end_ms,
        compute_j = excluded.compute_j, transmit_j = excluded.transmit_j, store_j = excluded.store_j,
        cooling_j = excluded.cooling_j, totals = excluded.totals, updated_ms = excluded.updated_ms`);
    this.byId = this.db.prepare('SELECT * FROM jobs WHERE id = ?');
    this.running = this.db.prepare('SELECT * FROM jobs WHERE end_ms IS NULL');
    this.recent = this.db.prepare('SELECT * FROM jobs ORDER BY start_ms DESC LIMIT ?');
    this.endedSince = this.db.prepare('SELECT * FROM jobs WHERE end_ms IS NOT NULL AND end_ms >= ?');
    this.upsertMany = this.db.transaction((rows: LedgerRow[]) => {
      for (const r of rows) this.upsert.run(toRaw(r));
    });
  }

  save(rows: LedgerRow[]): void {
    if (rows.length) this.upsertMany(rows);
  }

  get(id: string): LedgerRow | undefined {
    const r = this.byId.get(id) as RawRow | undefined;
    return r ? fromRaw(r) : undefined;
  }

  runningJobs(): LedgerRow[] {
    return (this.running.all() as RawRow[]).map(fromRaw);
  }

  endedSinceMs(ms: number): LedgerRow[] {
    return (this.endedSince.all(ms) as RawRow[]).map(fromRaw);
  }

  list(limit: number): LedgerRow[] {
    return (this.recent.all(limit) as RawRow[]).map(fromRaw);
  }

  close(): void {
    this.db.close();
  }
}

function toRaw(r: LedgerRow): Record<string, unknown> {
  const flat = Object.fromEntries(COMPONENTS.map((c) => [`${c}_j`, componentJoules(r.totals, c)]));
  return {
    id: r.id,
    name: r.name,
    scheduler: r.scheduler,
    user: r.user ?? null,
    labels: JSON.stringify(r.labels),
    spec: JSON.stringify(r.spec),
    start_ms: r.start,
    end_ms: r.end ?? null,
    ...flat,
    totals: JSON.stringify(r.totals),
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
    updated: r.updated_ms,
  };
}
