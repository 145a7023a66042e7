import { spawn, type ChildProcess } from 'child_process';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import Database from 'better-sqlite3';
import { startServe, waitFor, type RunningExporter } from '../helpers/exporter-process';

/**
 * Issue 10 §8: the ledger under a kill -9 loop. A job measures a CPU burner; the exporter is
 * killed with SIGKILL KILLS times at arbitrary points and restarted on the same ledger. After
 * each kill: SQLite's integrity check passes, every checkpoint a reader saw before the kill is
 * still there (nothing committed is lost), the job resumes from its checkpoint and keeps counting,
 * and what the exporter served before the kill is at most one checkpoint ahead of the row.
 */

const KILLS = 3;
const CHECKPOINT_MS = 200;
const dir = mkdtempSync(join(tmpdir(), 'jouleflow-kill9-'));
const ledger = join(dir, 'jobs.db');
let burner: ChildProcess | undefined;
let exp: RunningExporter | undefined;

afterAll(async () => {
  burner?.kill('SIGKILL');
  await exp?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const serve = () => startServe([`--jobs.ledger=${ledger}`, '--sample.interval=200ms', `--jobs.checkpoint-interval=${CHECKPOINT_MS}ms`]);

/** The job's checkpointed total (J), read as another process would (read-only, WAL). */
function rowTotal(): number | undefined {
  const db = new Database(ledger, { readonly: true, fileMustExist: true });
  try {
    // Totals are JSON: component → method → joules (ledger schema 2).
    const r = db.prepare('SELECT totals FROM jobs WHERE id = ?').get('burn') as { totals: string } | undefined;
    if (!r) return undefined;
    const totals = JSON.parse(r.totals) as Record<string, Record<string, number>>;
    return Object.values(totals).reduce((a, byMethod) => a + Object.values(byMethod).reduce((b, j) => b + j, 0), 0);
  } finally {
    db.close();
  }
}

async function servedTotal(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n'))
    if (line.startsWith('jouleflow_job_energy_joules_total{') && line.includes('job_id="burn"')) sum += Number(line.split(' ').pop());
  return sum;
}

test(`kill -9 ${KILLS} times: integrity, nothing committed lost, resume, loss ≤ one checkpoint`, async () => {
  burner = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
  exp = await serve();
  const reg = await fetch(`${exp.url}/api/v1/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'burn', name: 'burn', pids: [burner.pid] }),
  });
  expect(reg.status).toBe(201);
  let lastRow = 0;
  const figures: string[] = [];
  for (let k = 0; k < KILLS; k++) {
    // Wait (bounded in time, not in polls: a loaded machine polls slowly) for four checkpoints
    // beyond the last one, recording the increments seen: on a loaded machine the burner's share
    // of the CPU and the ticks' lengths vary, so one checkpoint's size is the largest of three.
    const seen: number[] = [];
    for (const until = Date.now() + 30_000; seen.filter((v) => v > lastRow).length < 4 && Date.now() < until;) {
      const r = rowTotal();
      if (r !== undefined && r !== seen[seen.length - 1]) seen.push(r);
      await sleep(50);
    }
    const checkpoints = seen.filter((v) => v > lastRow);
    expect(checkpoints.length).toBeGreaterThanOrEqual(4);
    const step = Math.max(...checkpoints.slice(1).map((v, i) => v - checkpoints[i]));
    const served = await servedTotal(exp.url);
    const committed = rowTotal() ?? 0;
    await sleep(Math.floor(Math.random() * CHECKPOINT_MS)); // an arbitrary point within a checkpoint
    await exp.stop('SIGKILL');
    exp = undefined;

    const db = new Database(ledger, { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
    const row = rowTotal() ?? 0;
    expect(row).toBeGreaterThanOrEqual(committed); // nothing a reader saw committed is lost
    // What Prometheus was shown is at most one checkpoint (and the tick in flight) ahead of the row.
    expect(served - row).toBeLessThanOrEqual(2 * step + 1e-9);
    figures.push(`kill ${k + 1}: served − row ${(served - row).toFixed(3)} J, one checkpoint ${step.toFixed(3)} J`);

    exp = await serve();
    // Resumed from the checkpoint (no counter reset for Prometheus), and measuring again.
    const url = exp.url;
    // The job's series appear with the first tick.
    const resumed = await waitFor(
      async () => {
        const v = await servedTotal(url);
        return v > 0 ? v : undefined;
      },
      'the job series after the restart',
      30_000,
    );
    expect(resumed).toBeGreaterThanOrEqual(row - 1e-9);
    lastRow = row;
  }
  const url = exp.url;
  const later = await waitFor(
    async () => {
      const v = await servedTotal(url);
      return v > lastRow ? v : undefined;
    },
    'the resumed job to count beyond its last checkpoint',
    30_000,
  );
  expect(later).toBeGreaterThan(lastRow);
  console.log(`ledger kill -9 loop: ${figures.join('; ')}`);
}, 300_000);
