import type { GpuProcess } from '../core';

/**
 * Per-GPU shares of jobs over a sliding window of sampler ticks (design §2): weighted by NVML
 * per-process SM utilisation; where no process on that GPU reports any, by GPU memory held;
 * where none reports memory either, equally per process (by how many ticks each was seen).
 * Summing over a window gives time-sliced processes that NVML reports alternately their fair
 * share. Processes of no job weigh too: their part of the GPU stays unattributed.
 */

interface Entry {
  job: string | undefined;
  pid: number;
  sm?: number;
  mem?: number;
}

export type GpuBasis = 'sm' | 'memory' | 'equal';

export class GpuShareWindow {
  private readonly history = new Map<string, Entry[][]>();

  constructor(private readonly size: number) {}

  /** Adds one tick's processes; `jobOf` maps a pid to its job at this tick. */
  push(processes: readonly GpuProcess[], jobOf: (pid: number) => string | undefined): void {
    const now = new Map<string, Entry[]>();
    for (const p of processes) {
      const list = now.get(p.device) ?? [];
      list.push({ job: jobOf(p.pid), pid: p.pid, sm: p.smUtilPercent, mem: p.usedMemoryBytes });
      now.set(p.device, list);
    }
    for (const device of new Set([...this.history.keys(), ...now.keys()])) {
      const h = this.history.get(device) ?? [];
      h.push(now.get(device) ?? []);
      while (h.length > this.size) h.shift();
      if (h.every((t) => t.length === 0)) this.history.delete(device);
      else this.history.set(device, h);
    }
  }

  /** device → job → share (0..1, summing to at most 1 per device). */
  shares(): Map<string, { basis: GpuBasis; byJob: Map<string, number> }> {
    const out = new Map<string, { basis: GpuBasis; byJob: Map<string, number> }>();
    for (const [device, ticks] of this.history) {
      const entries = ticks.flat();
      const sm = entries.reduce((a, e) => a + (e.sm !== undefined && e.sm > 0 ? e.sm : 0), 0);
      const mem = entries.reduce((a, e) => a + (e.mem !== undefined && e.mem > 0 ? e.mem : 0), 0);
      const basis: GpuBasis = sm > 0 ? 'sm' : mem > 0 ? 'memory' : 'equal';
      const weight = (e: Entry) => (basis === 'sm' ? Math.max(0, e.sm ?? 0) : basis === 'memory' ? Math.max(0, e.mem ?? 0) : 1);
      const total = basis === 'sm' ? sm : basis === 'memory' ? mem : entries.length;
      const byJob = new Map<string, number>();
      if (total > 0) {
        for (const e of entries) {
          if (e.job === undefined) continue;
          byJob.set(e.job, (byJob.get(e.job) ?? 0) + weight(e) / total);
        }
      }
      out.set(device, { basis, byJob });
    }
    return out;
  }
}

/** Whether a GPU given by the user ("0", "gpu0", a UUID...) names the device label `device`. */
export function gpuMatches(spec: string, device: string): boolean {
  if (spec === device) return true;
  if (/^\d+$/.test(spec)) return device === `gpu${spec}` || device === spec || new RegExp(`(^|[^0-9])${spec}$`).test(device);
  return false;
}
