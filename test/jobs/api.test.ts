import type { Server } from 'http';
import express from 'express';
import { createJobsRouter } from '../../exporter/src/jobs/api';
import { Ledger } from '../../exporter/src/jobs/ledger';
import { JobTracker } from '../../exporter/src/jobs/tracker';
import { Metrics } from '../../exporter/src/metrics';
import { EMPTY_SNAPSHOT } from '../../exporter/src/snapshot';
import { safeLabelValue } from '../../exporter/src/util/labels';
import type { Attribution, JobShare } from '../../exporter/src/model/attribution';
import { silentLogger } from '../../exporter/src/util/log';
import { JobAccess } from '../../exporter/src/web/job-access';
import { FakeProcfs } from './fakeproc';

/** The jobs API: validation, auth, errors, reports with J/kWh/PUE/CO₂, the cap, metrics hygiene. */

interface Ctx {
  fake: FakeProcfs;
  metrics: Metrics;
  registry: JobTracker;
  ledger: Ledger;
  server: Server;
  base: string;
  now: number;
}

/** `remote`: the caller's socket is looked up in a procfs with no net/tcp, as for a caller on another host. */
async function setup(
  opts: { remote?: boolean; token?: string; liveCap?: number; retentionMs?: number; endedCap?: number } = {},
): Promise<Ctx> {
  const fake = new FakeProcfs();
  for (const pid of [100, 101, 102, 103]) fake.set(pid, { ppid: 1, starttime: 50_000 });
  const metrics = new Metrics();
  const ctx = { fake, metrics, now: 1_800_000_000_000, ledger: new Ledger(':memory:') } as Ctx;
  ctx.registry = new JobTracker({
    procfs: fake.root,
    log: silentLogger,
    ledger: ctx.ledger,
    clock: () => ctx.now,
    liveCap: opts.liveCap ?? 10,
    retentionMs: opts.retentionMs ?? 60_000,
    endedCap: opts.endedCap,
    checkpointMs: 0,
    carbon: { zone: 'DE', gramsPerKwh: 380 },
    discovery: { slurm: false, kubernetes: false, env: false },
  });
  const app = express();
  app.use(
    '/api/v1',
    createJobsRouter({
      registry: ctx.registry,
      log: silentLogger,
      access: new JobAccess({ procfs: fake.root, sysfs: fake.root, token: opts.token, netProcfs: opts.remote ? fake.root : '/proc' }),
    }),
  );
  ctx.server = await new Promise<Server>((r) => {
    const s = app.listen(0, '127.0.0.1', () => r(s));
  });
  const addr = ctx.server.address();
  ctx.base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/api/v1`;
  return ctx;
}

async function teardown(ctx: Ctx): Promise<void> {
  await new Promise((r) => ctx.server.close(r));
  ctx.registry.close();
  ctx.fake.cleanup();
}

async function call(ctx: Ctx, method: string, p: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(ctx.base + p, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: string } };
}

function share(id: string, j: [number, number, number, number]): JobShare {
  return {
    id,
    joules: { compute: j[0], transmit: j[1], store: j[2], cooling: j[3] },
    method: { compute: 'measured', transmit: 'estimated', store: 'measured', cooling: 'measured' },
  };
}

/** One interval of attributed energy, as the sampler would hand it over. */
function interval(ctx: Ctx, shares: JobShare[], dtS = 1): void {
  ctx.now += dtS * 1000;
  ctx.registry.measure(ctx.now, []);
  const attribution: Attribution = { jobs: shares, unattributed: { compute: 0, transmit: 0, store: 0, cooling: 0 } };
  ctx.registry.record({ t: ctx.now, dt: dtS, series: [], events: [] }, attribution);
}

/**
 * Waits (bounded in time) until the end request for `id` has reached the tracker: the next
 * interval is then the job's last. A fixed sleep is not enough on a loaded machine, where the
 * request may arrive after that interval, which then is not the job's last.
 */
async function untilEndRequested(ctx: Ctx, id: string): Promise<void> {
  for (const until = Date.now() + 20_000; !ctx.registry.registry.job(id)?.endRequested; await new Promise((r) => setTimeout(r, 5))) {
    if (Date.now() > until) throw new Error(`timed out waiting for the end request of job "${id}" to reach the tracker`);
  }
}

let version = 0;

/** The exposition after the registry's state is published, as the sampler does at the end of a tick. */
async function exposition(ctx: Ctx): Promise<string> {
  const v = ctx.registry.view();
  ctx.metrics.publish({ ...EMPTY_SNAPSHOT, version: ++version, jobs: v.jobs, errors: v.errors, jobsRejected: v.rejected });
  return (await ctx.metrics.render(false, false, false)).text;
}

describe('jobs API', () => {
  let ctx: Ctx;
  afterEach(() => teardown(ctx));

  it('creates, reports and ends a job with energy in J and kWh, mean power, PUE and CO₂', async () => {
    ctx = await setup();
    const created = await call(ctx, 'POST', '/jobs', { id: 'train-1', name: 'llama', pids: [100], labels: { user: 'ada', team: 'nlp' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      id: 'train-1',
      name: 'llama',
      state: 'running',
      user: 'ada',
      labels: { user: 'ada', team: 'nlp' },
    });
    interval(ctx, [share('train-1', [3000, 100, 200, 1800])], 2);
    interval(ctx, [share('train-1', [1000, 0, 100, 600])], 2);
    const ending = call(ctx, 'POST', '/jobs/train-1/end');
    await untilEndRequested(ctx, 'train-1');
    interval(ctx, [share('train-1', [600, 0, 0, 300])], 1); // the job's last interval
    const ended = await ending;
    expect(ended.status).toBe(200);
    // Expected values computed here from the intervals above.
    const compute = 3000 + 1000 + 600;
    const transmit = 100;
    const store = 300;
    const cooling = 1800 + 600 + 300;
    const it = compute + transmit + store;
    const total = it + cooling;
    const r = ended.body as unknown as {
      state: string;
      durationSeconds: number;
      energy: Record<string, { joules: number; kwh: number; percent: number; method: string }>;
      total: { joules: number; kwh: number };
      meanPowerWatts: number;
      pue: number;
      co2: { grams: number; gramsPerKwh: number; zone: string };
    };
    expect(r.state).toBe('ended');
    expect(r.durationSeconds).toBeCloseTo(5, 6);
    expect(r.energy.compute.joules).toBeCloseTo(compute, 9);
    expect(r.energy.compute.kwh).toBeCloseTo(compute / 3.6e6, 12);
    expect(r.energy.transmit.method).toBe('estimated');
    expect(r.energy.cooling.percent).toBeCloseTo((100 * cooling) / total, 9);
    expect(r.total.joules).toBeCloseTo(total, 9);
    expect(r.meanPowerWatts).toBeCloseTo(total / 5, 9);
    expect(r.pue).toBeCloseTo(total / it, 12);
    expect(r.co2).toEqual({ grams: expect.any(Number), gramsPerKwh: 380, zone: 'DE' });
    expect(r.co2.grams).toBeCloseTo((total / 3.6e6) * 380, 9);
    // After the end, no more energy is added; GET and list agree.
    interval(ctx, [share('train-1', [999, 0, 0, 0])]);
    const again = await call(ctx, 'GET', '/jobs/train-1');
    expect((again.body.total as { joules: number }).joules).toBeCloseTo(total, 9);
    const list = await call(ctx, 'GET', '/jobs');
    expect((list.body.jobs as Array<{ id: string }>).map((j) => j.id)).toEqual(['train-1']);
    // Ending twice returns the same final report.
    const twice = await call(ctx, 'POST', '/jobs/train-1/end');
    expect(twice.status).toBe(200);
    expect((twice.body.total as { joules: number }).joules).toBeCloseTo(total, 9);
  });

  it('validates bodies and answers JSON errors with a reason', async () => {
    ctx = await setup();
    const cases: Array<[unknown, RegExp]> = [
      [{ pids: [100] }, /name/],
      [{ name: 'x' }, /at least one of pids, cgroup or gpus/],
      [{ name: 'x', gpus: ['MIG-5e7c1a2b-0000-4000-8000-000000000000'] }, /gpus: MIG instance UUIDs are not supported/],
      [{ name: 'x', gpus: ['GPU-not-a-uuid'] }, /gpus: an index \(0\), a device label \(gpu0\) or a GPU UUID/],
      [{ name: 'x', pids: [-4] }, /pids/],
      [{ name: 'x', pids: [100], extra: 1 }, /extra|Unrecognized/],
      [{ name: 'x', id: 'has space', pids: [100] }, /id/],
      [{ name: 'x', cgroup: 'relative/path' }, /cgroup/],
      [{ name: 'x', pids: [99999] }, /no such process: 99999/],
      [{ name: 'x', id: 'unattributed', pids: [100] }, /unattributed/],
      ['{"name": ', /invalid request body|JSON/],
      ['{"name": "x", "pids": [100], "labels": {"__proto__": "a"}}', /__proto__/],
    ];
    for (const [body, reason] of cases) {
      const r = await call(ctx, 'POST', '/jobs', body);
      expect(r.status).toBe(400);
      expect(r.body.error).toMatch(reason);
    }
    expect((await call(ctx, 'GET', '/jobs/nope')).status).toBe(404);
    expect((await call(ctx, 'POST', '/jobs/nope/end')).status).toBe(404);
    expect((await call(ctx, 'GET', '/nothing-here')).status).toBe(404);
    const byUuid = await call(ctx, 'POST', '/jobs', { id: 'by-uuid', name: 'u', gpus: ['GPU-5E7C1A2B-0000-4000-8000-000000000000', 1] });
    expect([byUuid.status, byUuid.body.error]).toEqual([201, undefined]);
    expect((await call(ctx, 'POST', '/jobs', { id: 'dup', name: 'a', pids: [100] })).status).toBe(201);
    const dup = await call(ctx, 'POST', '/jobs', { id: 'dup', name: 'b', pids: [101] });
    expect(dup.status).toBe(409);
    expect(dup.body.error).toMatch(/already exists/);
  });

  it('refuses jobs over the live cap with 429, naming the cap, and counts them', async () => {
    ctx = await setup({ liveCap: 2 });
    expect((await call(ctx, 'POST', '/jobs', { name: 'a', pids: [100] })).status).toBe(201);
    expect((await call(ctx, 'POST', '/jobs', { name: 'b', pids: [101] })).status).toBe(201);
    const over = await call(ctx, 'POST', '/jobs', { name: 'c', pids: [102] });
    expect(over.status).toBe(429);
    expect(over.body.error).toMatch(/cap is 2/);
    const text = await exposition(ctx);
    expect(text).toMatch(/^jouleflow_jobs_rejected_total\{reason="cap"\} 1$/m);
  });

  it('callers from another host need the bearer token, for reads of the job list too', async () => {
    ctx = await setup({ remote: true });
    const none = await call(ctx, 'POST', '/jobs', { name: 'a', pids: [100] });
    expect(none.status).toBe(403);
    expect(none.body.error).toMatch(/token/);
    expect((await call(ctx, 'GET', '/jobs')).status).toBe(403);
    await teardown(ctx);
    ctx = await setup({ remote: true, token: 's3cret' });
    expect((await call(ctx, 'GET', '/jobs')).status).toBe(401);
    expect((await call(ctx, 'GET', '/jobs', undefined, { authorization: 'Bearer s3cret' })).status).toBe(200);
    expect((await call(ctx, 'POST', '/jobs', { name: 'a', pids: [100] })).status).toBe(401);
    expect((await call(ctx, 'POST', '/jobs', { name: 'a', pids: [100] }, { authorization: 'Bearer wrong' })).status).toBe(401);
    const ok = await call(ctx, 'POST', '/jobs', { id: 'tok', name: 'a', pids: [100] }, { authorization: 'Bearer s3cret' });
    expect(ok.status).toBe(201);
    expect((await call(ctx, 'POST', '/jobs/tok/end', undefined, {})).status).toBe(401);
  });

  it('exposes awkward names safely and drops every series of a job after the retention window', async () => {
    ctx = await setup({ retentionMs: 3000 });
    const name = 'quote " backslash \\ newline \n unicode ünï 🚀 lone \ud800';
    expect((await call(ctx, 'POST', '/jobs', { id: 'odd', name, pids: [100] })).status).toBe(201);
    interval(ctx, [share('odd', [10, 1, 1, 5])]);
    const text = await exposition(ctx);
    const line = text.split('\n').find((l) => l.startsWith('jouleflow_job_info{'));
    expect(line).toBe(
      'jouleflow_job_info{job_id="odd",job_name="quote \\" backslash \\\\ newline \\n unicode ünï 🚀 lone \ufffd",user="",scheduler="api"} 1',
    );
    const ending = call(ctx, 'POST', '/jobs/odd/end');
    await untilEndRequested(ctx, 'odd');
    interval(ctx, []);
    expect((await ending).status).toBe(200);
    expect(await exposition(ctx)).toMatch(/jouleflow_job_end_time_seconds\{job_id="odd"\}/);
    interval(ctx, [], 5); // past the retention window
    const after = await exposition(ctx);
    expect(after).not.toMatch(/job_id="odd"/);
    // …but the ledger still serves it.
    const r = await call(ctx, 'GET', '/jobs/odd');
    expect(r.status).toBe(200);
    expect((r.body.total as { joules: number }).joules).toBeCloseTo(17, 9);
    expect((await call(ctx, 'GET', '/jobs')).body.jobs).toEqual([]);
    expect(((await call(ctx, 'GET', '/jobs?all=1')).body.jobs as Array<{ id: string }>).map((j) => j.id)).toEqual(['odd']);
  });

  it('a failing ledger write (disk full) does not keep a job from ending or its report from coming', async () => {
    ctx = await setup();
    expect((await call(ctx, 'POST', '/jobs', { id: 'full', name: 'n', pids: [100] })).status).toBe(201);
    const spy = jest.spyOn(Ledger.prototype, 'save').mockImplementation(() => {
      throw new Error('SQLITE_FULL: database or disk is full');
    });
    try {
      interval(ctx, [share('full', [10, 0, 0, 0])]);
      const ending = call(ctx, 'POST', '/jobs/full/end');
      await untilEndRequested(ctx, 'full');
      interval(ctx, [share('full', [5, 0, 0, 0])]);
      const ended = await ending;
      expect(ended.status).toBe(200);
      expect(ended.body.state).toBe('ended');
      expect((ended.body.total as { joules: number }).joules).toBeCloseTo(15, 9);
      expect(await exposition(ctx)).toMatch(/^jouleflow_source_errors_total\{reader="ledger",reason="write"\} [1-9]/m);
    } finally {
      spy.mockRestore();
    }
  });

  it('sanitises the scheduler label like job_name: no lone surrogates, bounded length', async () => {
    ctx = await setup();
    const scheduler = `sched \ud800 ${'x'.repeat(1000)}`;
    expect((await call(ctx, 'POST', '/jobs', { id: 's', name: 'n', pids: [100], labels: { scheduler } })).status).toBe(201);
    const text = await exposition(ctx);
    const line = text.split('\n').find((l) => l.startsWith('jouleflow_job_info{')) ?? '';
    const value = /scheduler="([^"]*)"/.exec(line)?.[1] ?? '';
    expect(value.startsWith('sched \ufffd x')).toBe(true);
    expect(value.length).toBe(256);
  });

  it('drops the power gauge of a job when it ends (it must not linger through retention)', async () => {
    ctx = await setup();
    expect((await call(ctx, 'POST', '/jobs', { id: 'p', name: 'n', pids: [100] })).status).toBe(201);
    interval(ctx, [share('p', [500, 0, 0, 0])]);
    expect(await exposition(ctx)).toMatch(/^jouleflow_job_power_watts\{job_id="p",component="compute"\} 500$/m);
    const ending = call(ctx, 'POST', '/jobs/p/end');
    await untilEndRequested(ctx, 'p');
    interval(ctx, [share('p', [100, 0, 0, 0])]); // its last interval
    expect((await ending).status).toBe(200);
    interval(ctx, []); // ended, still retained
    const text = await exposition(ctx);
    expect(text).toMatch(/jouleflow_job_end_time_seconds\{job_id="p"\}/);
    expect(text).toMatch(/^jouleflow_job_energy_joules_total\{job_id="p",component="compute",method="measured"\} 600$/m);
    expect(text).not.toMatch(/jouleflow_job_power_watts\{job_id="p"/);
  });
});

describe('jobs API: ownership, bounded lists and retained jobs', () => {
  let ctx: Ctx;
  afterEach(() => teardown(ctx));

  it('a PID already in a job is refused with 409 naming the owning job, never moved silently', async () => {
    ctx = await setup();
    ctx.fake.set(104, { ppid: 100, starttime: 50_001 });
    expect((await call(ctx, 'POST', '/jobs', { id: 'first', name: 'a', pids: [100] })).status).toBe(201);
    interval(ctx, []); // the scan makes 104 a member of "first" (child of its root)
    const root = await call(ctx, 'POST', '/jobs', { id: 'second', name: 'b', pids: [100] });
    expect(root.status).toBe(409);
    expect(root.body.error).toMatch(/process 100 already belongs to job "first"/);
    const child = await call(ctx, 'POST', '/jobs', { id: 'third', name: 'c', pids: [104] });
    expect(child.status).toBe(409);
    expect(child.body.error).toMatch(/"first"/);
    expect(((await call(ctx, 'GET', '/jobs/first')).body as { state: string }).state).toBe('running');
    expect((await exposition(ctx)).match(/^jouleflow_jobs_rejected_total\{reason="conflict"\} (\d+)$/m)?.[1]).toBe('2');
  });

  it('pages the list with limit and cursor, in start order, each job once', async () => {
    ctx = await setup();
    const ids = ['j1', 'j2', 'j3', 'j4', 'j5'];
    for (const [i, id] of ids.entries()) {
      ctx.now += 1000;
      expect((await call(ctx, 'POST', '/jobs', { id, name: id, pids: [100 + (i % 4)] })).status).toBe(i < 4 ? 201 : 409);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page++) {
      const r = await call(ctx, 'GET', `/jobs?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.status).toBe(200);
      const jobs = r.body.jobs as Array<{ id: string }>;
      expect(jobs.length).toBeLessThanOrEqual(2);
      seen.push(...jobs.map((j) => j.id));
      cursor = r.body.next_cursor as string | undefined;
      if (!cursor) break;
    }
    expect(seen).toEqual(['j1', 'j2', 'j3', 'j4']);
    expect((await call(ctx, 'GET', '/jobs?all=1&limit=3')).body.next_cursor).toBeDefined();
    expect((await call(ctx, 'GET', '/jobs?limit=0')).status).toBe(400);
    expect((await call(ctx, 'GET', '/jobs?limit=5000')).status).toBe(400);
    expect((await call(ctx, 'GET', '/jobs?cursor=not-a-cursor')).status).toBe(400);
  });

  it('metadata resolved later (a scheduler lookup) relabels the job from the next snapshot on', async () => {
    ctx = await setup();
    expect((await call(ctx, 'POST', '/jobs', { id: 'slurm-42', name: 'job 42', pids: [100] })).status).toBe(201);
    expect(await exposition(ctx)).toMatch(/^jouleflow_job_info\{job_id="slurm-42",job_name="job 42",user="",scheduler="api"\} 1$/m);
    expect(ctx.registry.registry.describe('slurm-42', { name: 'llama-ft', user: 'ada', scheduler: 'slurm' })).toBe(true);
    const text = await exposition(ctx);
    expect(text).toMatch(/^jouleflow_job_info\{job_id="slurm-42",job_name="llama-ft",user="ada",scheduler="slurm"\} 1$/m);
    expect(text).not.toMatch(/job_name="job 42"/);
    expect(((await call(ctx, 'GET', '/jobs/slurm-42')).body as { name: string }).name).toBe('llama-ft');
  });

  it('an end call may give the exit code: kept in the report and the ledger; a bad one is a 400 that ends nothing', async () => {
    ctx = await setup();
    expect((await call(ctx, 'POST', '/jobs', { id: 'ex', name: 'ex', pids: [100] })).status).toBe(201);
    for (const [body, reason] of [
      [{ exit_code: -1 }, /exit_code/],
      [{ exit_code: 256 }, /exit_code: 0 to 255/],
      [{ exit_code: 1.5 }, /exit_code: an integer/],
      [{ exit_code: '3' }, /exit_code/],
      [{ exitcode: 3 }, /exitcode/],
    ] as const) {
      const r = await call(ctx, 'POST', '/jobs/ex/end', body);
      expect([r.status, r.body.error]).toEqual([400, expect.stringMatching(reason)]);
    }
    expect(ctx.registry.get('ex')?.state).toBe('running');
    const ending = call(ctx, 'POST', '/jobs/ex/end', { exit_code: 3 });
    await untilEndRequested(ctx, 'ex');
    interval(ctx, []);
    const ended = await ending;
    expect([ended.status, ended.body.state, ended.body.exitCode]).toEqual([200, 'ended', 3]);
    expect(ctx.ledger.get('ex')?.spec.exitCode).toBe(3);
    // Ending again (the epilog retried, with another code): the first code stands.
    expect((await call(ctx, 'POST', '/jobs/ex/end', { exit_code: 1 })).body.exitCode).toBe(3);
    // Without a body, as before: no exit code; one given later (a Slurm job that ended with its
    // last process before its epilog called) is kept, once.
    expect((await call(ctx, 'POST', '/jobs', { id: 'plain', name: 'plain', pids: [101] })).status).toBe(201);
    const plain = call(ctx, 'POST', '/jobs/plain/end');
    await untilEndRequested(ctx, 'plain');
    interval(ctx, []);
    expect((await plain).body).not.toHaveProperty('exitCode');
    expect((await call(ctx, 'POST', '/jobs/plain/end', { exit_code: 0 })).body).toMatchObject({ state: 'ended', exitCode: 0 });
    expect((await call(ctx, 'POST', '/jobs/plain/end', { exit_code: 9 })).body.exitCode).toBe(0);
    expect(ctx.ledger.get('plain')?.spec.exitCode).toBe(0);
  });

  it('keeps at most endedCap ended jobs live; older ones stay in the ledger', async () => {
    ctx = await setup({ endedCap: 2 });
    for (const id of ['e1', 'e2', 'e3']) {
      expect((await call(ctx, 'POST', '/jobs', { id, name: id, pids: [100] })).status).toBe(201);
      const ending = call(ctx, 'POST', `/jobs/${id}/end`);
      await untilEndRequested(ctx, id);
      interval(ctx, []);
      expect((await ending).status).toBe(200);
    }
    const live = ((await call(ctx, 'GET', '/jobs')).body.jobs as Array<{ id: string }>).map((j) => j.id);
    expect(live).toEqual(['e2', 'e3']);
    expect((await call(ctx, 'GET', '/jobs/e1')).status).toBe(200);
    expect(await exposition(ctx)).toMatch(/^jouleflow_jobs\{state="ended"\} 2$/m);
  });
});

describe('safeLabelValue', () => {
  it('truncates on a code point boundary: never a lone high surrogate before the ellipsis', () => {
    for (const pad of [253, 254, 255]) {
      const v = safeLabelValue('a'.repeat(pad) + '🚀'.repeat(10));
      expect(v.length).toBeLessThanOrEqual(256);
      expect(v.endsWith('\u2026')).toBe(true);
      expect(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(v)).toBe(false);
    }
    expect(safeLabelValue('short 🚀')).toBe('short 🚀');
    expect(safeLabelValue('x'.repeat(256))).toBe('x'.repeat(256));
  });
});
