import { spawn } from 'child_process';
import { MAIN, startServe, type RunningExporter } from '../helpers/exporter-process';
import { asUser, ensureTestUser } from '../helpers/test-user';

/**
 * The README's quick start on a shared node, end to end with the built exporter: `serve` (no
 * token configured) and `jouleflow run -- CMD` as a non-root user print a report; the jobs API
 * knows each caller by uid (issue 10 §3): a user cannot end root's job, claim PID 1 or another
 * user's process; browsers' cross-origin and non-JSON requests and unserved methods are refused.
 */

jest.setTimeout(120_000);

let exp: RunningExporter;
const user = ensureTestUser();

beforeAll(async () => {
  exp = await startServe(['--sample.interval=200ms']);
});

afterAll(async () => {
  await exp?.stop();
});

/** Runs `argv` (as the test user when `asTestUser`) and collects its output and exit status. */
function runAs(argv: string[], asTestUser: boolean): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const full = asTestUser && !('skip' in user) ? asUser(user.name, argv) : argv;
  return new Promise((resolve) => {
    const child = spawn(full[0], full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A curl-free HTTP client that runs as the test user: prints "STATUS BODY". */
async function httpAs(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  const script = `fetch(${JSON.stringify(exp.url + path)}, { method: ${JSON.stringify(method)}, headers: ${JSON.stringify({
    'content-type': 'application/json',
    ...headers,
  })}, body: ${JSON.stringify(body === undefined ? undefined : JSON.stringify(body))} }).then(async (r) => console.log(r.status + ' ' + (await r.text())))`;
  const r = await runAs([process.execPath, '-e', script], true);
  const m = /^(\d{3}) ([\s\S]*)$/.exec(r.stdout.trim());
  if (!m) throw new Error(`client failed: ${r.stderr}`);
  return { status: Number(m[1]), body: m[2] };
}

describe('the jobs API knows its caller', () => {
  it('`jouleflow run -- CMD` as a non-root user, no token: the job is registered, measured and reported', async () => {
    if ('skip' in user) return console.warn(`skipped: ${user.skip}`);
    const burn = 'const e = Date.now() + 1500; while (Date.now() < e); process.exit(3)';
    const r = await runAs(
      [process.execPath, MAIN, 'run', '--name', 'burn', '--exporter.url', exp.url, '--', process.execPath, '-e', burn],
      true,
    );
    expect(r.stderr).not.toMatch(/unmeasured|refused|in-process/);
    expect(r.stderr).toMatch(/jouleflow: job job-\w+ \(burn\) ended/);
    const compute = Number(/compute\s+([\d.]+) J/.exec(r.stderr)?.[1]);
    expect(compute).toBeGreaterThan(0);
    expect(r.code).toBe(3); // the command's exit status, passed through
    const id = /job (job-\w+) \(burn\)/.exec(r.stderr)![1];
    const job = (await (await fetch(`${exp.url}/api/v1/jobs/${id}`)).json()) as { state: string; labels: Record<string, string> };
    expect(job.state).toBe('ended');
    expect(job.labels.scheduler).toBe('jouleflow-run');
  });

  it("a user cannot end root's job, claim PID 1 or root's process; root can end anything", async () => {
    if ('skip' in user) return console.warn(`skipped: ${user.skip}`);
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const reg = await fetch(`${exp.url}/api/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'roots', name: 'root job', pids: [sleeper.pid] }),
      });
      expect(reg.status).toBe(201);
      const end = await httpAs('POST', '/api/v1/jobs/roots/end', {});
      expect(end.status).toBe(403);
      expect(end.body).toMatch(/not registered by you/);
      expect((await httpAs('POST', '/api/v1/jobs', { name: 'init', pids: [1] })).status).toBe(403);
      const steal = await httpAs('POST', '/api/v1/jobs', { name: 'steal', pids: [sleeper.pid] });
      expect(steal.status).toBe(403);
      expect(steal.body).toMatch(/belongs to uid 0/);
      expect((await httpAs('POST', '/api/v1/jobs', { name: 'all', cgroup: '/' })).status).toBe(403);
      // Reading the list is open to this host's users.
      expect((await httpAs('GET', '/api/v1/jobs')).status).toBe(200);
      expect((await fetch(`${exp.url}/api/v1/jobs/roots/end`, { method: 'POST' })).status).toBe(200);
    } finally {
      sleeper.kill();
    }
  });

  it('refuses browser-style requests: non-JSON bodies 415, a foreign Origin 403, unserved methods 405', async () => {
    const body = JSON.stringify({ name: 'x', pids: [process.pid] });
    const plain = await fetch(`${exp.url}/api/v1/jobs`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body });
    expect(plain.status).toBe(415);
    const form = await fetch(`${exp.url}/api/v1/jobs`, { method: 'POST', body: new URLSearchParams({ a: 'b' }) });
    expect(form.status).toBe(415);
    const foreign = await fetch(`${exp.url}/api/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://evil.example:8080' },
      body,
    });
    expect(foreign.status).toBe(403);
    const port = new URL(exp.url).port;
    const rebound = await fetch(`${exp.url}/api/v1/jobs`, {
      headers: { origin: `http://evil.example:${port}`, host: `evil.example:${port}` },
    });
    expect(rebound.status).toBe(403);
    const same = await fetch(`${exp.url}/api/v1/jobs`, { headers: { origin: `http://127.0.0.1:${port}` } });
    expect(same.status).toBe(200);
    for (const [method, p] of [
      ['PUT', '/api/v1/jobs'],
      ['DELETE', '/api/v1/jobs/x'],
      ['POST', '/metrics'],
      ['PATCH', '/'],
    ]) {
      const r = await fetch(exp.url + p, { method });
      expect([method, p, r.status]).toEqual([method, p, 405]);
      expect(r.headers.get('allow')).toMatch(/GET|POST/);
    }
  });
});
