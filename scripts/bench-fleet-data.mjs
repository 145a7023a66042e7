// The synthetic fleet of `npm run bench:fleet` (scripts/bench-fleet.mjs): the exporter's own
// families, labels and label values, with energy counters that conserve (Σ jobs + unattributed =
// node), generated 2 h at a time and backfilled into Prometheus (promtool) and VictoriaMetrics.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

// ---------------------------------------------------------------- the synthetic fleet
// Job slot s runs on nodes [s·N/J, (s+1)·N/J), one job after another, each JOB_HOURS long.
// Power (W): a GPU 640 training / 75 idle (± a deterministic wobble), 2 CPU packages 190/70,
// DRAM 45, one NVMe 9, one NIC 18 (training traffic 40); cooling 0.38 × IT (PUE 1.38). A job gets
// 92 % of compute, 85 % of transmit, 60 % of store and that share of cooling; the rest is
// unattributed, so Σ jobs + unattributed = node exactly, as the exporter guarantees.
const RETENTION = 900; // --jobs.retention 15m: ended jobs stay on /metrics that long

/** Bumped whenever the generated series or values change: a kept backfill of another version is redone. */
export const DATA_VERSION = 2;

/** The fleet over [END - HOURS, END]; END defaults to an hour back (nothing in the future), on the hour. */
export function fleet({ NODES, GPUS, JOBS, HOURS, STEP, JOB_HOURS, END = Math.floor(Date.now() / 1000 / 3600) * 3600 - 3600 }) {
  const BEGIN = END - HOURS * 3600;
  const STEPS = Math.floor((HOURS * 3600) / STEP);
  const inst = (n) => `node-${String(n).padStart(4, '0')}:10042`;
  const slotOf = (n) => Math.floor((n * JOBS) / NODES);
  const jobAt = (slot, t) => {
    const k = Math.floor((t - BEGIN) / (JOB_HOURS * 3600));
    const start = BEGIN + k * JOB_HOURS * 3600;
    return { id: `train-${slot}-${k}`, k, start, end: start + JOB_HOURS * 3600 };
  };
  const COMPONENTS = ['compute', 'transmit', 'store', 'cooling'];
  const METHOD = { compute: 'measured', transmit: 'estimated', store: 'measured', cooling: 'measured' };
  const SHARE = { compute: 0.92, transmit: 0.85, store: 0.6 };
  const wobble = (n, d, i) => 1 + 0.05 * Math.sin(n * 7.1 + d * 3.3 + i * 0.37);

  /** Node state: energy counters per device and per (job, component), cumulative since BEGIN. */
  function nodeState(n) {
    const devices = [
      ...Array.from({ length: GPUS }, (_, g) => ({ c: 'compute', d: `gpu${g}`, s: 'nvml', busy: 640, idle: 75 })),
      { c: 'compute', d: 'package-0', s: 'rapl', busy: 190, idle: 70 },
      { c: 'compute', d: 'package-1', s: 'rapl', busy: 190, idle: 70 },
      { c: 'compute', d: 'dram-0', s: 'rapl', busy: 45, idle: 45 },
      { c: 'transmit', d: 'mlx5_0:1', s: 'infiniband', busy: 40, idle: 18 },
      { c: 'store', d: 'nvme0n1', s: 'diskstats', busy: 9, idle: 9 },
    ];
    return {
      n,
      devices,
      dev: devices.map(() => 0),
      readers: [...new Set(devices.map((d) => d.s))],
      cooling: 0,
      jobs: new Map(),
      unattr: { compute: 0, transmit: 0, store: 0, cooling: 0 },
    };
  }

  /** Lines of one step (without the timestamp) for node state st at time t. */
  function stepLines(st, t, i, out) {
    const L = `instance="${inst(st.n)}",job="jouleflow"`;
    const job = jobAt(slotOf(st.n), t);
    const training = t - job.start >= 300; // 5 minutes of start-up
    const it = { compute: 0, transmit: 0, store: 0 };
    st.devices.forEach((d, k) => {
      const p = (training ? d.busy : d.idle) * wobble(st.n, k, i);
      st.dev[k] += p * STEP;
      it[d.c] += p * STEP;
      out.push(`jouleflow_node_energy_joules_total{${L},component="${d.c}",device="${d.d}",source="${d.s}"} ${st.dev[k].toFixed(3)}`);
      out.push(`jouleflow_node_power_watts{${L},component="${d.c}",device="${d.d}",source="${d.s}"} ${p.toFixed(2)}`);
    });
    const itTotal = it.compute + it.transmit + it.store;
    const cool = 0.38 * itTotal;
    st.cooling += cool;
    out.push(`jouleflow_node_energy_joules_total{${L},component="cooling",device="facility",source="model"} ${st.cooling.toFixed(3)}`);
    out.push(`jouleflow_node_power_watts{${L},component="cooling",device="facility",source="model"} ${(cool / STEP).toFixed(2)}`);
    // the running job, and the previous one while --jobs.retention keeps it
    if (!st.jobs.has(job.id)) st.jobs.set(job.id, { ...job, e: { compute: 0, transmit: 0, store: 0, cooling: 0 } });
    let jobIt = 0;
    const d = {};
    for (const c of ['compute', 'transmit', 'store']) {
      d[c] = it[c] * SHARE[c];
      jobIt += d[c];
    }
    d.cooling = itTotal > 0 ? (cool * jobIt) / itTotal : 0;
    for (const [id, j] of st.jobs) {
      const running = id === job.id;
      if (!running && t >= j.end + RETENTION) {
        st.jobs.delete(id);
        continue;
      }
      const JL = `${L},job_id="${id}"`;
      for (const c of COMPONENTS) {
        if (running) j.e[c] += d[c];
        out.push(`jouleflow_job_energy_joules_total{${JL},component="${c}",method="${METHOD[c]}"} ${j.e[c].toFixed(3)}`);
        if (running) out.push(`jouleflow_job_power_watts{${JL},component="${c}"} ${(d[c] / STEP).toFixed(2)}`);
      }
      out.push(`jouleflow_job_info{${JL},job_name="llm pretrain ${id}",user="team-${j.k % 3}",scheduler="slurm"} 1`);
      out.push(`jouleflow_job_start_time_seconds{${JL}} ${j.start}`);
      if (!running) out.push(`jouleflow_job_end_time_seconds{${JL}} ${j.end}`);
    }
    const all = { compute: it.compute, transmit: it.transmit, store: it.store, cooling: cool };
    for (const c of COMPONENTS) {
      st.unattr[c] += all[c] - d[c];
      out.push(
        `jouleflow_job_energy_joules_total{${L},job_id="unattributed",component="${c}",method="measured"} ${st.unattr[c].toFixed(3)}`,
      );
      out.push(`jouleflow_job_power_watts{${L},job_id="unattributed",component="${c}"} ${((all[c] - d[c]) / STEP).toFixed(2)}`);
    }
    out.push(`jouleflow_pue_ratio{${L}} ${itTotal ? ((itTotal + cool) / itTotal).toFixed(4) : 1}`);
    out.push(`jouleflow_grid_carbon_intensity_grams_per_kwh{${L},zone="FR"} 56`);
    out.push(`jouleflow_build_info{${L},version="0.1.0",node_version="v20",mode="normal"} 1`);
    // One reader per source that reads a device (the cooling model is no reader: it has no source_up).
    for (const s of st.readers) out.push(`jouleflow_source_up{${L},reader="${s}",device=""} 1`);
  }

  /**
   * Generates and backfills both stores, 2 h of data at a time (one Prometheus block each), in
   * bounded memory whatever the fleet's size: each step's lines go straight to the chunk's
   * OpenMetrics file (a write stream) and into a VictoriaMetrics import batch of ≤ IMPORT_LINES,
   * sent while the next batch is generated; promtool turns the previous chunk into a block while
   * the next one is generated (the machine has 2 cores).
   */
  async function backfill(vmUrl, blocksDir, work, log) {
    const nodes = Array.from({ length: NODES }, (_, n) => nodeState(n));
    const perChunk = Math.max(1, Math.floor(7200 / STEP));
    const progress = progressLog(log, STEPS);
    const importer = vmImporter(vmUrl);
    let series = 0;
    let samples = 0;
    let promtool = Promise.resolve();
    for (let i0 = 0; i0 < STEPS; i0 += perChunk) {
      const file = join(work, `chunk-${i0}.om`);
      const out = createWriteStream(file);
      const failed = new Promise((_, rej) => out.once('error', rej));
      failed.catch(() => {}); // raced below; an unobserved rejection would end the process first
      for (let i = i0; i < Math.min(STEPS, i0 + perChunk); i++) {
        const t = BEGIN + (i + 1) * STEP;
        const lines = [];
        for (const st of nodes) stepLines(st, t, i, lines);
        if (i === 0) series = lines.length;
        samples += lines.length;
        const seconds = ` ${t}\n`; // OpenMetrics timestamps are in seconds, the import API's in ms
        const ms = ` ${t}000\n`;
        if (!out.write(lines.join(seconds) + seconds)) await Promise.race([once(out, 'drain'), failed]);
        await importer.add(lines.join(ms) + ms, lines.length);
        progress(i + 1, samples);
      }
      out.end('# EOF\n');
      await Promise.race([once(out, 'finish'), failed]);
      await promtool; // one promtool at a time: it and this generator each have a core
      promtool = promtoolBlocks(file, blocksDir);
      promtool.catch(() => {}); // awaited at the next chunk or at the end
    }
    await importer.flush();
    await promtool;
    return { series, samples };
  }

  /** Node n's lines at the first step (test/fleet/bench-data.test.ts compares them with the exporter's). */
  function firstStep(n) {
    const lines = [];
    stepLines(nodeState(n), BEGIN + STEP, 0, lines);
    return lines;
  }

  return { BEGIN, END, backfill, firstStep };
}

// ≤ 100 000 lines (~15 MB) per request: VictoriaMetrics closes bigger ones on a busy machine
const IMPORT_LINES = 100_000;

/** VictoriaMetrics /api/v1/import/prometheus in batches, one request in flight while the next fills. */
function vmImporter(vmUrl) {
  let parts = [];
  let lines = 0;
  let inFlight = Promise.resolve();
  const send = async () => {
    const body = parts.join('');
    parts = [];
    lines = 0;
    await inFlight;
    inFlight = fetch(`${vmUrl}/api/v1/import/prometheus`, { method: 'POST', body }).then(async (res) => {
      if (!res.ok) throw new Error(`VictoriaMetrics import: ${res.status} ${await res.text()}`);
    });
    inFlight.catch(() => {}); // awaited before the next request or by flush()
  };
  return {
    async add(text, n) {
      parts.push(text);
      lines += n;
      if (lines >= IMPORT_LINES) await send();
    },
    async flush() {
      if (lines) await send();
      await inFlight;
    },
  };
}

/** promtool tsdb create-blocks-from openmetrics FILE DIR; removes FILE when done. */
function promtoolBlocks(file, blocksDir) {
  return new Promise((res, rej) => {
    const p = spawn('promtool', ['tsdb', 'create-blocks-from', 'openmetrics', '-q', file, blocksDir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (x) => (err = (err + x).slice(-4000)));
    p.once('error', rej);
    p.once('exit', (code) => {
      rmSync(file, { force: true });
      code === 0 ? res() : rej(new Error(`promtool create-blocks-from openmetrics: ${err.slice(-2000)}`));
    });
  });
}

/** Logs steps done, samples/s and the time left, at most every 30 s and at the end. */
function progressLog(log, total) {
  const t0 = performance.now();
  let last = t0;
  return (done, samples) => {
    const now = performance.now();
    if (now - last < 30_000 && done < total) return;
    last = now;
    const s = (now - t0) / 1000;
    const eta = done < total ? `, ${(((s / done) * (total - done)) / 60).toFixed(1)} min left` : '';
    log(
      `generated ${done}/${total} steps, ${samples.toLocaleString('en')} samples, ${Math.round(samples / s).toLocaleString('en')} samples/s${eta}`,
    );
  };
}
