import type * as Koffi from 'koffi';

/**
 * The NVML entry points jouleflow uses, bound with koffi (no compiler, no CUDA headers needed).
 *
 * Two calling modes. `sync` (what the exporter uses): each call runs on the calling thread, which
 * is the NVML source's own worker thread (nvml-worker.ts), so a hung driver blocks only that
 * thread. `async`: koffi's `fn.async`, i.e. libuv's shared threadpool, which `fs` and gzip also
 * use: a hung driver there starves the whole exporter (issue 10 §1); kept for the benchmark's
 * comparison only. nvmlDeviceGetTotalEnergyConsumption costs ~4 ms per GPU on an H200 (see
 * shared/fixtures/nvidia-h200/node-nvml-probe.json), too long for the event loop either way.
 * Struct outputs go through Buffers decoded here with the layouts of nvml.h.
 */

/** nvmlReturn_t values (nvml.h). */
export const NVML = {
  SUCCESS: 0,
  ERROR_UNINITIALIZED: 1,
  ERROR_INVALID_ARGUMENT: 2,
  ERROR_NOT_SUPPORTED: 3,
  ERROR_NO_PERMISSION: 4,
  ERROR_NOT_FOUND: 6,
  ERROR_INSUFFICIENT_SIZE: 7,
  ERROR_DRIVER_NOT_LOADED: 9,
  ERROR_TIMEOUT: 10,
  ERROR_LIBRARY_NOT_FOUND: 12,
  ERROR_FUNCTION_NOT_FOUND: 13,
  ERROR_GPU_IS_LOST: 15,
  ERROR_RESET_REQUIRED: 16,
  ERROR_UNKNOWN: 999,
} as const;

const NAME_BUFFER = 96; // NVML_DEVICE_NAME_V2_BUFFER_SIZE
const UUID_BUFFER = 96; // NVML_DEVICE_UUID_V2_BUFFER_SIZE
const DRIVER_BUFFER = 80; // NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE

/** nvmlPciInfo_t: busIdLegacy[16], domain, bus, device, pciDeviceId, pciSubSystemId, busId[32]. */
export const PCI_INFO_SIZE = 68;
const PCI_BUS_ID_OFFSET = 36;
/** nvmlProcessInfo_v3_t: pid u32, (pad), usedGpuMemory u64 @8, gpuInstanceId u32 @16, computeInstanceId u32 @20. */
export const PROCESS_INFO_V3_SIZE = 24;
/** nvmlProcessUtilizationSample_t: pid u32, (pad), timeStamp u64 @8, smUtil @16, memUtil @20, encUtil @24, decUtil @28. */
export const PROCESS_UTIL_SAMPLE_SIZE = 32;
/** gpuInstanceId / computeInstanceId when the GPU is not partitioned (NVML's 0xFFFFFFFF "invalid"). */
export const NO_INSTANCE = 0xffffffff;
/** NVML_VALUE_NOT_AVAILABLE as an unsigned long long: usedGpuMemory when the driver cannot tell (WDDM, some vGPU/containers). */
export const VALUE_NOT_AVAILABLE_U64 = 0xffffffffffffffffn;

/** An opaque nvmlDevice_t as koffi hands it out; passed back unchanged. */
export type NvmlHandle = unknown;

export interface NvmlResult<T> {
  ret: number;
  value?: T;
}

export interface NvmlProcessInfo {
  pid: number;
  /** Bytes; undefined when NVML reports NVML_VALUE_NOT_AVAILABLE. */
  usedGpuMemory: number | undefined;
  gpuInstanceId: number;
  computeInstanceId: number;
}

export interface NvmlProcessSample {
  pid: number;
  /** CPU timestamp in microseconds. */
  timeStamp: bigint;
  smUtil: number;
  memUtil: number;
  encUtil: number;
  decUtil: number;
}

type KoffiModule = typeof Koffi;
type KoffiFunction = ReturnType<Koffi.LibraryHandle['func']>;
/** koffi's TypeSpec (not exported by its typings). */
type TypeSpec = Parameters<KoffiModule['out']>[0];

/** Decodes a NUL-terminated C string from a Buffer. */
export function cString(buf: Buffer, offset = 0, max = buf.length - offset): string {
  const end = buf.indexOf(0, offset);
  return buf.toString('utf8', offset, end < 0 || end > offset + max ? offset + max : end);
}

export function decodeProcessInfos(buf: Buffer, count: number): NvmlProcessInfo[] {
  const out: NvmlProcessInfo[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * PROCESS_INFO_V3_SIZE;
    const mem = buf.readBigUInt64LE(o + 8);
    out.push({
      pid: buf.readUInt32LE(o),
      usedGpuMemory: mem === VALUE_NOT_AVAILABLE_U64 ? undefined : Number(mem),
      gpuInstanceId: buf.readUInt32LE(o + 16),
      computeInstanceId: buf.readUInt32LE(o + 20),
    });
  }
  return out;
}

export function decodeProcessSamples(buf: Buffer, count: number): NvmlProcessSample[] {
  const out: NvmlProcessSample[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * PROCESS_UTIL_SAMPLE_SIZE;
    out.push({
      pid: buf.readUInt32LE(o),
      timeStamp: buf.readBigUInt64LE(o + 8),
      smUtil: buf.readUInt32LE(o + 16),
      memUtil: buf.readUInt32LE(o + 20),
      encUtil: buf.readUInt32LE(o + 24),
      decUtil: buf.readUInt32LE(o + 28),
    });
  }
  return out;
}

interface Functions {
  init: KoffiFunction;
  shutdown: KoffiFunction;
  errorString: KoffiFunction;
  count: KoffiFunction;
  handle: KoffiFunction;
  energy: KoffiFunction;
  power: KoffiFunction;
  // Optional: older drivers lack some of these; calls then answer FUNCTION_NOT_FOUND.
  driverVersion?: KoffiFunction;
  name?: KoffiFunction;
  uuid?: KoffiFunction;
  pci?: KoffiFunction;
  limit?: KoffiFunction;
  limitConstraints?: KoffiFunction;
  mig?: KoffiFunction;
  util?: KoffiFunction;
  temperature?: KoffiFunction;
  processes?: KoffiFunction;
  processUtil?: KoffiFunction;
}

/** At most this many NVML calls are queued in koffi at once (koffi refuses more than max_async_calls). */
const MAX_CONCURRENT = 32;

export class NvmlBinding {
  /** Called after every library call returns (sync mode): the worker's proof of progress. */
  onCallDone: (() => void) | undefined;
  private active = 0;
  private readonly queue: Array<() => void> = [];
  private idleWaiters: Array<() => void> = [];

  private constructor(
    private readonly fns: Functions,
    private readonly mode: 'sync' | 'async',
  ) {}

  /**
   * Loads the library and binds the functions. Throws when koffi or the library cannot be loaded
   * or a required symbol is missing (the message says which).
   */
  static async open(library: string, mode: 'sync' | 'async' = 'sync'): Promise<NvmlBinding> {
    const koffi: KoffiModule = await import('koffi');
    const lib = koffi.load(library);
    const device = koffi.pointer(koffi.opaque());
    const u32Out = koffi.out(koffi.pointer('uint32_t'));
    const u32InOut = koffi.inout(koffi.pointer('uint32_t'));
    const u64Out = koffi.out(koffi.pointer('uint64_t'));
    const bind = (name: string, args: TypeSpec[], ret: TypeSpec = 'int'): KoffiFunction => lib.func(name, ret, args);
    const optional = (name: string, args: TypeSpec[]): KoffiFunction | undefined => {
      try {
        return bind(name, args);
      } catch {
        return undefined;
      }
    };
    return new NvmlBinding(
      {
        init: bind('nvmlInit_v2', []),
        shutdown: bind('nvmlShutdown', []),
        errorString: bind('nvmlErrorString', ['int'], 'const char *'),
        count: bind('nvmlDeviceGetCount_v2', [u32Out]),
        handle: bind('nvmlDeviceGetHandleByIndex_v2', ['uint32_t', koffi.out(koffi.pointer(device))]),
        energy: bind('nvmlDeviceGetTotalEnergyConsumption', [device, u64Out]),
        power: bind('nvmlDeviceGetPowerUsage', [device, u32Out]),
        driverVersion: optional('nvmlSystemGetDriverVersion', ['void *', 'uint32_t']),
        name: optional('nvmlDeviceGetName', [device, 'void *', 'uint32_t']),
        uuid: optional('nvmlDeviceGetUUID', [device, 'void *', 'uint32_t']),
        pci: optional('nvmlDeviceGetPciInfo_v3', [device, 'void *']),
        limit: optional('nvmlDeviceGetEnforcedPowerLimit', [device, u32Out]),
        limitConstraints: optional('nvmlDeviceGetPowerManagementLimitConstraints', [device, u32Out, u32Out]),
        mig: optional('nvmlDeviceGetMigMode', [device, u32Out, u32Out]),
        util: optional('nvmlDeviceGetUtilizationRates', [device, 'void *']),
        temperature: optional('nvmlDeviceGetTemperature', [device, 'int', u32Out]),
        processes: optional('nvmlDeviceGetComputeRunningProcesses_v3', [device, u32InOut, 'void *']),
        processUtil: optional('nvmlDeviceGetProcessUtilization', [device, 'void *', u32InOut, 'uint64_t']),
      },
      mode,
    );
  }

  /** NVML calls started and not yet answered (a hung driver keeps them here). */
  get pending(): number {
    return this.active + this.queue.length;
  }

  /** Resolves true once no call is in flight, or false after timeoutMs. */
  whenIdle(timeoutMs: number): Promise<boolean> {
    if (this.pending === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      this.idleWaiters.push(done);
    });
  }

  /** Runs fn (on this thread, or on koffi's pool in async mode); resolves with the nvmlReturn_t. */
  private call(fn: KoffiFunction | undefined, ...args: unknown[]): Promise<number> {
    if (!fn) return Promise.resolve(NVML.ERROR_FUNCTION_NOT_FOUND);
    if (this.mode === 'sync') {
      try {
        return Promise.resolve(Number(fn(...args)));
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      } finally {
        this.onCallDone?.();
      }
    }
    return new Promise<number>((resolve, reject) => {
      const run = () => {
        this.active++;
        try {
          fn.async(...args, (err: unknown, ret: unknown) => {
            this.release();
            if (err) reject(err instanceof Error ? err : new Error(String(err)));
            else resolve(Number(ret));
          });
        } catch (err) {
          this.release();
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      };
      if (this.active < MAX_CONCURRENT) run();
      else this.queue.push(run);
    });
  }

  private release(): void {
    this.active--;
    const next = this.queue.shift();
    if (next) next();
    else if (this.active === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** nvmlErrorString: returns a pointer to a static string, cheap enough to call synchronously. */
  errorString(ret: number): string {
    try {
      return `${String(this.fns.errorString(ret))} (nvml ${ret})`;
    } catch {
      return `nvml error ${ret}`;
    }
  }

  init(): Promise<number> {
    return this.call(this.fns.init);
  }

  shutdown(): Promise<number> {
    return this.call(this.fns.shutdown);
  }

  async driverVersion(): Promise<NvmlResult<string>> {
    const buf = Buffer.alloc(DRIVER_BUFFER);
    const ret = await this.call(this.fns.driverVersion, buf, DRIVER_BUFFER);
    return { ret, value: ret === NVML.SUCCESS ? cString(buf) : undefined };
  }

  async deviceCount(): Promise<NvmlResult<number>> {
    const out = [0];
    const ret = await this.call(this.fns.count, out);
    return { ret, value: out[0] };
  }

  async handleByIndex(index: number): Promise<NvmlResult<NvmlHandle>> {
    const out: unknown[] = [null];
    const ret = await this.call(this.fns.handle, index, out);
    return { ret, value: out[0] };
  }

  private async string(fn: KoffiFunction | undefined, h: NvmlHandle, size: number): Promise<NvmlResult<string>> {
    const buf = Buffer.alloc(size);
    const ret = await this.call(fn, h, buf, size);
    return { ret, value: ret === NVML.SUCCESS ? cString(buf) : undefined };
  }

  name(h: NvmlHandle): Promise<NvmlResult<string>> {
    return this.string(this.fns.name, h, NAME_BUFFER);
  }

  uuid(h: NvmlHandle): Promise<NvmlResult<string>> {
    return this.string(this.fns.uuid, h, UUID_BUFFER);
  }

  async pciBusId(h: NvmlHandle): Promise<NvmlResult<string>> {
    const buf = Buffer.alloc(PCI_INFO_SIZE);
    const ret = await this.call(this.fns.pci, h, buf);
    return { ret, value: ret === NVML.SUCCESS ? cString(buf, PCI_BUS_ID_OFFSET, 32) : undefined };
  }

  private async u32(fn: KoffiFunction | undefined, ...args: unknown[]): Promise<NvmlResult<number>> {
    const out = [0];
    const ret = await this.call(fn, ...args, out);
    return { ret, value: ret === NVML.SUCCESS ? Number(out[0]) : undefined };
  }

  /** Enforced power limit in milliwatts. */
  enforcedPowerLimit(h: NvmlHandle): Promise<NvmlResult<number>> {
    return this.u32(this.fns.limit, h);
  }

  /** The range the power limit can be set to (mW): the enforced limit may change at runtime within it. */
  async powerLimitConstraints(h: NvmlHandle): Promise<NvmlResult<{ min: number; max: number }>> {
    const min = [0];
    const max = [0];
    const ret = await this.call(this.fns.limitConstraints, h, min, max);
    return { ret, value: ret === NVML.SUCCESS ? { min: Number(min[0]), max: Number(max[0]) } : undefined };
  }

  /** Power draw in milliwatts. */
  powerUsage(h: NvmlHandle): Promise<NvmlResult<number>> {
    return this.u32(this.fns.power, h);
  }

  /** GPU temperature in °C (sensor NVML_TEMPERATURE_GPU). */
  temperature(h: NvmlHandle): Promise<NvmlResult<number>> {
    return this.u32(this.fns.temperature, h, 0);
  }

  /** Energy since the driver was loaded, in millijoules (unsigned long long). */
  async totalEnergy(h: NvmlHandle): Promise<NvmlResult<number>> {
    const out: Array<number | bigint> = [0];
    const ret = await this.call(this.fns.energy, h, out);
    return { ret, value: ret === NVML.SUCCESS ? Number(out[0]) : undefined };
  }

  async migMode(h: NvmlHandle): Promise<NvmlResult<{ current: number; pending: number }>> {
    const cur = [0];
    const pend = [0];
    const ret = await this.call(this.fns.mig, h, cur, pend);
    return { ret, value: ret === NVML.SUCCESS ? { current: cur[0], pending: pend[0] } : undefined };
  }

  async utilization(h: NvmlHandle): Promise<NvmlResult<{ gpu: number; memory: number }>> {
    const buf = Buffer.alloc(8);
    const ret = await this.call(this.fns.util, h, buf);
    return { ret, value: ret === NVML.SUCCESS ? { gpu: buf.readUInt32LE(0), memory: buf.readUInt32LE(4) } : undefined };
  }

  /** Compute processes on the GPU (v3 struct); grows the buffer on INSUFFICIENT_SIZE. */
  async computeProcesses(h: NvmlHandle, capacity = 16): Promise<NvmlResult<NvmlProcessInfo[]>> {
    let cap = capacity;
    for (let attempt = 0; attempt < 4; attempt++) {
      const count = [cap];
      const buf = Buffer.alloc(cap * PROCESS_INFO_V3_SIZE);
      const ret = await this.call(this.fns.processes, h, count, buf);
      if (ret === NVML.SUCCESS) return { ret, value: decodeProcessInfos(buf, Math.min(count[0], cap)) };
      if (ret !== NVML.ERROR_INSUFFICIENT_SIZE) return { ret };
      cap = Math.max(cap * 2, count[0] + 8); // processes may start between the two calls
    }
    return { ret: NVML.ERROR_INSUFFICIENT_SIZE };
  }

  /**
   * Per-process utilisation samples newer than lastSeen (µs). NOT_FOUND means no new sample;
   * grows the buffer on INSUFFICIENT_SIZE.
   */
  async processUtilization(h: NvmlHandle, lastSeen: bigint, capacity = 32): Promise<NvmlResult<NvmlProcessSample[]>> {
    let cap = capacity;
    for (let attempt = 0; attempt < 4; attempt++) {
      const count = [cap];
      const buf = Buffer.alloc(cap * PROCESS_UTIL_SAMPLE_SIZE);
      const ret = await this.call(this.fns.processUtil, h, buf, count, lastSeen);
      if (ret === NVML.SUCCESS) return { ret, value: decodeProcessSamples(buf, Math.min(count[0], cap)) };
      if (ret !== NVML.ERROR_INSUFFICIENT_SIZE) return { ret };
      cap = Math.max(cap * 2, count[0] + 8);
    }
    return { ret: NVML.ERROR_INSUFFICIENT_SIZE };
  }

  /** The synchronous energy read, for the benchmark's blocking baseline only. */
  totalEnergySync(h: NvmlHandle): number {
    const out: Array<number | bigint> = [0];
    const ret = Number(this.fns.energy(h, out));
    if (ret !== NVML.SUCCESS) throw new Error(this.errorString(ret));
    return Number(out[0]);
  }
}
