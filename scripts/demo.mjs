#!/usr/bin/env node
// jouleflow demo for machines without a GPU (`npm run demo`, or `docker-compose --profile demo`).
//
// Runs the real exporter in demo mode (`serve --demo`: jouleflow_build_info{mode="demo"}, a
// banner on the landing page, a "Demo mode" annotation on the dashboards) against the fake
// libnvidia-ml (test/fakes/nvml), which replays a real NVIDIA H200 training trace (GPT-2 small,
// 75 s) looped for JOULEFLOW_DEMO_HOURS hours; a placeholder "trainer" process holds the GPU
// and is registered as job demo-gpt2-small through POST /api/v1/jobs. After the looped trace
// ends, the cycle starts again (the counters restart, which Prometheus handles).
//
// Environment:
//   JOULEFLOW_DEMO_LISTEN      listen address (default 127.0.0.1:10042; port 0 = any free port)
//   JOULEFLOW_DEMO_HOURS       hours of looped replay per cycle (default 4)
//   JOULEFLOW_FAKE_NVML_TRACE  the trace to replay (default test/fixtures/nvidia-h200/training-trace.json)
//   JOULEFLOW_JOBS_TOKEN       bearer token for the jobs API (generated when not given)
// Arguments after `--` go to `jouleflow serve`.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const MAIN = join(ROOT, 'exporter/dist/main.js');
const RECORDED_WORK = join(ROOT, 'exporter/dist/jobs/recorded-work.js');
const LIB = join(ROOT, 'test/fakes/nvml/build/libnvidia-ml.so.1');
const TRACE = resolve(ROOT, process.env.JOULEFLOW_FAKE_NVML_TRACE || 'test/fixtures/nvidia-h200/training-trace.json');
const LISTEN = process.env.JOULEFLOW_DEMO_LISTEN || '127.0.0.1:10042';
const HOURS = Number(process.env.JOULEFLOW_DEMO_HOURS || 4);
const JOB_ID = 'demo-gpt2-small';
const JOB_NAME = 'GPT-2 small training (replayed NVIDIA H200 trace)';
const extraArgs = process.argv.includes('--') ? process.argv.slice(process.argv.indexOf('--') + 1) : [];

function log(msg) {
  process.stderr.write(`[jouleflow demo] ${msg}\n`);
}
function fail(msg) {
  log(`error: ${msg}`);
  process.exit(1);
}

const host = LISTEN.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
const loopback = host === 'localhost' || host === '::1' || /^127\./.test(host);
// Always a token: the demo registers a `gpus` job, which only root or the token may (README, jobs API).
const token = process.env.JOULEFLOW_JOBS_TOKEN || randomBytes(24).toString('hex');

/**
 * The trace looped to `hours`: decimated to ≥ 250 ms between samples (the exporter samples every
 * second), rotated to start 2 s before the training starts (the recording's idle prelude then
 * closes each loop), the recorded energy-counter deltas re-accumulated across loops (power × 250 ms
 * at each seam), and the GPU's process replaced by `pid`.
 */
export function loopTrace(trace, hours, pid) {
  const src = trace.samples;
  const kept = [];
  for (const s of src) {
    if (kept.length === 0 || s.t - kept[kept.length - 1].t >= 0.25 || s === src[src.length - 1]) kept.push(s);
  }
  const busy = kept.findIndex((s) => (s.procs ?? []).length > 0);
  let start = 0;
  if (busy > 0) while (start + 1 < kept.length && kept[busy].t - kept[start + 1].t >= 2) start++;
  const order = [...kept.slice(start), ...kept.slice(0, start)].map((s) => kept.indexOf(s));
  const gap = 0.25;
  const period = order.reduce((sum, ix, k) => sum + (k === 0 ? 0 : ix === order[k - 1] + 1 ? kept[ix].t - kept[ix - 1].t : gap), 0) + gap;
  const loops = Math.max(1, Math.ceil((hours * 3600) / period));
  const samples = [];
  let t = 0;
  let energy = kept[order[0]].energy_mj;
  let prev;
  for (let k = 0; k < loops; k++) {
    for (const ix of order) {
      const s = kept[ix];
      if (prev !== undefined) {
        const consecutive = ix === prev + 1;
        t += consecutive ? s.t - kept[prev].t : gap;
        energy += consecutive ? Math.max(0, s.energy_mj - kept[prev].energy_mj) : Math.round(kept[prev].power_mw * gap);
      }
      samples.push({
        t: Math.round(t * 1000) / 1000,
        power_mw: s.power_mw,
        energy_mj: energy,
        util_gpu: s.util_gpu ?? 0,
        procs: (s.procs ?? []).length ? [{ pid, used_mem: s.procs[0].used_mem ?? s.procs[0].usedMem ?? 0 }] : [],
      });
      prev = ix;
    }
  }
  // The recording's events on the first loop's clock (an event keeps its offset from the sample before it).
  const events = (trace.events ?? []).flatMap((e) => {
    const at = (t) => {
      const ix = kept.findLastIndex((s) => s.t <= t);
      return ix < 0 ? undefined : samples[order.indexOf(ix)].t + (t - kept[ix].t);
    };
    const t = at(e.t);
    return t === undefined ? [] : [{ ...e, t, ...(e.t_end !== undefined ? { t_end: at(e.t_end) } : {}) }];
  });
  return {
    what: `${trace.what ?? 'recorded trace'} (looped ${loops}× by the jouleflow demo)`,
    name: trace.name,
    uuid: trace.uuid,
    period,
    /** The recording's time at replay offset 0. */
    origin: kept[order[0]].t,
    events,
    samples,
  };
}

/**
 * The tokens the replayed training has done `offset` seconds into the looped trace: every loop
 * repeats the recording's 339 steps, spread over its training time outside checkpoints
 * (jobs/recorded-work.ts). Reconstructed: the recording has the step count, not the tokens.
 */
export function tokensAt(looped, offset) {
  const work = recorded.reconstructSteps(looped.events);
  const loop = Math.floor(offset / looped.period);
  return (loop * work.steps + work.stepsAt(offset - loop * looped.period)) * recorded.RECORDED_TOKENS_PER_STEP;
}

let exporter;
let trainer;
let work;
let stopping = false;
let cycleTimer;
let workTimer;
/** exporter/src/jobs/recorded-work.ts as built: loaded once main() has checked that the build is there. */
let recorded;

function cleanup() {
  clearTimeout(cycleTimer);
  clearInterval(workTimer);
  if (trainer && trainer.exitCode === null) trainer.kill('SIGKILL');
  if (work) rmSync(work, { recursive: true, force: true });
}

/** Reports the reconstructed token count every second, as a trainer would (POST /jobs/{id}/work). */
function reportTokens(url, looped, epoch) {
  const headers = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
  let warned = false;
  const post = async () => {
    const total = tokensAt(looped, Math.max(0, Date.now() / 1000 - epoch));
    const res = await fetch(`${url}/api/v1/jobs/${JOB_ID}/work`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ unit: 'tokens', total }),
    });
    if (res.status !== 200 && !warned) {
      warned = true;
      log(`reporting tokens failed: ${res.status} ${await res.text()}`);
    }
  };
  workTimer = setInterval(() => void post().catch(() => undefined), 1000);
  return post();
}

async function registerJob(url) {
  const headers = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const body = JSON.stringify({ id: JOB_ID, name: JOB_NAME, pids: [trainer.pid], gpus: [0], labels: { user: 'demo', scheduler: 'demo' } });
  for (let i = 0; i < 50; i++) {
    const res = await fetch(`${url}/api/v1/jobs`, { method: 'POST', headers, body }).catch((err) => ({
      status: 0,
      text: async () => err.message,
    }));
    if (res.status === 201 || res.status === 200) return true;
    if (res.status === 404) {
      log('the exporter has no jobs API (POST /api/v1/jobs → 404): GPU energy stays unattributed');
      return false;
    }
    if (res.status === 409) return true; // already registered (ledger kept it)
    if (res.status >= 400 && res.status !== 503) {
      log(`registering the job failed: ${res.status} ${await res.text()}`);
      return false;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

async function cycle() {
  work = mkdtempSync(join(tmpdir(), 'jouleflow-demo-'));
  // the "training job": a process that holds the replayed GPU and uses a little CPU
  trainer = spawn(
    process.execPath,
    ['-e', 'process.title = "jouleflow-demo-trainer"; setInterval(() => { const e = Date.now() + 20; while (Date.now() < e); }, 200);'],
    {
      stdio: 'ignore',
    },
  );
  const trace = JSON.parse(readFileSync(TRACE, 'utf8'));
  if (!Array.isArray(trace.samples)) fail(`${TRACE}: expected { "samples": [...] } (a one-GPU trace)`);
  const looped = join(work, 'trace.json');
  const replay = loopTrace(trace, HOURS, trainer.pid);
  writeFileSync(looped, JSON.stringify(replay));
  // Replay time 0 is this Unix time, so the reported tokens follow the replayed GPU on one clock.
  const epoch = Date.now() / 1000;

  const args = [
    MAIN,
    'serve',
    '--demo',
    `--nvml.library=${LIB}`,
    `--web.listen-address=${LISTEN}`,
    `--jobs.ledger=${join(work, 'jobs.db')}`,
    ...extraArgs,
  ];
  exporter = spawn(process.execPath, args, {
    env: {
      ...process.env,
      JOULEFLOW_DEMO: '1',
      JOULEFLOW_FAKE_NVML_TRACE: looped,
      JOULEFLOW_FAKE_NVML_EPOCH: String(epoch),
      JOULEFLOW_JOBS_TOKEN: token,
    },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let url;
  let buffered = '';
  const ready = new Promise((resolveUrl, reject) => {
    exporter.stderr.on('data', (d) => {
      process.stderr.write(d);
      if (url) return;
      buffered += d.toString();
      const m = /url=(http:\/\/[^\s/]+)/.exec(buffered);
      if (m) resolveUrl((url = m[1]));
    });
    exporter.once('exit', (code) => reject(new Error(`the exporter exited with ${code}`)));
  });
  exporter.once('exit', (code) => {
    if (stopping) return;
    cleanup();
    log(`the exporter exited with ${code}`);
    process.exit(code ?? 1);
  });
  try {
    url = await ready;
  } catch (err) {
    cleanup();
    fail(err.message);
  }
  const registered = await registerJob(url);
  if (registered) await reportTokens(url, replay, epoch).catch((err) => log(`reporting tokens failed: ${err.message}`));
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const nvmlUp = /jouleflow_source_up\{reader="nvml",device=""\} 1/.test(metrics);
  log(
    [
      `DEMO MODE ready at ${url}/ (metrics ${url}/metrics)`,
      `replaying ${TRACE} looped for ${HOURS} h through the fake libnvidia-ml`,
      registered ? `job ${JOB_ID} ("${JOB_NAME}") registered, trainer pid ${trainer.pid}` : 'no job registered',
      registered
        ? `its tokens (jouleflow_job_work_total) are RECONSTRUCTED from the recording's step count and timing (${recorded.reconstructSteps(replay.events).steps} steps of ${recorded.RECORDED_TOKENS_PER_STEP} tokens per loop), not counted by a trainer; replay epoch ${epoch} = trace time ${replay.origin}`
        : '',
      nvmlUp ? 'NVML source up' : 'warning: the NVML source is not up yet (see the landing page)',
      !loopback && !process.env.JOULEFLOW_JOBS_TOKEN ? `jobs API token (generated): ${token}` : '',
    ]
      .filter(Boolean)
      .join('\n[jouleflow demo]   '),
  );
  process.stdout.write(`demo ready ${url}\n`);
  cycleTimer = setTimeout(() => void restart(), HOURS * 3600 * 1000);
}

async function stopExporter() {
  if (!exporter || exporter.exitCode !== null) return;
  const exited = new Promise((r) => exporter.once('exit', r));
  exporter.kill('SIGTERM');
  await exited;
}

async function restart() {
  log('the looped trace has ended: starting a new cycle');
  stopping = true;
  await stopExporter();
  cleanup();
  stopping = false;
  await cycle();
}

async function main() {
  for (const [file, fix] of [
    [MAIN, 'build the exporter: npm run build'],
    [LIB, 'build the fake NVML library: npm run build:fake-nvml (needs gcc)'],
    [TRACE, 'set JOULEFLOW_FAKE_NVML_TRACE to a trace recorded on a GPU (test/fixtures/nvidia-h200/)'],
  ]) {
    if (!existsSync(file)) fail(`${file} is missing; ${fix}`);
  }
  recorded = await import(pathToFileURL(RECORDED_WORK).href);
  if (!(HOURS > 0)) fail(`JOULEFLOW_DEMO_HOURS must be a positive number, got ${process.env.JOULEFLOW_DEMO_HOURS}`);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      stopping = true;
      void stopExporter().then(() => {
        cleanup();
        process.exit(0);
      });
    });
  }
  await cycle();
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
