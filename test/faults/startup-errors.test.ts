import { spawnSync } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import Database from 'better-sqlite3';
import { Ledger } from '../../exporter/src/jobs/ledger';
import { ensureBuilt, MAIN, startServe } from '../helpers/exporter-process';

/**
 * Issue 10 §5, start-up errors: a configuration problem exits 2 naming the flag (never a hang,
 * never an anonymous stack); a corrupt ledger row is skipped with a warning naming file and row.
 */

const dir = mkdtempSync(join(tmpdir(), 'jouleflow-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function serveExit(args: string[]): { status: number | null; stderr: string } {
  ensureBuilt();
  // Bounded: a hang would be killed at 30 s and fail the status check.
  const r = spawnSync(process.execPath, [MAIN, 'serve', '--web.listen-address=127.0.0.1:0', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: r.status, stderr: r.stderr };
}

test('token file missing or empty: exit 2 naming --web.jobs-token-file', () => {
  const missing = serveExit(['--jobs.ledger=', `--web.jobs-token-file=${join(dir, 'nope')}`]);
  expect(missing.status).toBe(2);
  expect(missing.stderr).toMatch(/--web\.jobs-token-file.*cannot read .*nope: ENOENT/);
  const empty = join(dir, 'empty-token');
  writeFileSync(empty, '\n');
  const r = serveExit(['--jobs.ledger=', `--web.jobs-token-file=${empty}`]);
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/--web\.jobs-token-file.*is empty/);
});

test('the CLI reads its token the same way: --token-file missing or empty exits 2 naming --token-file', () => {
  ensureBuilt();
  const empty = join(dir, 'empty-cli-token');
  writeFileSync(empty, ' \n');
  for (const [file, why] of [
    [join(dir, 'nope'), /--token-file: cannot read .*nope: ENOENT/],
    [empty, /--token-file: .*empty-cli-token is empty/],
  ] as const) {
    // The exporter URL is never asked: the token is read first (port 9 on loopback, in case it were).
    const r = spawnSync(process.execPath, [MAIN, 'jobs', 'ls', '--exporter.url=http://127.0.0.1:9', `--token-file=${file}`], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(why);
  }
});

test('a ledger under /proc: exit 2 naming --jobs.ledger, not a hang', () => {
  const r = serveExit(['--jobs.ledger=/proc/self/jouleflow/jobs.db']);
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/--jobs\.ledger.*is on procfs/);
});

test('a corrupt ledger row is skipped with a warning naming the file and the row; the others resume', async () => {
  const file = join(dir, 'jobs.db');
  const ledger = new Ledger(file);
  const row = (id: string) => ({
    id,
    name: id,
    scheduler: 'api',
    labels: {},
    spec: {},
    start: Date.now() - 60_000,
    end: Date.now() - 1000,
    totals: { compute: 5, transmit: 0, store: 0, cooling: 0 },
    updated: Date.now() - 1000,
  });
  ledger.save([row('good-job'), row('torn-job')] as never);
  ledger.close();
  const db = new Database(file);
  db.prepare("UPDATE jobs SET labels = '{not json' WHERE id = 'torn-job'").run();
  db.close();
  const exp = await startServe([`--jobs.ledger=${file}`]);
  try {
    const res = await fetch(`${exp.url}/api/v1/jobs`);
    expect(res.status).toBe(200);
    const body = await res.text();
    expect(body).toContain('good-job');
    expect(body).not.toContain('torn-job');
    expect(exp.logs()).toMatch(new RegExp(`ledger row does not decode; skipped.*ledger=${file.replace(/[.]/g, '\\.')}.*row=torn-job`));
  } finally {
    await exp.stop();
  }
});
