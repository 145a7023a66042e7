import { type ChildProcess, spawn, spawnSync } from 'child_process';
import { existsSync, readFileSync } from 'fs';
import { join } from 'path';
import { ensureBuilt } from '../helpers/exporter-process';
import { REPO, requireBinary, sleep } from '../prometheus/lib';
import { alive } from '../helpers/process-alive';

/**
 * `npm run demo` end to end (scripts/demo.mjs, which the compose `demo` profile runs too): the
 * real exporter in demo mode on a free loopback port, the fake libnvidia-ml replaying the H200
 * training trace, the placeholder trainer registered as job demo-gpt2-small. Proves the demo is
 * unmistakable (build_info mode="demo", landing-page banner), that the replayed GPU's energy
 * reaches the job, and that stopping the demo stops its processes.
 */

const LIB = join(REPO, 'test/fakes/nvml/build/libnvidia-ml.so.1');
const JOB = 'demo-gpt2-small';
const TRACE = join(REPO, 'test/fixtures/nvidia-h200/training-trace.json');
/** The recording's batch (issue 15): 16 sequences of 1 024 tokens per step. */
const TOKENS_PER_STEP = 16 * 1024;

interface TraceSample {
  t: number;
  energy_mj: number;
  procs?: unknown[];
}

let demo: ChildProcess | undefined;
let out = '';
let url = '';

function sample(text: string, re: RegExp): number | undefined {
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

async function metrics(): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

beforeAll(async () => {
  if (!existsSync(LIB)) {
    requireBinary('gcc', 'gcc');
    const r = spawnSync('sh', [join(REPO, 'test/fakes/nvml/build.sh')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`building the fake NVML library failed:\n${r.stdout}${r.stderr}`);
  }
  ensureBuilt();
  demo = spawn(process.execPath, [join(REPO, 'scripts/demo.mjs')], {
    cwd: REPO,
    env: { ...process.env, JOULEFLOW_DEMO_LISTEN: '127.0.0.1:0', JOULEFLOW_DEMO_HOURS: '0.05', JOULEFLOW_JOBS_TOKEN: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  demo.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  demo.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const end = Date.now() + 60_000; // a loaded machine starts the demo (exporter, trainer, fake NVML) slowly
  while (!url) {
    const m = /^demo ready (http:\/\/\S+)$/m.exec(out);
    if (m) url = m[1];
    else if (demo.exitCode !== null || Date.now() > end) throw new Error(`the demo did not start:\n${out}`);
    else await sleep(100);
  }
}, 90_000);

afterAll(async () => {
  if (demo && demo.exitCode === null) {
    demo.kill('SIGKILL');
  }
});

describe('npm run demo (scripts/demo.mjs)', () => {
  test('demo mode is unmistakable: jouleflow_build_info{mode="demo"} and the landing-page banner', async () => {
    expect(await metrics()).toMatch(/^jouleflow_build_info\{[^}]*mode="demo"[^}]*\} 1$/m);
    expect(await (await fetch(`${url}/`)).text()).toContain('DEMO MODE');
  });

  test('the fake NVML GPU is up and the replayed job is registered with its name', async () => {
    // A registered job's series appear with the next tick's snapshot, and the GPU once NVML's
    // discovery ends (it may outlast NVML's 2 s init wait on a loaded machine): wait (bounded).
    const info = new RegExp(`^jouleflow_job_info\\{job_id="${JOB}",job_name="GPT-2 small training[^"]*"`, 'm');
    const gpuUp = /^jouleflow_source_up\{reader="nvml",device="gpu0"\} 1$/m;
    let text = await metrics();
    for (const end = Date.now() + 30_000; !(info.test(text) && gpuUp.test(text)) && Date.now() < end; text = await metrics())
      await sleep(200);
    expect(text).toMatch(gpuUp);
    expect(text).toMatch(info);
  }, 60_000);

  test('the replayed GPU energy is attributed to the demo job', async () => {
    const jobCompute = new RegExp(`^jouleflow_job_energy_joules_total\\{job_id="${JOB}",component="compute"[^}]*\\} (\\S+)$`, 'm');
    const gpu = /^jouleflow_node_energy_joules_total\{component="compute",device="gpu0",source="nvml"\} (\S+)$/m;
    const first = await metrics();
    const j0 = sample(first, jobCompute) ?? 0;
    const g0 = sample(first, gpu) ?? 0;
    // the trace starts 2 s before training begins; the job's GPU share then dominates
    let j1 = j0;
    let g1 = g0;
    const end = Date.now() + 20_000;
    while (Date.now() < end) {
      await sleep(500);
      const text = await metrics();
      j1 = sample(text, jobCompute) ?? j1;
      g1 = sample(text, gpu) ?? g1;
      if (g1 - g0 > 500 && j1 - j0 > 0.5 * (g1 - g0)) break;
    }
    expect(g1 - g0).toBeGreaterThan(500);
    expect(j1 - j0).toBeGreaterThan(0.5 * (g1 - g0));
  }, 30_000);

  test('the demo job reports its reconstructed tokens; its J per token is within 1 % of the trace GPU energy per token', async () => {
    const trace = JSON.parse(readFileSync(TRACE, 'utf8')) as { samples: TraceSample[]; events: Array<{ event: string; steps?: number }> };
    const tokens = (trace.events.find((e) => e.event === 'train_end')?.steps ?? NaN) * TOKENS_PER_STEP;
    // The GPU energy while the trainer holds it: what the job is charged for (the idle prelude has no process).
    const busy = trace.samples.filter((s) => (s.procs ?? []).length > 0);
    const gpuJoules = (busy[busy.length - 1].energy_mj - busy[0].energy_mj) / 1000;
    const m = /replay epoch (\S+) = trace time (\S+)/.exec(out);
    expect(m).not.toBeNull();
    expect(await (await fetch(`${url}/`)).text()).toMatch(/token count is reconstructed from the recording.s step count and timing/);
    // Wait until the first loop's training is over and its last busy sample is 2 s behind the replay,
    // then until the exporter has ticked twice since (its ticks come late on a loaded machine): the
    // job's GPU energy is then final. The replay idles ~25 s before the next loop trains again.
    const [epoch, origin] = [Number(m![1]), Number(m![2])];
    const idleFrom = epoch + busy[busy.length - 1].t - origin + 2;
    while (Date.now() / 1000 < idleFrom) await sleep(500);
    // The demo reports the tokens once a second: also wait (within the idle stretch) for the final count.
    const ticks = async () => ((await (await fetch(`${url}/healthz`)).json()) as { ticks: number }).ticks;
    const worked = (t: string) => sample(t, new RegExp(`^jouleflow_job_work_total\\{job_id="${JOB}",unit="tokens"\\} (\\S+)$`, 'm'));
    const ticksAtIdle = await ticks();
    let text = await metrics();
    for (const until = Date.now() + 15_000; ((await ticks()) < ticksAtIdle + 2 || worked(text) !== tokens) && Date.now() < until;) {
      await sleep(100);
      text = await metrics();
    }
    expect(await ticks()).toBeGreaterThanOrEqual(ticksAtIdle + 2);
    expect(worked(text)).toBe(tokens);
    const report = (await (await fetch(`${url}/api/v1/jobs/${JOB}`)).json()) as {
      work: Array<{ unit: string; total: number; joulesPerUnit: Record<string, number> }>;
    };
    const perToken = report.work.find((w) => w.unit === 'tokens');
    expect(perToken?.total).toBe(tokens);
    const expected = gpuJoules / tokens; // ≈ 4.2 mJ per token on the H200
    process.stderr.write(`demo J/token: exporter ${perToken?.joulesPerUnit.compute} (compute), trace ${expected}\n`);
    expect(Math.abs((perToken?.joulesPerUnit.compute ?? 0) / expected - 1)).toBeLessThan(0.01);
  }, 120_000);

  test('SIGTERM stops the demo, its exporter and its trainer', async () => {
    const trainer = Number(/trainer pid (\d+)/.exec(out)?.[1]);
    expect(trainer).toBeGreaterThan(0);
    const exited = new Promise<number | null>((r) => demo!.once('exit', (code) => r(code)));
    demo!.kill('SIGTERM');
    expect(await exited).toBe(0);
    // killed with the demo (allow the kernel, on a loaded machine, a moment to reap it)
    for (const until = Date.now() + 15_000; alive(trainer) && Date.now() < until;) await sleep(100);
    expect(alive(trainer)).toBe(false);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  }, 60_000);
});
