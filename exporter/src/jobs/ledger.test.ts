import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import Database from 'better-sqlite3';
import { LEDGER_SCHEMA_VERSION, Ledger, emptyTotals, type LedgerRow } from './ledger';

function row(id: string, start: number, end?: number): LedgerRow {
  const totals = emptyTotals();
  totals.compute.measured = 100;
  totals.transmit.estimated = 2.5;
  return { id, name: id, scheduler: 'api', labels: {}, spec: { source: 'api' }, start, end, totals, updated: end ?? start };
}

describe('ledger', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-ledger-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('upgrades a version-1 ledger (totals as JSON and as columns) in place, keeping every row', () => {
    const file = path.join(dir, 'jobs.db');
    const old = new Database(file);
    old.exec(`CREATE TABLE jobs (id TEXT PRIMARY KEY, name TEXT NOT NULL, scheduler TEXT NOT NULL, user TEXT,
      labels TEXT NOT NULL, spec TEXT NOT NULL, start_ms REAL NOT NULL, end_ms REAL,
      compute_j REAL NOT NULL DEFAULT 0, transmit_j REAL NOT NULL DEFAULT 0, store_j REAL NOT NULL DEFAULT 0,
      cooling_j REAL NOT NULL DEFAULT 0, totals TEXT NOT NULL, updated_ms REAL NOT NULL)`);
    old
      .prepare(`INSERT INTO jobs VALUES ('old', 'n', 'api', NULL, '{}', '{"source":"api"}', 1000, 2000, 7, 0, 0, 0, ?, 2000)`)
      .run(JSON.stringify({ compute: { measured: 7 } }));
    old.close();
    const ledger = new Ledger(file);
    expect(ledger.get('old')?.totals.compute).toEqual({ measured: 7 });
    ledger.save([row('new', 3000)]);
    ledger.close();
    const db = new Database(file);
    expect(db.pragma('user_version', { simple: true })).toBe(LEDGER_SCHEMA_VERSION);
    const columns = (db.prepare('PRAGMA table_info(jobs)').all() as Array<{ name: string }>).map((c) => c.name);
    expect(columns).not.toContain('compute_j');
    db.close();
  });

  it('keeps work totals per unit; rows from a version-2 ledger (before work) read as no work', () => {
    const file = path.join(dir, 'jobs.db');
    const v2 = new Ledger(file);
    v2.save([row('before', 1000)]);
    v2.close();
    const db = new Database(file);
    db.exec('ALTER TABLE jobs DROP COLUMN work');
    db.pragma('user_version = 2');
    db.close();
    const ledger = new Ledger(file);
    expect(ledger.get('before')?.work).toEqual({});
    ledger.save([{ ...row('after', 2000), work: { tokens: 5554176, steps: 339 } }]);
    expect(ledger.get('after')?.work).toEqual({ tokens: 5554176, steps: 339 });
    ledger.close();
  });

  it('refuses a ledger written by a newer exporter', () => {
    const file = path.join(dir, 'jobs.db');
    const db = new Database(file);
    db.pragma(`user_version = ${LEDGER_SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => new Ledger(file)).toThrow(/newer than this exporter/);
  });

  it('pages by (start, id) and prunes ended jobs older than the retention, never running ones', () => {
    const ledger = new Ledger(':memory:');
    ledger.save([row('a', 1000, 1500), row('b', 2000, 9000), row('c', 2000), row('d', 500)]);
    const first = ledger.page(undefined, 2).map((r) => r.id);
    const second = ledger.page({ start: 1000, id: 'a' }, 10).map((r) => r.id);
    expect(first).toEqual(['d', 'a']);
    expect(second).toEqual(['b', 'c']);
    expect(ledger.pruneEndedBefore(5000)).toBe(1);
    expect(ledger.get('a')).toBeUndefined();
    expect(ledger.get('d')?.end).toBeUndefined();
    expect(ledger.get('b')?.totals.transmit).toEqual({ estimated: 2.5 });
    ledger.close();
  });
});
