import { readFileSync } from 'fs';
import { join } from 'path';
import { ensureFakeNvml, FIXTURES } from '../nvml/fake-nvml';
import { startServe, waitFor, type RunningExporter } from '../helpers/exporter-process';
import { REPO } from '../prometheus/lib';
import { type Peer, startPeer, stopPeer } from './peers';

/**
 * The cardinality budget in README.md ("What 1 000 nodes cost in series") against a real exporter:
 * series are counted on /metrics of `jouleflow serve` with fake H200 GPUs and a known number of
 * jobs, and must equal the table's per-GPU, per-job, per-ended-job and churn figures. A change
 * that adds a label value or a family per job fails here until the table says what it costs.
 */

const JOBS = ['card-1', 'card-2', 'card-3'];

/** The figure in the README's budget table row whose first cell starts with `row`. */
function budget(row: string): number {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### What 1 000 nodes cost in series'));
  const line = section.split('\n').find((l) => l.startsWith(`| ${row}`));
  if (!line) throw new Error(`README.md budget table has no row "${row}"`);
  return Number(line.split('|')[2].trim());
}

function series(text: string): string[] {
  return text.split('\n').filter((l) => l && !l.startsWith('#'));
}

async function metrics(e: RunningExporter): Promise<string[]> {
  return series(await (await fetch(`${e.url}/metrics`)).text());
}

function gpuServe(gpus: number, extra: string[] = []): Promise<RunningExporter> {
  return startServe([`--nvml.library=${ensureFakeNvml()}`, '--sample.interval=1s', ...extra], {
    JOULEFLOW_FAKE_NVML_GPUS: String(gpus),
    JOULEFLOW_FAKE_NVML_TRACE: join(FIXTURES, 'training-trace.json'),
  });
}

const running: RunningExporter[] = [];
const burners: Peer[] = [];

async function registerJobs(e: RunningExporter, ids: string[]): Promise<void> {
  for (const id of ids) {
    const b = startPeer(id, process.execPath, ['-e', 'setInterval(() => { const e = Date.now() + 20; while (Date.now() < e); }, 100)']);
    burners.push(b);
    const res = await fetch(`${e.url}/api/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ id, name: id, pids: [b.child.pid], labels: { user: 'budget' } }),
    });
    expect(res.status).toBe(201);
  }
  await waitFor(
    async () =>
      (await metrics(e)).filter((l) => l.startsWith('jouleflow_job_power_watts{job_id="card-')).length >= 4 * ids.length ? true : undefined,
    'the jobs on /metrics',
    30_000,
  );
}

const ofJob = (lines: string[], id: string) => lines.filter((l) => l.includes(`job_id="${id}"`));

afterAll(async () => {
  for (const b of burners) await stopPeer(b);
  for (const e of running) await e.stop();
});

describe('cardinality budget (README: What 1 000 nodes cost in series)', () => {
  test('series per GPU (every series labelled with one GPU device) and unattributed series per node', async () => {
    const eight = await gpuServe(8);
    running.push(eight);
    const up = (lines: string[]) => lines.filter((l) => l.startsWith('jouleflow_source_up{reader="nvml",device="gpu')).length;
    // 8 fake GPUs' discovery joins late on a loaded machine (init_timeout first): a generous bound.
    await waitFor(async () => (up(await metrics(eight)) === 8 ? true : undefined), 'the GPUs on /metrics', 60_000);
    const m8 = await metrics(eight);
    for (const gpu of ['gpu0', 'gpu7']) expect(m8.filter((l) => l.includes(`device="${gpu}"`)).length).toBe(budget('per GPU'));
    // the unattributed series every node has: one energy counter and one power gauge per component
    expect(ofJob(m8, 'unattributed').length).toBe(budget('unattributed, per node'));
  }, 120_000);

  test('series per running job, per ended job kept for --jobs.retention, and churn per ended job', async () => {
    const e = await gpuServe(8, ['--jobs.retention=3s']);
    running.push(e);
    await registerJobs(e, JOBS);
    const lines = await metrics(e);
    const perJob = JOBS.map((id) => ofJob(lines, id).length);
    expect(perJob).toEqual(JOBS.map(() => budget('per running job')));
    const seen = new Set(ofJob(lines, 'card-1').map((l) => l.replace(/ \S+$/, '')));

    expect((await fetch(`${e.url}/api/v1/jobs/card-1/end`, { method: 'POST' })).status).toBe(200);
    const ended = await waitFor(
      async () => {
        const l = ofJob(await metrics(e), 'card-1');
        return l.some((x) => x.startsWith('jouleflow_job_end_time_seconds')) ? l : undefined;
      },
      'card-1 to end',
      30_000,
    );
    expect(ended.length).toBe(budget('per ended job'));
    for (const l of ended) seen.add(l.replace(/ \S+$/, ''));
    expect(seen.size).toBe(budget('churn per ended job'));
    // after --jobs.retention the ended job is gone; the running ones are untouched
    await waitFor(async () => (ofJob(await metrics(e), 'card-1').length === 0 ? true : undefined), 'card-1 to leave /metrics', 30_000);
    const after = await metrics(e);
    expect(ofJob(after, 'card-2').length).toBe(budget('per running job'));
  }, 150_000);
});
