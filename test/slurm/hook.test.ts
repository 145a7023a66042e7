import { execFile } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { HOOK } from './cluster';

/**
 * deploy/slurm/jouleflow-slurm-hook without Slurm: the requests it sends (with the variables
 * slurmd gives a prolog), the token on the wire, and its promise never to fail or delay a job:
 * exporter down, hanging or refusing → exit 0 within the timeout, one log line.
 */

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'jf-hook-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Seen {
  method?: string;
  url?: string;
  auth?: string;
  body: string;
}

function server(
  handler: (req: http.IncomingMessage, res: http.ServerResponse, seen: Seen) => void,
): Promise<{ url: string; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const s = http.createServer((req, res) => {
    const entry: Seen = { method: req.method, url: req.url, auth: req.headers.authorization, body: '' };
    seen.push(entry);
    req.on('data', (d: Buffer) => (entry.body += d.toString()));
    req.on('end', () => handler(req, res, entry));
  });
  return new Promise((resolve) =>
    s.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
        seen,
        close: () => {
          s.closeAllConnections();
          return new Promise<void>((r) => s.close(() => r()));
        },
      }),
    ),
  );
}

function hook(env: Record<string, string>, conf: string): Promise<{ code: number | null; log: string }> {
  const confFile = path.join(dir, `conf-${Math.random()}`);
  const log = path.join(dir, `log-${Math.random()}`);
  fs.writeFileSync(confFile, `${conf}\nJOULEFLOW_SLURM_LOG=${log}\n`);
  return new Promise((resolve) => {
    execFile(
      HOOK,
      [],
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', JOULEFLOW_SLURM_CONF: confFile, ...env }, timeout: 30_000 },
      (err) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, log: fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '' });
      },
    );
  });
}

const PROLOG = {
  SLURM_SCRIPT_CONTEXT: 'prolog_slurmd',
  SLURM_JOB_ID: '42',
  SLURM_JOB_UID: '1000',
  SLURM_JOB_USER: 'alice',
  SLURM_JOB_PARTITION: 'gpu',
  SLURM_JOB_ACCOUNT: 'nlp',
  SLURM_JOB_NAME: 'gpt2 "large" \\ run',
  SLURMD_NODENAME: 'node7',
};

it('prolog: registers the job with its id, name (JSON-escaped), user, partition, account; with the token from the file', async () => {
  const api = await server((_req, res) => res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"42"}'));
  fs.writeFileSync(path.join(dir, 'token'), 's3cret\n');
  const r = await hook(PROLOG, `JOULEFLOW_URL=${api.url}\nJOULEFLOW_TOKEN_FILE=${path.join(dir, 'token')}`);
  await api.close();
  expect(r.code).toBe(0);
  expect(api.seen).toHaveLength(1);
  expect(api.seen[0]).toMatchObject({ method: 'POST', url: '/api/v1/jobs', auth: 'Bearer s3cret' });
  const body = JSON.parse(api.seen[0].body) as Record<string, unknown>;
  expect(body).toEqual({
    id: '42',
    name: 'gpt2 "large" \\ run',
    cgroup: expect.stringMatching(/^\/(slurm|slurm_node7)\/uid_1000\/job_42$|^\/system\.slice\/slurmstepd\.scope\/job_42$/),
    labels: { scheduler: 'slurm', node: 'node7', user: 'alice', partition: 'gpu', account: 'nlp' },
  });
  expect(r.log.trim().split('\n')).toEqual([expect.stringMatching(/jouleflow-slurm prolog_slurmd job=42: register: HTTP 201$/)]);
});

it.each([
  // [environment, exit_code sent (undefined: none), logged]
  [{ SLURM_JOB_EXIT_CODE: String(3 << 8) }, 3, '3'], // wait(2) status: exited with 3
  [{ SLURM_JOB_EXIT_CODE: '9' }, 137, '137'], // wait(2) status: killed by SIGKILL
  [{ SLURM_JOB_EXIT_CODE2: '2:0', SLURM_JOB_EXIT_CODE: '0' }, 2, '2'], // exit:signal wins
  [{ SLURM_JOB_EXIT_CODE2: '0:15' }, 143, '143'],
  [{ SLURM_JOB_EXIT_CODE: 'x1' }, undefined, 'unknown'],
  [{}, undefined, 'unknown'],
] as Array<[Record<string, string>, number | undefined, string]>)(
  'epilog: ends the job with its exit code (%j)',
  async (env, sent, logged) => {
    const api = await server((_req, res) => res.writeHead(200).end('{}'));
    const r = await hook({ SLURM_SCRIPT_CONTEXT: 'epilog_slurmd', SLURM_JOB_ID: '42', ...env }, `JOULEFLOW_URL=${api.url}`);
    await api.close();
    expect(r.code).toBe(0);
    expect(api.seen.map((s) => `${s.method} ${s.url}`)).toEqual(['POST /api/v1/jobs/42/end']);
    expect(JSON.parse(api.seen[0].body)).toEqual(sent === undefined ? {} : { exit_code: sent });
    expect(r.log).toMatch(new RegExp(`epilog_slurmd job=42: end \\(exit code ${logged}\\): HTTP 200\n$`));
  },
);

it('exporter down: exit 0 and one log line saying so', async () => {
  const api = await server(() => undefined);
  const url = api.url;
  await api.close();
  const r = await hook(PROLOG, `JOULEFLOW_URL=${url}`);
  expect(r.code).toBe(0);
  expect(r.log.trim().split('\n')).toEqual([expect.stringMatching(/register: curl: \(7\) Failed to connect/)]);
});

it('exporter hanging: exit 0 once the timeout has passed, one log line', async () => {
  const api = await server(() => undefined); // accepts, never answers
  const r = await hook(PROLOG, `JOULEFLOW_URL=${api.url}\nJOULEFLOW_TIMEOUT=1`);
  await api.close();
  expect(r.code).toBe(0);
  expect(r.log.trim().split('\n')).toEqual([expect.stringMatching(/register: curl: \(28\) Operation timed out/)]);
});

it('exporter refusing (409 duplicate): exit 0, the status and its reason in the log line', async () => {
  const api = await server((_req, res) =>
    res.writeHead(409, { 'content-type': 'application/json' }).end('{"error":"job \\"42\\" already exists"}'),
  );
  const r = await hook(PROLOG, `JOULEFLOW_URL=${api.url}`);
  await api.close();
  expect(r.code).toBe(0);
  expect(r.log).toMatch(/register: HTTP 409 \{"error":"job \\"42\\" already exists"\}/);
});

it('no job id: nothing sent, exit 0', async () => {
  const api = await server((_req, res) => res.end());
  const r = await hook({ SLURM_SCRIPT_CONTEXT: 'prolog_slurmd' }, `JOULEFLOW_URL=${api.url}`);
  await api.close();
  expect(r.code).toBe(0);
  expect(api.seen).toHaveLength(0);
  expect(r.log).toMatch(/no numeric SLURM_JOB_ID/);
});
