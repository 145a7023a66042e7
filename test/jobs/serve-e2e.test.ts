import { execFileSync, spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { AddressInfo } from 'net';
import Database from 'better-sqlite3';
import { freePort } from '../helpers/free-port';

/**
 * End to end with the built exporter (`node exporter/dist/main.js`): the ledger survives kill -9
 * (finished jobs served, running jobs resumed from their checkpoint), and `jouleflow run`'s report
 * equals the job's ledger row and its counters on /metrics.
 */

const ROOT = path.resolve(__dirname, '../..');
const MAIN = path.join(ROOT, 'exporter/dist/main.js');
const COMPONENTS = ['compute', 'transmit', 'store', 'cooling'];

jest.setTimeout(120_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Serve {
  proc: ChildProcess;
  url: string;
  log: string[];
}

/**
 * Starts `jouleflow serve` on a port the kernel picks when it binds (a port picked before and
 * bound seconds later, as a loaded machine starts the exporter, can be taken meanwhile) and waits
 * until it serves its first tick.
 */
async function startServe(ledger: string): Promise<Serve> {
  const log: string[] = [];
  const proc = spawn(
    process.execPath,
    [
      MAIN,
      'serve',
      '--web.listen-address=127.0.0.1:0',
      `--jobs.ledger=${ledger}`,
      '--sample.interval=200ms',
      '--jobs.checkpoint-interval=200ms',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  proc.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
  // Bounded in time, not in polls: start-up (and each poll) is slow on a loaded machine.
  for (const until = Date.now() + 30_000; Date.now() < until;) {
    const url = /url=(http:\/\/[^\s/]+)/.exec(log.join(''))?.[1];
    if (url) {
      const r = await fetch(`${url}/healthz`).catch(() => undefined);
      if (r?.status === 200) return { proc, url, log };
    }
    if (proc.exitCode !== null) break;
    await sleep(100);
  }
  throw new Error(`exporter did not start: ${log.join('')}`);
}

async function stop(p: ChildProcess, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const done = new Promise((r) => p.once('exit', r));
  p.kill(sig);
  await done;
}

async function jobCounters(url: string, id: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^jouleflow_job_energy_joules_total\{job_id="([^"]*)",component="(\w+)",method="(\w+)"\} (\S+)$/.exec(line);
    if (m && m[1] === id) out[m[2]] = (out[m[2]] ?? 0) + Number(m[4]);
  }
  return out;
}

/** A ledger row as stored, with each component's joules summed from its totals (`compute_j`...). */
function ledgerRow(file: string, id: string): Record<string, number | string | null> | undefined {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare('SELECT * FROM jobs WHERE id = ?').get(id) as Record<string, number | string | null> | undefined;
    if (!row) return undefined;
    const totals = JSON.parse(String(row.totals)) as Record<string, Record<string, number>>;
    for (const c of COMPONENTS) row[`${c}_j`] = Object.values(totals[c] ?? {}).reduce((a, v) => a + v, 0);
    return row;
  } finally {
    db.close();
  }
}

async function post(url: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

type Report = { id: string; state: string; durationSeconds: number; total: { joules: number }; energy: Record<string, { joules: number }> };

let tmp: string;
const owned: ChildProcess[] = [];

beforeAll(() => {
  // Build the exporter (tsc emits even when an unrelated file in the tree has type errors).
  try {
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'exporter')], {
      stdio: 'pipe',
    });
  } catch {
    // checked below
  }
  if (!fs.existsSync(MAIN) || !fs.existsSync(path.join(ROOT, 'exporter/dist/jobs/tracker.js'))) throw new Error('exporter build failed');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-e2e-'));
});

afterAll(async () => {
  for (const p of owned) await stop(p, 'SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('ledger across kill -9', () => {
  it('serves finished jobs and resumes running ones from their checkpoint', async () => {
    const ledger = path.join(tmp, 'kill9.db');
    const s1 = await startServe(ledger);
    owned.push(s1.proc);
    const burner = spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' });
    const briefStart = Date.now();
    const brief = spawn(process.execPath, ['-e', 'const t=Date.now();while(Date.now()-t<400){}'], { stdio: 'ignore' });
    owned.push(burner, brief);
    expect((await post(`${s1.url}/api/v1/jobs`, { id: 'long', name: 'long', pids: [burner.pid] })).status).toBe(201);
    expect((await post(`${s1.url}/api/v1/jobs`, { id: 'brief', name: 'brief', pids: [brief.pid], start: briefStart / 1000 })).status).toBe(
      201,
    );
    await new Promise((r) => brief.once('exit', r));
    let briefReport: Report | undefined;
    for (const until = Date.now() + 30_000; briefReport?.state !== 'ended' && Date.now() < until;) {
      await sleep(100);
      briefReport = (await (await fetch(`${s1.url}/api/v1/jobs/brief`)).json()) as Report;
    }
    expect(briefReport?.state).toBe('ended');
    // The long job measured (a tick attributed the burner to it), then a checkpoint at or after
    // that scrape: waited for, not slept for (ticks and checkpoints come late on a loaded machine).
    let scraped: Record<string, number> = {};
    for (const until = Date.now() + 30_000; !(scraped.compute > 0) && Date.now() < until; await sleep(100)) {
      scraped = await jobCounters(s1.url, 'long');
    }
    expect(scraped.compute).toBeGreaterThan(0);
    const checkpointed = () => COMPONENTS.every((c) => Number(ledgerRow(ledger, 'long')?.[`${c}_j`]) >= (scraped[c] ?? 0));
    for (const until = Date.now() + 30_000; !checkpointed() && Date.now() < until;) await sleep(100);
    await stop(s1.proc, 'SIGKILL');

    const longRow = ledgerRow(ledger, 'long');
    const briefRow = ledgerRow(ledger, 'brief');
    expect(longRow?.end_ms).toBeNull();
    expect(briefRow?.end_ms).not.toBeNull();
    expect(briefRow?.compute_j).toBeCloseTo(briefReport?.energy.compute.joules ?? NaN, 9);
    // The checkpoint is at least what Prometheus saw before the crash: no false counter reset.
    for (const c of COMPONENTS) expect(Number(longRow?.[`${c}_j`])).toBeGreaterThanOrEqual(scraped[c] ?? 0);

    const s2 = await startServe(ledger);
    owned.push(s2.proc);
    const resumed = await jobCounters(s2.url, 'long');
    for (const c of COMPONENTS) expect(resumed[c]).toBeGreaterThanOrEqual(Number(longRow?.[`${c}_j`]) - 1e-9);
    const briefAgain = (await (await fetch(`${s2.url}/api/v1/jobs/brief`)).json()) as Report;
    expect(briefAgain.state).toBe('ended');
    expect(briefAgain.total.joules).toBeCloseTo(briefReport?.total.joules ?? NaN, 9);
    // The retained finished job is on /metrics again with its final totals.
    const briefCounters = await jobCounters(s2.url, 'brief');
    expect(briefCounters.compute).toBeCloseTo(Number(briefRow?.compute_j), 9);

    let later: Record<string, number> = {};
    for (const until = Date.now() + 30_000; !(later.compute > Number(longRow?.compute_j)) && Date.now() < until; await sleep(100)) {
      later = await jobCounters(s2.url, 'long');
    }
    expect(later.compute).toBeGreaterThan(Number(longRow?.compute_j)); // still measuring the burner
    const end = await post(`${s2.url}/api/v1/jobs/long/end`);
    expect(end.status).toBe(200);
    const final = end.body as unknown as Report;
    const finalRow = ledgerRow(ledger, 'long');
    expect(finalRow?.end_ms).not.toBeNull();
    const rowTotal = COMPONENTS.reduce((a, c) => a + Number(finalRow?.[`${c}_j`]), 0);
    expect(rowTotal).toBeCloseTo(final.total.joules, 9);
    expect(final.total.joules).toBeGreaterThan(COMPONENTS.reduce((a, c) => a + Number(longRow?.[`${c}_j`]), 0));
    await stop(burner, 'SIGKILL');
    await stop(s2.proc);
  });
});

function runCli(
  args: string[],
  opts: { onStart?: (p: ChildProcess) => void; onStdout?: (stdout: string, p: ChildProcess) => void } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, 'run', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    owned.push(p);
    let stdout = '';
    let stderr = '';
    opts.onStart?.(p);
    p.stdout?.on('data', (d: Buffer) => {
      stdout += d.toString();
      opts.onStdout?.(stdout, p);
    });
    p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

describe('jouleflow run', () => {
  it('with an exporter: the report equals the ledger row and the counters on /metrics', async () => {
    const ledger = path.join(tmp, 'run.db');
    const s = await startServe(ledger);
    owned.push(s.proc);
    const r = await runCli([
      '--json',
      '--name',
      'burn 3s',
      '--label',
      'team=ml',
      '--exporter.url',
      s.url,
      '--',
      process.execPath,
      '-e',
      'const t=Date.now();while(Date.now()-t<3000){}',
    ]);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as Report & { labels: Record<string, string> };
    expect(report.state).toBe('ended');
    expect(report.labels.team).toBe('ml');
    expect(report.durationSeconds).toBeGreaterThanOrEqual(3);
    expect(report.energy.compute.joules).toBeGreaterThan(0);
    const row = ledgerRow(ledger, report.id);
    const rowTotal = COMPONENTS.reduce((a, c) => a + Number(row?.[`${c}_j`]), 0);
    expect(Math.abs(rowTotal - report.total.joules)).toBeLessThanOrEqual(1e-9 * report.total.joules);
    const counters = await jobCounters(s.url, report.id);
    const counterTotal = COMPONENTS.reduce((a, c) => a + (counters[c] ?? 0), 0);
    expect(Math.abs(counterTotal - report.total.joules)).toBeLessThanOrEqual(1e-9 * report.total.joules);
    for (const c of COMPONENTS) expect(counters[c]).toBeCloseTo(report.energy[c].joules, 9);

    const code = await runCli(['--exporter.url', s.url, '--', process.execPath, '-e', 'process.exit(7)']);
    expect(code.code).toBe(7);
    expect(code.stderr).toMatch(/total/);
    // A command that exits at once is still registered (its PID is held until the exporter has it).
    const quick = await runCli(['--exporter.url', s.url, '--json', '--', 'true']);
    expect(quick.code).toBe(0);
    expect(quick.stderr).not.toMatch(/refused|unmeasured/);
    expect((JSON.parse(quick.stdout) as Report).state).toBe('ended');
    const ls = execFileSync(process.execPath, [MAIN, 'jobs', 'ls', '--exporter.url', s.url], { encoding: 'utf8' });
    expect(ls).toMatch(new RegExp(`^${report.id}\\s+burn 3s\\s+ended`, 'm'));
    const show = execFileSync(process.execPath, [MAIN, 'jobs', 'show', report.id, '--exporter.url', s.url], { encoding: 'utf8' });
    expect(show).toMatch(/compute/);
    await stop(s.proc);
  });

  it('a signal during registration: the command is not started, exit 128+signal, and the wrapper says so', async () => {
    // An exporter that answers the probe, and whose POST never answers: instead, receiving it
    // (registration under way, the command held) is the moment the wrapper gets SIGTERM.
    let wrapper: ChildProcess | undefined;
    const http = await import('http');
    const server = http.createServer((req, res) => {
      if (req.method === 'GET') {
        res.setHeader('content-type', 'application/json');
        res.end('{"jobs":[]}');
      } else wrapper?.kill('SIGTERM');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    try {
      const child =
        "console.log('child ran');process.on('SIGTERM',()=>{console.log('child got SIGTERM');process.exit(0)});setTimeout(()=>process.exit(9),8000)";
      const r = await runCli(['--exporter.url', `http://127.0.0.1:${port}`, '--', process.execPath, '-e', child], {
        onStart: (p) => (wrapper = p),
      });
      expect(r.stderr).not.toMatch(/unmeasured/);
      if (/the command was not started/.test(r.stderr)) {
        expect(r.stderr).toMatch(/SIGTERM while registering the job; the command was not started/);
        expect(r.code).toBe(143);
        expect(r.stdout).toBe('');
      } else {
        // The held command had already been released (at most 1 s after spawning): it got the signal.
        expect(r.stdout).toMatch(/child got SIGTERM/);
      }
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('forwards signals to the command once it runs, even while registration is still pending', async () => {
    const http = await import('http');
    const server = http.createServer((req, res) => {
      if (req.method === 'GET') {
        res.setHeader('content-type', 'application/json');
        res.end('{"jobs":[]}');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    try {
      const child =
        "process.on('SIGTERM',()=>{console.log('child got SIGTERM');process.exit(0)});console.log('ready');setTimeout(()=>process.exit(9),20000)";
      // The command starts after at most a second without registration; once it says "ready", signal the wrapper
      // once (a second SIGTERM on a later stdout chunk could reach it after it stopped forwarding, and kill it).
      let signalled = false;
      const r = await runCli(['--exporter.url', `http://127.0.0.1:${port}`, '--', process.execPath, '-e', child], {
        onStdout: (out, p) => {
          if (signalled || !out.includes('ready')) return;
          signalled = true;
          p.kill('SIGTERM');
        },
      });
      expect(r.stdout).toMatch(/child got SIGTERM/);
      expect(r.code).toBe(0);
      // The command ended before the exporter answered: said, without a false "runs unmeasured".
      expect(r.stderr).toMatch(/the command ended before the exporter registered it/);
      expect(r.stderr).not.toMatch(/unmeasured/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('without an exporter: measures in-process, passes the exit status and signals through', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await runCli([
      '--json',
      '--sample.interval=200ms',
      '--exporter.url',
      dead,
      '--',
      process.execPath,
      '-e',
      'const t=Date.now();while(Date.now()-t<1000){};process.exit(3)',
    ]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/measuring in-process/);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.state).toBe('ended');
    expect(report.energy.compute.joules).toBeGreaterThan(0);
    // Signalled once the command runs (it says so), not after a fixed delay a loaded machine may not meet.
    const sig = await runCli(
      ['--sample.interval=200ms', '--exporter.url', dead, '--', process.execPath, '-e', "console.log('ready');setInterval(()=>{},1000)"],
      { onStdout: (out, p) => void (out.includes('ready') && p.kill('SIGTERM')) },
    );
    expect(sig.signal).toBe('SIGTERM');
    expect(sig.stderr).toMatch(/total/);
  });
});
