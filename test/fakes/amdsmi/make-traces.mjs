// Builds the fake amdsmi's traces (test/amdsmi/traces/) from the shared NVIDIA H200 recordings:
// `node test/fakes/amdsmi/make-traces.mjs`. No AMD GPU recording exists in this project, so the
// power and energy series are the H200's, re-expressed the way amdsmi reports them: power in whole
// watts, energy as an accumulator in units of counter_resolution_uj (15.259 µJ, the resolution
// amdsmi reports on MI200/MI300-class GPUs), per-process GFX engine time in cumulative ns.
import { readFileSync, writeFileSync } from 'fs';
import { dirname, join } from 'path';
import { fileURLToPath } from 'url';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, '../../fixtures/nvidia-h200');
const out = join(here, '../../amdsmi/traces');
const RES_UJ = 15.259;
const note =
  'Derived from the NVIDIA H200 recording named in derived_from (no AMD recording exists here): power_w = round(power_mw / 1000), ' +
  'energy_acc = round(energy_mj * 1000 / counter_resolution_uj), gfx_ns = cumulative sm_util% x dt. Samples: [t, power_w, energy_acc, [[pid, vram_bytes, gfx_ns], ...]].';

function convert(gpu, i) {
  const gfx = new Map();
  let prevT;
  const samples = gpu.samples.map((s) => {
    const dt = prevT === undefined ? 0 : s.t - prevT;
    prevT = s.t;
    const procs = (s.procs ?? []).map((p) => {
      const ns = (gfx.get(p.pid) ?? 0) + Math.round(((p.sm_util ?? 0) / 100) * dt * 1e9);
      gfx.set(p.pid, ns);
      return [p.pid, p.used_mem ?? 0, ns];
    });
    return [s.t, Math.round(s.power_mw / 1000), Math.round((Number(s.energy_mj) * 1000) / RES_UJ), procs];
  });
  return {
    market_name: 'AMD Instinct MI300X',
    uuid: `a1ff74a1-0000-1000-80e6-${(0x2f7e8a9c1d40 + i).toString(16).padStart(12, '0')}`,
    power_cap_w: Math.round((gpu.power_limit_mw ?? 700000) / 1000),
    samples,
  };
}

for (const [file, name] of [
  ['trace.json', 'mi300x-matmul.json'],
  ['two-gpu-trace.json', 'mi300x-two-gpu.json'],
]) {
  const src = JSON.parse(readFileSync(join(fixtures, file), 'utf8'));
  const gpus = (src.gpus ?? [{ ...src, power_limit_mw: src.power_limit_mw }]).map(convert);
  const body = { derived_from: `test/fixtures/nvidia-h200/${file}`, note, counter_resolution_uj: RES_UJ, gpus };
  writeFileSync(join(out, name), JSON.stringify(body) + '\n');
  console.log(`wrote ${join(out, name)}`);
}
