import { spawn } from 'child_process';
import { existsSync, readFileSync } from 'fs';
import * as path from 'path';
import { createServer, type Server } from 'http';
import type { AddressInfo } from 'net';
import { buildReport } from '../../exporter/src/jobs/report';
import { emptyTotals } from '../../exporter/src/jobs/ledger';
import { applyWorkBody, WorkTally } from '../../exporter/src/jobs/work';
import { ensureBuilt, MAIN } from '../helpers/exporter-process';
import { freePort } from '../prometheus/lib';

/**
 * `jouleflow run` with a command that reports its work through JOULEFLOW_WORK_FILE: forwarded to
 * an exporter (a local HTTP server implementing the documented job API contract, which pins the
 * exporter's energy so the figures are exact; work-exporter.test.ts runs the real exporter) and
 * measured in-process; the report's energy per unit is checked against figures computed here.
 */

interface WorkEntry {
  unit: string;
  total: number;
  joulesPerUnit: Record<string, number>;
  perMillion: { kwh: number; gramsCo2?: number; cost?: number; currency?: string };
}
interface RunJson {
  id: string;
  energy: Record<string, { joules: number }>;
  total: { joules: number };
  work: WorkEntry[];
}

/** The exporter's job API as documented: register (201), work (200/400/404/409), end (200 + report). */
function fakeExporterApi() {
  const log: string[] = [];
  const tally = new WorkTally();
  const totals = emptyTotals();
  totals.compute.measured = 1000;
  totals.transmit.estimated = 40;
  totals.cooling.estimated = 560;
  const srv: Server = createServer((req, res) => {
    let text = '';
    req.on('data', (d: Buffer) => (text += d.toString()));
    req.on('end', () => {
      const send = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      const route = `${req.method} ${req.url}`;
      log.push(route);
      if (route === 'GET /api/v1/jobs') return send(200, { jobs: [] });
      if (route === 'POST /api/v1/jobs') return send(201, { id: 'job-w1' });
      if (route === 'POST /api/v1/jobs/job-w1/work') {
        const r = applyWorkBody(tally, JSON.parse(text));
        return send(r.status, r.body);
      }
      if (route === 'POST /api/v1/jobs/job-w1/end') {
        const row = {
          id: 'job-w1',
          name: 'w',
          scheduler: 'jouleflow-run',
          labels: {},
          spec: { source: 'api' },
          start: 0,
          end: 10_000,
          totals,
          updated: 10_000,
        };
        return send(200, buildReport(row, false, 10_000, { zone: 'FR', gramsPerKwh: 56 }));
      }
      return send(404, { error: 'no such route' });
    });
  });
  return {
    log,
    tally,
    listen: () =>
      new Promise<string>((r) => srv.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`))),
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The README's examples (section "Energy per unit of work"), run as written. */
function readmeExample(lang: 'python' | 'sh'): string {
  const readme = readFileSync(path.join(__dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Energy per unit of work'));
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
  if (!m) throw new Error(`no ${lang} example in the README section`);
  return m[1];
}

// The README's shell example, then a refused line, a last line without a newline, and the file's path.
const SHELL_TRAINER = [
  readmeExample('sh'),
  'echo "steps 5" >> "$JOULEFLOW_WORK_FILE"',
  'echo "bogus line" >> "$JOULEFLOW_WORK_FILE"',
  'printf "samples 80" >> "$JOULEFLOW_WORK_FILE"',
  'echo "$JOULEFLOW_WORK_FILE" >&2',
].join('\n');

beforeAll(() => ensureBuilt());

test('with an exporter: every total reaches POST /jobs/{id}/work before the job ends; the report has J per unit', async () => {
  const api = fakeExporterApi();
  const base = await api.listen();
  try {
    const r = await run(['--json', '--price-per-kwh', '0.2', '--currency', 'EUR', '--exporter.url', base, '--', 'sh', '-c', SHELL_TRAINER]);
    expect(r.code).toBe(0);
    expect(api.tally.snapshot()).toEqual({ tokens: 49152, steps: 5, samples: 80 });
    const end = api.log.indexOf('POST /api/v1/jobs/job-w1/end');
    expect(end).toBeGreaterThan(api.log.lastIndexOf('POST /api/v1/jobs/job-w1/work'));
    expect(r.stderr).toMatch(/JOULEFLOW_WORK_FILE line 5 ignored .*"bogus line"/);
    const workFile = /^(\/\S+jouleflow-work-\S+)$/m.exec(r.stderr)?.[1];
    expect(workFile).toBeDefined();
    expect(existsSync(workFile as string)).toBe(false); // removed at the end
    const report = JSON.parse(r.stdout) as RunJson;
    const tokens = report.work.find((w) => w.unit === 'tokens') as WorkEntry;
    expect(tokens.total).toBe(49152);
    expect(tokens.joulesPerUnit.compute).toBeCloseTo(1000 / 49152, 12);
    expect(tokens.joulesPerUnit.transmit).toBeCloseTo(40 / 49152, 12);
    expect(tokens.joulesPerUnit.cooling).toBeCloseTo(560 / 49152, 12);
    expect(tokens.joulesPerUnit.total).toBeCloseTo(1600 / 49152, 12);
    const kwh = ((1600 / 49152) * 1e6) / 3.6e6;
    expect(tokens.perMillion.kwh).toBeCloseTo(kwh, 12);
    expect(tokens.perMillion.gramsCo2).toBeCloseTo(kwh * 56, 10);
    expect(tokens.perMillion.cost).toBeCloseTo(kwh * 0.2, 12);
    expect(tokens.perMillion.currency).toBe('EUR');
    expect((report.work.find((w) => w.unit === 'steps') as WorkEntry).joulesPerUnit.total).toBeCloseTo(1600 / 5, 9);
  } finally {
    await api.close();
  }
});

test('in-process: a Python trainer writes its tokens; the JSON report shows J per token from the job energy', async () => {
  const nobody = `http://127.0.0.1:${await freePort()}`;
  const py = readmeExample('python');
  const r = await run(['--json', '--sample.interval=100ms', '--jobs.ledger=', '--exporter.url', nobody, '--', 'python3', '-c', py]);
  expect(r.code).toBe(0);
  const report = JSON.parse(r.stdout) as RunJson;
  const tokens = report.work.find((w) => w.unit === 'tokens') as WorkEntry;
  expect(tokens.total).toBe(5554176); // 339 steps of 16 × 1024 tokens
  for (const c of ['compute', 'transmit', 'store', 'cooling']) {
    expect(tokens.joulesPerUnit[c]).toBeCloseTo(report.energy[c].joules / 5554176, 15);
  }
  expect(tokens.joulesPerUnit.total).toBeCloseTo(report.total.joules / 5554176, 15);
});

test('the text report (stderr) gains the work lines', async () => {
  const nobody = `http://127.0.0.1:${await freePort()}`;
  const r = await run(['--jobs.ledger=', '--exporter.url', nobody, '--', 'sh', '-c', 'echo "steps 3" >> "$JOULEFLOW_WORK_FILE"']);
  expect(r.code).toBe(0);
  expect(r.stderr).toMatch(/^ {2}work {9}3 steps$/m);
  expect(r.stderr).toMatch(/^ {4}total +\S+ [kmµn]?J\/step$/m);
  expect(r.stderr).toMatch(/^ {4}per million steps: \S+ kWh$/m);
});

test('a bad --price-per-kwh stops with exit 2 naming the flag', async () => {
  const r = await run(['--price-per-kwh', 'cheap', '--', 'true']);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/--price-per-kwh/);
});
