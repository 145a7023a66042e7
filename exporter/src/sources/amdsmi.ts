import type { Logger } from '../util/log';
import { AMDSMI } from './amdsmi-binding';
import { AmdSmiThread } from './amdsmi-thread';
import type { AmdGpuInfo, AmdGpuRead, AmdReply } from './amdsmi-worker';
import type { DeviceError, GpuProcess, Reading, SampleContext, SampleResult, Source } from './types';
import { SourceError } from './types';

/**
 * AMD Instinct GPU energy from AMD SMI (libamd_smi.so, on its own worker thread).
 *
 * Per GPU and tick: amdsmi_get_energy_count (accumulator × resolution µJ) as a `counter` reading,
 * source "amdsmi", bounded by the highest settable power cap; a GPU whose counter answers
 * NOT_SUPPORTED switches for good to amdsmi_get_power_info's socket power as a `power` reading,
 * source "amdsmi-power" (integrated by the trapezoid rule). Labels match NVML's (`compute`,
 * `gpuN`); on a node with both vendors the AMD GPUs are numbered after the NVIDIA ones.
 * Processes (amdsmi_get_gpu_process_list) go to job attribution with their VRAM and their share
 * of the GFX engine over the interval (Δ engine ns / Δ wall ns), the counterpart of NVML's SM share.
 *
 * Not yet run against real AMD hardware: tested against the ABI-compatible fake (test/fakes/amdsmi).
 */

export const AMDSMI_SOURCE = 'amdsmi';
export const AMDSMI_POWER_SOURCE = 'amdsmi-power';
/** The accumulator is 64 bits wide: it wraps after 2^64 counts. */
const COUNTER_WRAP = 2 ** 64;
const CLOSE_GRACE_MS = 3000;
const DISCOVERY_TIMEOUT_MS = 30_000;

export interface AmdSmiSourceOptions {
  library: string;
  /** Index of the first AMD GPU's `gpuN` label (the NVIDIA GPUs come first). */
  firstIndex?: () => Promise<number>;
}

export interface AmdDeviceInfo extends AmdGpuInfo {
  device: string;
  method: 'counter' | 'power';
}

function reasonFor(status: number): string {
  if (status === AMDSMI.NOT_FOUND) return 'gpu_lost';
  if (status === AMDSMI.NO_PERM) return 'permission';
  return 'read';
}

export class AmdSmiSource implements Source {
  readonly name = AMDSMI_SOURCE;
  private thread: AmdSmiThread | undefined;
  private gpus: AmdDeviceInfo[] = [];
  private initialised: Promise<boolean> | undefined;
  private closed = false;
  /** device → pid → { GFX engine ns, ms } at the previous read, for per-process engine shares. */
  private readonly lastGfx = new Map<string, Map<number, { ns: number; at: number }>>();
  /** device:status of process-list failures already logged, to log each once (energy is unaffected). */
  private readonly noted = new Set<string>();

  constructor(
    private readonly opts: AmdSmiSourceOptions,
    private readonly log: Logger,
  ) {}

  get devices(): readonly AmdDeviceInfo[] {
    return this.gpus;
  }

  /** Idempotent. False (after one log line) when there is no library, no driver, no GPU, or discovery hangs. */
  init(): Promise<boolean> {
    this.initialised ??= new Promise<boolean>((resolve, reject) => {
      // A driver that hangs at discovery must not hold up start-up: give up on AMD SMI after a bound.
      const timer = setTimeout(() => {
        this.log.warn('AMD SMI discovery did not finish; no AMD GPU energy', {
          library: this.opts.library,
          after_ms: DISCOVERY_TIMEOUT_MS,
        });
        this.closed = true;
        resolve(false);
      }, DISCOVERY_TIMEOUT_MS);
      this.discover().then(
        (ok) => {
          clearTimeout(timer);
          // Discovery that finished after the bound (or after close()) leaves no worker behind.
          if (this.closed) void this.thread?.close(CLOSE_GRACE_MS);
          resolve(ok && !this.closed);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });
    return this.initialised;
  }

  private async discover(): Promise<boolean> {
    const library = this.opts.library;
    const thread = new AmdSmiThread();
    const absent = async (msg: string, err: string) => {
      this.log.info(msg, { library, err });
      await thread.close(CLOSE_GRACE_MS);
      return false;
    };
    const opened = await thread.request({ op: 'open', library }).catch((e: Error) => ({ ok: false, error: e.message }) as AmdReply);
    if (!opened.ok) return absent('AMD SMI library not available; no AMD GPU energy', opened.error);
    const found = await thread.request({ op: 'discover' }).catch((e: Error) => ({ ok: false, error: e.message }) as AmdReply);
    if (!found.ok) return absent('AMD SMI did not initialise; no AMD GPU energy', found.error);
    if (!('gpus' in found)) return absent('AMD SMI did not initialise; no AMD GPU energy', 'unexpected reply');
    if (found.status !== AMDSMI.SUCCESS)
      return absent('AMD SMI did not initialise; no AMD GPU energy', found.message ?? `status ${found.status}`);
    if (found.gpus.length === 0) return absent('AMD SMI found no GPU; no AMD GPU energy', 'no AMD GPU');
    const first = (await this.opts.firstIndex?.().catch(() => 0)) ?? 0;
    this.gpus = found.gpus.map((g) => ({ ...g, device: `gpu${first + g.index}`, method: 'counter' }));
    this.thread = thread;
    this.log.info('AMD SMI GPUs found', { gpus: this.gpus.map((g) => `${g.device}=${g.name}`).join(',') });
    return true;
  }

  async sample(ctx: SampleContext): Promise<SampleResult> {
    const thread = this.thread;
    if (!thread || this.closed) throw new SourceError('closed', 'AMD SMI source is closed');
    const reply = await thread.request({ op: 'read', gpus: this.gpus.map((g) => ({ index: g.index, method: g.method })), processes: true });
    if (!reply.ok) throw new SourceError('read', reply.error);
    if (!('reads' in reply)) throw new SourceError('read', 'unexpected reply from the AMD SMI worker');
    const readings: Reading[] = [];
    const errors: DeviceError[] = [];
    const gpuProcesses: GpuProcess[] = [];
    for (const r of reply.reads) {
      const g = this.gpus[r.index];
      const reading = this.reading(g, r);
      if (reading) {
        readings.push(reading);
        gpuProcesses.push(...this.processes(g, r, ctx.now));
      } else if (r.status !== AMDSMI.SUCCESS && !(g.method === 'counter' && r.status === AMDSMI.NOT_SUPPORTED)) {
        errors.push({ device: g.device, reason: reasonFor(r.status), message: r.message ?? `status ${r.status}` });
      }
    }
    if (readings.length === 0 && errors.length > 0) throw new SourceError(errors[0].reason, `${errors[0].device}: ${errors[0].message}`);
    return { readings, errors, gpuProcesses };
  }

  private reading(g: AmdDeviceInfo, r: AmdGpuRead): Reading | undefined {
    const base = { component: 'compute', domain: 'gpu', device: g.device } as const;
    if (r.status === AMDSMI.SUCCESS && r.counter !== undefined && r.resolutionUj !== undefined && r.resolutionUj > 0) {
      // counts × µJ/count → µJ; / 1e6 → J.
      const joulesPerCount = r.resolutionUj / 1e6;
      const maxPowerWatts = Math.max(g.maxCapWatts ?? 0, g.capWatts ?? 0) || undefined;
      return {
        ...base,
        kind: 'counter',
        source: AMDSMI_SOURCE,
        joules: r.counter * joulesPerCount,
        wrapJoules: COUNTER_WRAP * joulesPerCount,
        maxPowerWatts,
      };
    }
    if (r.status === AMDSMI.SUCCESS && r.watts !== undefined)
      return { ...base, kind: 'power', source: AMDSMI_POWER_SOURCE, watts: r.watts };
    if (g.method === 'counter' && (r.status === AMDSMI.NOT_SUPPORTED || r.status === AMDSMI.FUNCTION_NOT_FOUND)) {
      // Read power from the next tick on; this tick has no value for the GPU.
      g.method = 'power';
      this.log.info('AMD GPU has no energy counter; integrating sampled power instead', { device: g.device, method: AMDSMI_POWER_SOURCE });
    }
    return undefined;
  }

  /** The GPU's processes with their GFX engine share (%) since the previous read of the same pid. */
  private processes(g: AmdDeviceInfo, r: AmdGpuRead, now: number): GpuProcess[] {
    if (!r.processes) {
      const key = `${g.device}:${r.processStatus}`;
      if (r.processStatus !== undefined && !this.noted.has(key)) {
        this.noted.add(key);
        this.log.debug('AMD SMI process list unavailable on this GPU; its energy stays unattributed', {
          device: g.device,
          status: r.processStatus,
        });
      }
      return [];
    }
    const prev = this.lastGfx.get(g.device) ?? new Map<number, { ns: number; at: number }>();
    const next = new Map<number, { ns: number; at: number }>();
    const out = r.processes.map((p): GpuProcess => {
      next.set(p.pid, { ns: p.gfxNs, at: now });
      const before = prev.get(p.pid);
      const wallNs = before ? (now - before.at) * 1e6 : 0;
      // A first sighting (or a restarted pid whose counter went back) has no interval to share yet.
      const share = before && wallNs > 0 && p.gfxNs >= before.ns ? Math.min(100, ((p.gfxNs - before.ns) / wallNs) * 100) : undefined;
      return { device: g.device, pid: p.pid, usedMemoryBytes: p.vramBytes, smUtilPercent: share };
    });
    this.lastGfx.set(g.device, next);
    return out;
  }

  /** Shuts the library down (bounded) and stops the worker. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const thread = this.thread;
    if (!thread) return;
    if (thread.inFlight === 0) {
      await Promise.race([
        thread.request({ op: 'shutdown' }).catch(() => undefined),
        new Promise((r) => setTimeout(r, CLOSE_GRACE_MS).unref()),
      ]);
    } else {
      this.log.warn('AMD SMI calls still running at shutdown; skipping amdsmi_shut_down', { pending: thread.inFlight });
    }
    await thread.close(CLOSE_GRACE_MS);
  }
}
