import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import fc from 'fast-check';
import { startServe, type RunningExporter } from '../helpers/exporter-process';
import { requireBinary } from '../prometheus/lib';

/**
 * Property-based fuzz of the jobs API against the built exporter (issue 10 §8): thousands of
 * requests with malformed bodies, odd methods and content types, injection attempts in ids, names,
 * labels and cgroups (newlines, quotes, `}`, NUL, U+0085, U+2028/2029, lone surrogates), huge
 * values. Properties: no 5xx ever; afterwards /metrics passes `promtool check metrics`, every
 * sample belongs to a family with HELP (nothing injected), and the exporter's RSS stays bounded.
 */

const RUNS = 2000;
// Generous: the case count must not depend on how loaded the machine is (2 000 cases take ~15 s idle).
const TIME_LIMIT_MS = 240_000;
/** RSS ceiling after the campaign (the exporter starts near 80 MB). */
const RSS_LIMIT_MB = 400;

jest.setTimeout(TIME_LIMIT_MS + 120_000);

let exp: RunningExporter;
let sleeper: ChildProcess;

beforeAll(async () => {
  requireBinary('promtool', 'prometheus');
  exp = await startServe(['--sample.interval=200ms', '--jobs.retention=1s', '--jobs.live-cap=5000']);
  sleeper = spawn('sleep', ['600'], { stdio: 'ignore' });
});

afterAll(async () => {
  sleeper?.kill();
  await exp?.stop();
});

function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

const NASTY = [
  '\n',
  '\r\n',
  '"',
  '}',
  '{',
  '\\',
  '\u2028',
  '\u2029',
  '\u0085',
  '\u0000',
  '\ud800',
  '\udfff',
  '\t',
  '=',
  ',',
  '# HELP x y\n',
  '} INJECTED 1\n',
  '",evil="1',
];

/** Text mixing injection fragments with arbitrary code points. */
const text = fc
  .array(fc.oneof(fc.constantFrom(...NASTY), fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 6 })), { maxLength: 10 })
  .map((parts) => parts.join(''));

const huge = fc.constantFrom('x'.repeat(2000), 'y'.repeat(70_000), '['.repeat(30_000), '{"a":'.repeat(12_000));

function bodyOf(pid: number) {
  const num = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -1, 1, 2 ** 53, 1e308, Number.MAX_SAFE_INTEGER), fc.constant(pid));
  const job = fc.record(
    {
      id: fc.oneof(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,20}$/), text),
      name: fc.oneof(text, fc.constant(''), fc.string({ minLength: 1000, maxLength: 1100 })),
      pids: fc.oneof(fc.constant([pid]), fc.array(num, { maxLength: 4 }), text),
      cgroup: fc.oneof(
        text.map((t) => '/' + t),
        text,
      ),
      gpus: fc.array(fc.oneof(num, text), { maxLength: 3 }),
      labels: fc.oneof(fc.dictionary(fc.oneof(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,12}$/), text), text, { maxKeys: 6 }), text),
      start: fc.oneof(num, fc.constant(Date.now() / 1000 - 1), text),
      extra: text,
    },
    { requiredKeys: [] },
  );
  // Well-formed jobs whose strings carry the injection attempts: these get registered.
  const labelKey = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_.-]{0,12}$/).filter((k) => k !== '__proto__');
  const valid = fc.record(
    { name: text.filter((t) => t.length > 0), pids: fc.constant([pid]), labels: fc.dictionary(labelKey, text, { maxKeys: 6 }) },
    { requiredKeys: ['name', 'pids'] },
  );
  return fc.oneof(
    { weight: 8, arbitrary: valid.map((j) => JSON.stringify(j)) },
    { weight: 6, arbitrary: job.map((j) => JSON.stringify(j)) },
    { weight: 2, arbitrary: fc.json() },
    { weight: 2, arbitrary: text },
    { weight: 1, arbitrary: huge },
    {
      weight: 1,
      arbitrary: fc.constantFrom('', 'null', '[]', '{"name":', '1e999', '{"__proto__":{"x":1},"name":"p","pids":[1]}', '\ufeff{}'),
    },
  );
}

const request = (pid: number) =>
  fc.record({
    method: fc.oneof(
      { weight: 12, arbitrary: fc.constant('POST') },
      { weight: 1, arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') },
    ),
    path: fc.oneof(
      { weight: 16, arbitrary: fc.constant('/api/v1/jobs') },
      { weight: 2, arbitrary: text.map((t) => `/api/v1/jobs/${encodeURIComponent(t.replace(/[\ud800-\udfff]/g, '?'))}/end`) },
      { weight: 2, arbitrary: text.map((t) => `/api/v1/jobs/${encodeURIComponent(t.replace(/[\ud800-\udfff]/g, '?'))}`) },
      {
        weight: 1,
        arbitrary: fc.constantFrom('/api/v1/jobs/%E0%A4%A', '/api/v1/jobs?all=%ZZ', '/api/v1/jobs/..%2F..%2Fetc', '/api/v1/../metrics'),
      },
    ),
    contentType: fc.oneof(
      { weight: 10, arbitrary: fc.constantFrom('application/json', 'application/json; charset=utf-8', 'application/merge-patch+json') },
      {
        weight: 1,
        arbitrary: fc.constantFrom(
          'text/plain',
          undefined,
          'application/x-www-form-urlencoded',
          'application/json; charset=utf-16',
          'multipart/form-data; boundary=x',
        ),
      },
    ),
    origin: fc.oneof(
      { weight: 12, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constantFrom('http://evil.example', 'null', 'http://127.0.0.1:1') },
    ),
    body: bodyOf(pid),
  });

/** /metrics passes promtool, and every sample belongs to a family with HELP: no series was injected. */
async function checkExposition(): Promise<void> {
  const text = await (await fetch(`${exp.url}/metrics`)).text();
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  expect(`${check.status} ${check.stdout}${check.stderr}`).toBe('0 ');
  const helped = new Set([...text.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1]));
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0] ?? line;
    const family = [...helped].find((h) => name === h || name.startsWith(h + '_'));
    expect([line.slice(0, 120), family !== undefined]).toEqual([line.slice(0, 120), true]);
    expect(line).not.toMatch(/^[^{]*INJECTED/);
  }
}

describe('jobs API fuzz', () => {
  it(`${RUNS} random requests: no 5xx, /metrics valid and uninjected, RSS bounded`, async () => {
    const rssBefore = rssMb(exp.child.pid!);
    const ends: Array<Promise<unknown>> = [];
    const statuses = new Map<number, number>();
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(request(sleeper.pid!), async (r) => {
        cases++;
        const headers: Record<string, string> = {};
        if (r.contentType) headers['content-type'] = r.contentType;
        if (r.origin) headers.origin = r.origin;
        const withBody = r.method !== 'GET' && r.method !== 'HEAD';
        const res = await fetch(exp.url + r.path, { method: r.method, headers, body: withBody ? r.body : undefined });
        const body = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 500) throw new Error(`${res.status} for ${r.method} ${r.path} (${r.contentType}): ${body.slice(0, 200)}`);
        if (cases % 1000 === 0) await checkExposition(); // with live jobs carrying the odd names
        if (res.status === 201) {
          const id = (JSON.parse(body) as { id: string }).id;
          ends.push(fetch(`${exp.url}/api/v1/jobs/${encodeURIComponent(id)}/end`, { method: 'POST' }).then((e) => e.text()));
        }
      }),
      { numRuns: RUNS, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false, endOnFailure: true },
    );
    await Promise.all(ends);
    await checkExposition();
    const rssAfter = rssMb(exp.child.pid!);
    console.log(
      `fuzz: ${cases} cases, ${ends.length} jobs registered and ended, statuses ${JSON.stringify(Object.fromEntries(statuses))}, RSS ${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MB`,
    );
    expect(cases).toBeGreaterThanOrEqual(1000);
    expect(rssAfter).toBeLessThan(RSS_LIMIT_MB);
    expect((await fetch(`${exp.url}/healthz`)).status).toBe(200);
  });
});
