import { spawn, type ChildProcess } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { MAIN, ensureBuilt, parseExposition, startServe, waitFor, type RunningExporter } from '../helpers/exporter-process';

/**
 * Energy per unit of work through the built exporter (issue 15): `jouleflow run` forwarding a
 * script's JOULEFLOW_WORK_FILE lines to POST /api/v1/jobs/{id}/work, then the same totals in
 * `jouleflow jobs show`, the run report and /metrics; the endpoint's auth, validation and
 * monotonicity, also across a restart that resumes the job from the ledger.
 */

jest.setTimeout(120_000);

interface UnitJson {
  unit: string;
  total: number;
  joulesPerUnit: Record<string, number>;
}
interface ReportJson {
  id: string;
  state: string;
  total: { joules: number };
  energy: Record<string, { joules: number }>;
  work: UnitJson[];
}

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function post(url: string, body: unknown, token?: string): Promise<{ status: number; body: { error?: string } }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as { error?: string } };
}

/** The value of one series on /metrics once it is there. */
function metric(ex: RunningExporter, series: string, expected?: number): Promise<number> {
  return waitFor(async () => {
    const v = parseExposition(await (await fetch(`${ex.url}/metrics`)).text()).get(series);
    return v !== undefined && (expected === undefined || v === expected) ? v : undefined;
  }, `${series} on /metrics`);
}

let dir: string;
const exporters: RunningExporter[] = [];
const children: ChildProcess[] = [];

beforeAll(() => ensureBuilt());
beforeEach(() => (dir = mkdtempSync(path.join(tmpdir(), 'jf-work-'))));
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const e of exporters.splice(0)) await e.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('jouleflow run: a script writes tokens to $JOULEFLOW_WORK_FILE; jobs show, the run report and /metrics show the work', async () => {
  const ex = await startServe([`--jobs.ledger=${path.join(dir, 'jobs.db')}`, '--sample.interval=200ms']);
  exporters.push(ex);
  const script = 'echo "tokens 4096" >> "$JOULEFLOW_WORK_FILE"; sleep 0.5; echo "tokens 12288" >> "$JOULEFLOW_WORK_FILE"';
  const run = await cli(['run', '--json', '--exporter.url', ex.url, '--', 'sh', '-c', script]);
  expect(run.code).toBe(0);
  const report = JSON.parse(run.stdout) as ReportJson;
  const tokens = report.work.find((w) => w.unit === 'tokens');
  expect(tokens?.total).toBe(12288);
  expect(tokens?.joulesPerUnit.total).toBeCloseTo(report.total.joules / 12288, 12);

  // The exporter holds the same total: its report (GET /jobs/:id, as `jobs show` reads it) prices it.
  const shown = await cli(['jobs', 'show', report.id, '--json', '--exporter.url', ex.url]);
  expect(shown.code).toBe(0);
  const stored = JSON.parse(shown.stdout) as ReportJson;
  expect(stored.state).toBe('ended');
  expect(stored.work.map((w) => [w.unit, w.total])).toEqual([['tokens', 12288]]);
  for (const c of ['compute', 'transmit', 'store', 'cooling']) {
    expect(stored.work[0].joulesPerUnit[c]).toBeCloseTo(stored.energy[c].joules / 12288, 12);
  }
  const text = await cli(['jobs', 'show', report.id, '--exporter.url', ex.url]);
  expect(text.stdout).toMatch(/^ {2}work {9}12288 tokens$/m);
  expect(text.stdout).toMatch(/^ {4}per million tokens: \S+ kWh/m);

  expect(await metric(ex, `jouleflow_job_work_total{job_id="${report.id}",unit="tokens"}`)).toBe(12288);
  const page = await (await fetch(`${ex.url}/metrics`)).text();
  expect(page).toMatch(/^# HELP jouleflow_job_work_total \S.*$/m);
  expect(page).toMatch(/^# TYPE jouleflow_job_work_total counter$/m);

  // An ended job takes no more work; an unknown one is a 404 about the job.
  const late = await post(`${ex.url}/api/v1/jobs/${report.id}/work`, { unit: 'tokens', total: 20000 });
  expect(late.status).toBe(409);
  expect(late.body.error).toMatch(/ended/);
  const unknown = await post(`${ex.url}/api/v1/jobs/no-such-job/work`, { unit: 'tokens', total: 1 });
  expect(unknown.status).toBe(404);
  expect(unknown.body.error).toMatch(/no job "no-such-job"/);
});

test('POST /jobs/:id/work: bearer token, 400 on a bad body, 409 on a lower total, still monotonic after a restart', async () => {
  const ledger = path.join(dir, 'jobs.db');
  const tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, 's3cret\n', { mode: 0o600 });
  const flags = [`--jobs.ledger=${ledger}`, `--web.jobs-token-file=${tokenFile}`, '--sample.interval=200ms'];
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.push(sleeper);
  let ex = await startServe(flags);
  exporters.push(ex);
  const jobs = `${ex.url}/api/v1/jobs`;
  expect((await post(jobs, { id: 'w1', name: 'trainer', pids: [sleeper.pid] }, 's3cret')).status).toBe(201);

  // A wrong token is refused (who may report work without one: web/job-access.ts, test/web).
  expect((await post(`${jobs}/w1/work`, { unit: 'tokens', total: 100 }, 'wrong')).status).toBe(401);
  const bad = await post(`${jobs}/w1/work`, { unit: 'Tokens!', total: 1.5 }, 's3cret');
  expect(bad.status).toBe(400);
  expect(bad.body.error).toMatch(/unit/);
  expect(bad.body.error).toMatch(/total/);
  expect((await post(`${jobs}/w1/work`, { unit: 'tokens', total: 100 }, 's3cret')).status).toBe(200);
  expect((await post(`${jobs}/w1/work`, { unit: 'tokens', total: 100 }, 's3cret')).status).toBe(200);
  const lower = await post(`${jobs}/w1/work`, { unit: 'tokens', total: 99 }, 's3cret');
  expect(lower.status).toBe(409);
  expect(lower.body.error).toMatch(/lower than the 100/);
  expect(await metric(ex, 'jouleflow_job_work_total{job_id="w1",unit="tokens"}', 100)).toBe(100);

  // A graceful stop checkpoints the ledger; the restarted exporter resumes the running job with its work.
  expect(await ex.stop()).toBe(0);
  ex = await startServe(flags);
  exporters.push(ex);
  const again = `${ex.url}/api/v1/jobs`;
  expect((await post(`${again}/w1/work`, { unit: 'tokens', total: 50 }, 's3cret')).status).toBe(409);
  expect((await post(`${again}/w1/work`, { unit: 'tokens', total: 150 }, 's3cret')).status).toBe(200);
  expect(await metric(ex, 'jouleflow_job_work_total{job_id="w1",unit="tokens"}', 150)).toBe(150);
  const shown = (await (await fetch(`${again}/w1`)).json()) as ReportJson;
  expect(shown.work.map((w) => [w.unit, w.total])).toEqual([['tokens', 150]]);
});
