import type { GpuProcess } from '../core';

/**
 * Per-GPU shares of jobs in one sampler tick (docs/design.md, section 3), from the processes NVML reports
 * on each GPU in that tick only: weighted by per-process SM utilisation; where no process on that
 * GPU reports any, by GPU memory held (MIG and idle contexts); where none reports memory either,
 * equally per process. A process that left a GPU gets nothing from the tick after it left, and
 * time-sliced processes that NVML reports alternately get the whole GPU in the ticks they ran,
 * which is their fair share over time. Processes of no job weigh too: their part stays unattributed.
 */

export type GpuBasis = 'sm' | 'memory' | 'equal';

export interface GpuShare {
  basis: GpuBasis;
  /** job → share (0..1, summing to at most 1 per device). */
  byJob: Map<string, number>;
}

/** device → this tick's split; `jobOf` maps a pid to its job at this tick. */
export function gpuShares(processes: readonly GpuProcess[], jobOf: (pid: number) => string | undefined): Map<string, GpuShare> {
  const byDevice = new Map<string, GpuProcess[]>();
  for (const p of processes) {
    const list = byDevice.get(p.device);
    if (list) list.push(p);
    else byDevice.set(p.device, [p]);
  }
  const out = new Map<string, GpuShare>();
  for (const [device, list] of byDevice) {
    const positive = (v: number | undefined) => (v !== undefined && v > 0 ? v : 0);
    const sm = list.reduce((a, p) => a + positive(p.smUtilPercent), 0);
    const mem = list.reduce((a, p) => a + positive(p.usedMemoryBytes), 0);
    const basis: GpuBasis = sm > 0 ? 'sm' : mem > 0 ? 'memory' : 'equal';
    const weight = (p: GpuProcess) => (basis === 'sm' ? positive(p.smUtilPercent) : basis === 'memory' ? positive(p.usedMemoryBytes) : 1);
    const total = basis === 'sm' ? sm : basis === 'memory' ? mem : list.length;
    const byJob = new Map<string, number>();
    for (const p of list) {
      const job = jobOf(p.pid);
      if (job !== undefined) byJob.set(job, (byJob.get(job) ?? 0) + weight(p) / total);
    }
    out.set(device, { basis, byJob });
  }
  return out;
}

/** An NVIDIA GPU UUID as NVML reports it (nvidia-smi -L, CUDA_VISIBLE_DEVICES): "GPU-" and a UUID. */
export const GPU_UUID = /^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether a GPU given by the user (an index "0", a device label "gpu0", a UUID "GPU-…") names the
 * GPU a process runs on. A UUID is resolved against the UUID the GPU source reported with the
 * process (GpuProcess.gpuUuid), never by asking the driver from here.
 */
export function gpuMatches(spec: string, gpu: Pick<GpuProcess, 'device' | 'gpuUuid'>): boolean {
  const { device } = gpu;
  if (spec === device) return true;
  if (GPU_UUID.test(spec)) return gpu.gpuUuid !== undefined && gpu.gpuUuid.toLowerCase() === spec.toLowerCase();
  if (/^\d+$/.test(spec)) return device === `gpu${spec}` || device === spec || new RegExp(`(^|[^0-9])${spec}$`).test(device);
  return false;
}
