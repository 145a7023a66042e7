import type { Logger } from '../util/log';
import type { NvmlHandle, NvmlProcessInfo, NvmlProcessSample, NvmlResult } from './nvml-binding';
import { NVML, NvmlBinding } from './nvml-binding';
import type { DeviceError, GpuProcess, Reading, SampleResult } from './types';
import { SourceError } from './types';

/**
 * GPU energy from NVML (libnvidia-ml.so.1 through koffi). This runs inside the NVML worker thread
 * (nvml-worker.ts), with synchronous library calls; the exporter's NvmlSource (nvml.ts) talks to
 * it by messages and bounds every call by a timeout.
 *
 * Per GPU and tick: nvmlDeviceGetTotalEnergyConsumption (mJ since driver load) as a `counter`
 * reading, source "nvml", with the highest power limit the GPU can be set to (else the enforced
 * limit, which an admin may raise at runtime) as the impossible-delta bound. A GPU whose
 * counter answers NOT_SUPPORTED (pre-Volta, some vGPU) switches for good to power sampling
 * (nvmlDeviceGetPowerUsage) as a `power` reading, source "nvml-power", which the model integrates
 * by the trapezoid rule. A GPU that is lost or fails otherwise goes into the tick's errors; the
 * others go on. Compute processes and their SM utilisation go into gpuProcesses for attribution.
 *
 * MIG: energy and power are whole-GPU values read on the parent device, which is what is
 * reported; per-process SM utilisation is not available in MIG mode, so its processes carry only
 * their memory (attribution then falls back to memory: docs/design.md, section 3).
 */

/** What the source knows about one GPU (for the landing page, job GPU matching by UUID, tests). */
export interface NvmlDeviceInfo {
  index: number;
  /** The `device` label: "gpu<index>" (NVML index order, i.e. PCI bus order). */
  device: string;
  name: string;
  uuid: string;
  pciBusId: string;
  powerLimitWatts?: number;
  /** Bound for the counter's impossible-delta check: the maximum settable limit, else the enforced one, else DEFAULT_GPU_MAX_WATTS. */
  maxPowerWatts: number;
  migEnabled: boolean;
  /** "counter" (energy counter) or "power" (sampled power, the counter being unsupported). */
  method: 'counter' | 'power';
  /** Latest values, refreshed every tick where supported. */
  temperatureCelsius?: number;
  utilizationGpuPercent?: number;
  utilizationMemoryPercent?: number;
  powerWatts?: number;
}

interface Gpu {
  info: NvmlDeviceInfo;
  handle: NvmlHandle;
  /** Newest process-utilisation sample seen (µs), passed back as lastSeenTimeStamp. */
  lastSeen: bigint;
  /** Return codes already logged for optional queries (processes, utilisation), to log each once. */
  noted: Set<string>;
  /** Pids seen on the last tick, for the change log. */
  pids?: string;
}

interface GpuRead {
  reading?: Reading;
  error?: DeviceError;
  processes: GpuProcess[];
}

export const NVML_SOURCE = 'nvml';
/**
 * Counter bound for a GPU whose power limits NVML does not report: above any GPU sold today
 * (B200/GB200 boards: 1000–1200 W), so that a corrupt counter still cannot pass as energy.
 */
export const DEFAULT_GPU_MAX_WATTS = 1500;
/** Temperature and utilisation (informational, not needed for energy) are refreshed every this many ticks. */
const INFO_EVERY = 10;
export const NVML_POWER_SOURCE = 'nvml-power';

function reasonFor(ret: number): string {
  switch (ret) {
    case NVML.ERROR_GPU_IS_LOST:
      return 'gpu_lost';
    case NVML.ERROR_NO_PERMISSION:
      return 'permission';
    case NVML.ERROR_RESET_REQUIRED:
      return 'reset_required';
    default:
      return 'read';
  }
}

/** Mean SM utilisation per pid over the samples NVML returned since the last read. */
export function smUtilByPid(samples: readonly NvmlProcessSample[]): Map<number, number> {
  const acc = new Map<number, { sum: number; n: number }>();
  for (const s of samples) {
    const a = acc.get(s.pid) ?? { sum: 0, n: 0 };
    a.sum += s.smUtil;
    a.n++;
    acc.set(s.pid, a);
  }
  return new Map([...acc].map(([pid, a]) => [pid, a.sum / a.n]));
}

export class NvmlReader {
  private nvml: NvmlBinding | undefined;
  private gpus: Gpu[] = [];
  private initialised: Promise<boolean> | undefined;
  private closed = false;
  private samples = 0;

  /** `onCallDone`: called after each NVML call returns (the worker's heartbeat). */
  constructor(
    private readonly library: string,
    private readonly log: Logger,
    private readonly onCallDone?: () => void,
  ) {}

  /** The GPUs found at init, with their latest state. */
  get devices(): readonly NvmlDeviceInfo[] {
    return this.gpus.map((g) => g.info);
  }

  /** Idempotent. False (after one info line) when there is no NVML library, no driver or no GPU. */
  init(): Promise<boolean> {
    this.initialised ??= this.discover();
    return this.initialised;
  }

  private async discover(): Promise<boolean> {
    const library = this.library;
    let nvml: NvmlBinding;
    try {
      nvml = await NvmlBinding.open(library, 'sync');
      nvml.onCallDone = this.onCallDone;
    } catch (err) {
      this.log.info('NVML library not available; no GPU energy from NVML', { library, err: (err as Error).message });
      return false;
    }
    const ret = await nvml.init();
    if (ret !== NVML.SUCCESS) {
      this.log.info('NVML did not initialise; no GPU energy from NVML', { library, err: nvml.errorString(ret) });
      return false;
    }
    const count = await nvml.deviceCount();
    const n = count.ret === NVML.SUCCESS ? (count.value ?? 0) : 0;
    if (n === 0) {
      const why = count.ret === NVML.SUCCESS ? 'no GPU' : nvml.errorString(count.ret);
      this.log.info('NVML found no GPU; no GPU energy from NVML', { library, err: why });
      await nvml.shutdown();
      return false;
    }
    const found = await Promise.all(Array.from({ length: n }, (_, i) => this.openGpu(nvml, i)));
    this.gpus = found.filter((g): g is Gpu => g !== undefined);
    if (this.gpus.length === 0) {
      this.log.info('NVML could not open any GPU; no GPU energy from NVML', { library, count: n });
      await nvml.shutdown();
      return false;
    }
    this.nvml = nvml;
    const driver = await nvml.driverVersion();
    this.log.info('NVML GPUs found', {
      driver: driver.value,
      gpus: this.gpus.map((g) => `${g.info.device}=${g.info.name}${g.info.migEnabled ? '(MIG)' : ''}`).join(','),
    });
    return true;
  }

  private async openGpu(nvml: NvmlBinding, index: number): Promise<Gpu | undefined> {
    const device = `gpu${index}`;
    const h = await nvml.handleByIndex(index);
    if (h.ret !== NVML.SUCCESS) {
      this.log.warn('NVML cannot open GPU; it is skipped', { device, err: nvml.errorString(h.ret) });
      return undefined;
    }
    const handle = h.value;
    const [name, uuid, pci, limit, constraints, mig] = await Promise.all([
      nvml.name(handle),
      nvml.uuid(handle),
      nvml.pciBusId(handle),
      nvml.enforcedPowerLimit(handle),
      nvml.powerLimitConstraints(handle),
      nvml.migMode(handle),
    ]);
    const powerLimitWatts = limit.value !== undefined && limit.value > 0 ? limit.value / 1000 : undefined;
    const settableMax = constraints.value !== undefined && constraints.value.max > 0 ? constraints.value.max / 1000 : undefined;
    return {
      handle,
      lastSeen: 0n,
      noted: new Set(),
      info: {
        index,
        device,
        name: name.value ?? 'unknown',
        uuid: uuid.value ?? '',
        pciBusId: pci.value ?? '',
        powerLimitWatts,
        // The enforced limit can be raised later (nvidia-smi -pl, DCGM power capping): bounding by it
        // would drop every interval drawing more than twice the old cap as a "counter reset".
        maxPowerWatts:
          settableMax !== undefined || powerLimitWatts !== undefined
            ? Math.max(settableMax ?? 0, powerLimitWatts ?? 0)
            : DEFAULT_GPU_MAX_WATTS,
        migEnabled: mig.value?.current === 1,
        method: 'counter',
      },
    };
  }

  async sample(): Promise<SampleResult> {
    const nvml = this.nvml;
    if (!nvml || this.closed) throw new SourceError('closed', 'NVML source is closed');
    const withInfo = this.samples++ % INFO_EVERY === 0;
    const reads = await Promise.all(this.gpus.map((g) => this.readGpu(nvml, g, withInfo)));
    const readings: Reading[] = [];
    const errors: DeviceError[] = [];
    const gpuProcesses: GpuProcess[] = [];
    for (const r of reads) {
      if (r.reading) readings.push(r.reading);
      if (r.error) errors.push(r.error);
      gpuProcesses.push(...r.processes);
    }
    this.logProcessChanges(gpuProcesses);
    if (readings.length === 0 && errors.length > 0) throw new SourceError(errors[0].reason, `${errors[0].device}: ${errors[0].message}`);
    return { readings, errors, gpuProcesses };
  }

  private async readGpu(nvml: NvmlBinding, g: Gpu, withInfo: boolean): Promise<GpuRead> {
    const { info, handle } = g;
    const full = !info.migEnabled; // utilisation queries answer NOT_SUPPORTED in MIG mode
    const [energy, procs, util, temp] = await Promise.all([
      this.readEnergy(nvml, g),
      this.readProcesses(nvml, g),
      withInfo && full ? nvml.utilization(handle) : undefined,
      withInfo ? nvml.temperature(handle) : undefined,
    ]);
    if (energy.error) return { error: energy.error, processes: [] };
    if (util?.value) {
      info.utilizationGpuPercent = util.value.gpu;
      info.utilizationMemoryPercent = util.value.memory;
    }
    if (temp?.value !== undefined) info.temperatureCelsius = temp.value;
    return { reading: energy.reading, processes: procs };
  }

  /** Compute processes, then (when there are any, outside MIG) their SM utilisation since the last read. */
  private async readProcesses(nvml: NvmlBinding, g: Gpu): Promise<GpuProcess[]> {
    const procs = await nvml.computeProcesses(g.handle);
    if (procs.ret !== NVML.SUCCESS || !procs.value) {
      this.noteOnce(nvml, g, 'processes', procs.ret);
      return [];
    }
    if (procs.value.length === 0) return [];
    const samples = g.info.migEnabled ? undefined : await nvml.processUtilization(g.handle, g.lastSeen);
    return this.processes(nvml, g, procs.value, samples);
  }

  private async readEnergy(nvml: NvmlBinding, g: Gpu): Promise<{ reading?: Reading; error?: DeviceError }> {
    const { info, handle } = g;
    const base = { component: 'compute', domain: 'gpu', device: info.device } as const;
    if (info.method === 'counter') {
      const e = await nvml.totalEnergy(handle);
      if (e.ret === NVML.SUCCESS && e.value !== undefined) {
        return { reading: { ...base, kind: 'counter', source: NVML_SOURCE, joules: e.value / 1000, maxPowerWatts: info.maxPowerWatts } };
      }
      if (e.ret !== NVML.ERROR_NOT_SUPPORTED && e.ret !== NVML.ERROR_FUNCTION_NOT_FOUND) return { error: this.deviceError(nvml, g, e.ret) };
      info.method = 'power';
      this.log.info('GPU has no energy counter; integrating sampled power instead', { device: info.device, method: NVML_POWER_SOURCE });
    }
    const p = await nvml.powerUsage(handle);
    if (p.ret !== NVML.SUCCESS || p.value === undefined) return { error: this.deviceError(nvml, g, p.ret) };
    info.powerWatts = p.value / 1000;
    return { reading: { ...base, kind: 'power', source: NVML_POWER_SOURCE, watts: p.value / 1000 } };
  }

  private deviceError(nvml: NvmlBinding, g: Gpu, ret: number): DeviceError {
    return { device: g.info.device, reason: reasonFor(ret), message: nvml.errorString(ret) };
  }

  private processes(
    nvml: NvmlBinding,
    g: Gpu,
    procs: readonly NvmlProcessInfo[],
    samples: NvmlResult<NvmlProcessSample[]> | undefined,
  ): GpuProcess[] {
    const device = g.info.device;
    const gpu = g.info.uuid ? { device, gpuUuid: g.info.uuid } : { device };
    let sm: Map<number, number> | undefined;
    if (samples?.ret === NVML.SUCCESS && samples.value && samples.value.length > 0) {
      sm = smUtilByPid(samples.value);
      for (const s of samples.value) if (s.timeStamp > g.lastSeen) g.lastSeen = s.timeStamp;
    } else if (samples && samples.ret !== NVML.ERROR_NOT_FOUND) {
      this.noteOnce(nvml, g, 'process utilisation', samples.ret);
    }
    // One entry per pid: under MIG a process can appear once per instance it uses.
    const byPid = new Map<number, GpuProcess>();
    for (const p of procs) {
      const prev = byPid.get(p.pid);
      const mem = p.usedGpuMemory;
      if (prev) {
        // Unknown for one instance means unknown in total (a partial sum would understate it).
        prev.usedMemoryBytes = prev.usedMemoryBytes === undefined || mem === undefined ? undefined : prev.usedMemoryBytes + mem;
        continue;
      }
      // With fresh samples, a running process without one had no SM activity in the window;
      // without any (NOT_FOUND, MIG, unsupported) its share is unknown and left out.
      byPid.set(p.pid, { ...gpu, pid: p.pid, usedMemoryBytes: mem, smUtilPercent: sm ? (sm.get(p.pid) ?? 0) : undefined });
    }
    return [...byPid.values()];
  }

  /** Debug line whenever the set of processes on a GPU changes (what attribution will see). */
  private logProcessChanges(procs: readonly GpuProcess[]): void {
    for (const g of this.gpus) {
      const mine = procs.filter((p) => p.device === g.info.device);
      const key = mine
        .map((p) => p.pid)
        .sort((a, b) => a - b)
        .join(',');
      if (key === g.pids) continue;
      g.pids = key;
      const list = mine.map((p) => `${p.pid}(mem=${Math.round((p.usedMemoryBytes ?? 0) / 2 ** 20)}MiB,sm=${p.smUtilPercent ?? '?'}%)`);
      this.log.debug('GPU processes changed', { device: g.info.device, processes: list.join(' ') || 'none' });
    }
  }

  private noteOnce(nvml: NvmlBinding, g: Gpu, what: string, ret: number): void {
    const key = `${what}:${ret}`;
    if (g.noted.has(key)) return;
    g.noted.add(key);
    this.log.debug(`NVML ${what} query unavailable on this GPU`, { device: g.info.device, err: nvml.errorString(ret) });
  }

  /** Waits (bounded) for reads still in flight, then nvmlShutdown. The library stays loaded. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const nvml = this.nvml;
    if (!nvml) return;
    if (!(await nvml.whenIdle(3000))) {
      this.log.warn('NVML calls still running at shutdown; skipping nvmlShutdown', { pending: nvml.pending });
      return;
    }
    await nvml.shutdown();
  }
}
