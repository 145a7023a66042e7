import type * as Koffi from 'koffi';

/**
 * The AMD SMI entry points jouleflow uses (libamd_smi.so, public amdsmi.h of ROCm's amdsmi with
 * AMDSMI_LIB_VERSION_MAJOR 26, where AMDSMI_MAX_STRING_LENGTH is 256), bound with koffi.
 *
 * Calls here are synchronous: this module is loaded only inside the AMD worker thread
 * (amdsmi-worker.ts), which owns the library handle, so a slow or hung driver blocks that thread
 * and never the event loop. Struct outputs go through Buffers decoded with amdsmi.h's layouts,
 * which test/fakes/amdsmi/fake_amdsmi.c pins with _Static_assert.
 */

/** amdsmi_status_t values (amdsmi.h). */
export const AMDSMI = {
  SUCCESS: 0,
  INVAL: 1,
  NOT_SUPPORTED: 2,
  NOT_YET_IMPLEMENTED: 3,
  NO_PERM: 10,
  OUT_OF_RESOURCES: 15,
  NOT_FOUND: 31,
  NOT_INIT: 32,
  DRIVER_NOT_LOADED: 34,
  FUNCTION_NOT_FOUND: -1,
} as const;

export const AMDSMI_INIT_AMD_GPUS = 1 << 1;
const AMDSMI_PROCESSOR_TYPE_AMD_GPU = 1;
const STRING_LENGTH = 256;
const UUID_SIZE = 64; // ≥ AMDSMI_GPU_UUID_SIZE (38)
/** amdsmi_asic_info_t: market_name[256] @0, vendor_id @256, ..., num_of_compute_units u32 @792; 896 bytes. */
export const ASIC_INFO_SIZE = 896;
const ASIC_CU_OFFSET = 792;
/** amdsmi_power_info_t: socket_power u64 @0, current_socket_power u32 @8, average_socket_power u32 @12, power_limit u32 @40; 192 bytes. */
export const POWER_INFO_SIZE = 192;
/** amdsmi_power_cap_info_t: power_cap, default_power_cap, dpm_cap, min_power_cap, max_power_cap (u64, µW), reserved[3]; 64 bytes. */
export const POWER_CAP_INFO_SIZE = 64;
/** amdsmi_proc_info_t: name[256], pid u32 @256, mem u64 @264, engine_usage.gfx u64 (ns) @272, memory_usage.vram_mem u64 @352; 704 bytes. */
export const PROC_INFO_SIZE = 704;
const U32_UNSUPPORTED = 0xffffffff;

export interface AmdProcess {
  pid: number;
  /** VRAM held, bytes. */
  vramBytes: number;
  /** Cumulative GFX engine time of the process, ns. */
  gfxNs: number;
}

export interface AmdResult<T> {
  status: number;
  value?: T;
}

type KoffiModule = typeof Koffi;
type KoffiFunction = ReturnType<Koffi.LibraryHandle['func']>;
type TypeSpec = Parameters<KoffiModule['out']>[0];
/** An amdsmi handle as koffi decodes a `void *`: the address. */
export type AmdHandle = bigint | number;

function cString(buf: Buffer, offset: number, max: number): string {
  const end = buf.indexOf(0, offset);
  return buf.toString('utf8', offset, end < 0 || end > offset + max ? offset + max : end);
}

export function decodeProcesses(buf: Buffer, count: number): AmdProcess[] {
  const out: AmdProcess[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * PROC_INFO_SIZE;
    const vram = Number(buf.readBigUInt64LE(o + 352));
    out.push({
      pid: buf.readUInt32LE(o + 256),
      // Older drivers fill only `mem`; VRAM is what a training job holds.
      vramBytes: vram > 0 ? vram : Number(buf.readBigUInt64LE(o + 264)),
      gfxNs: Number(buf.readBigUInt64LE(o + 272)),
    });
  }
  return out;
}

/** Socket power in W from amdsmi_power_info_t: current (MI300+) else average (MI200 and earlier); undefined if neither. */
export function decodePowerWatts(buf: Buffer): number | undefined {
  const current = buf.readUInt32LE(8);
  if (current !== U32_UNSUPPORTED && current > 0) return current;
  const average = buf.readUInt32LE(12);
  if (average !== U32_UNSUPPORTED) return average;
  return current !== U32_UNSUPPORTED ? current : undefined;
}

export class AmdSmiBinding {
  private constructor(
    private readonly koffi: KoffiModule,
    private readonly fns: Record<string, KoffiFunction | undefined>,
  ) {}

  /** Loads the library; throws (naming the symbol) when it or a required entry point is missing. */
  static open(library: string): AmdSmiBinding {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a worker thread loads koffi synchronously
    const koffi = require('koffi') as KoffiModule;
    const lib = koffi.load(library);
    const u32InOut = koffi.inout(koffi.pointer('uint32_t'));
    const u64Out = koffi.out(koffi.pointer('uint64_t'));
    const bind = (name: string, args: TypeSpec[]) => lib.func(name, 'uint32_t', args);
    const optional = (name: string, args: TypeSpec[]) => {
      try {
        return bind(name, args);
      } catch {
        return undefined;
      }
    };
    return new AmdSmiBinding(koffi, {
      init: bind('amdsmi_init', ['uint64_t']),
      shutdown: bind('amdsmi_shut_down', []),
      sockets: bind('amdsmi_get_socket_handles', [u32InOut, 'void *']),
      processors: bind('amdsmi_get_processor_handles', ['void *', u32InOut, 'void *']),
      energy: bind('amdsmi_get_energy_count', ['void *', u64Out, koffi.out(koffi.pointer('float')), u64Out]),
      power: bind('amdsmi_get_power_info', ['void *', 'void *']),
      statusString: optional('amdsmi_status_code_to_string', ['uint32_t', koffi.out(koffi.pointer('const char *'))]),
      type: optional('amdsmi_get_processor_type', ['void *', koffi.out(koffi.pointer('uint32_t'))]),
      asic: optional('amdsmi_get_gpu_asic_info', ['void *', 'void *']),
      uuid: optional('amdsmi_get_gpu_device_uuid', ['void *', u32InOut, 'void *']),
      cap: optional('amdsmi_get_power_cap_info', ['void *', 'uint32_t', 'void *']),
      processes: optional('amdsmi_get_gpu_process_list', ['void *', u32InOut, 'void *']),
    });
  }

  private call(name: string, ...args: unknown[]): number {
    const fn = this.fns[name];
    return fn ? Number(fn(...args)) : AMDSMI.FUNCTION_NOT_FOUND;
  }

  statusString(status: number): string {
    const out: unknown[] = [null];
    if (status === AMDSMI.FUNCTION_NOT_FOUND) return 'function not in this libamd_smi';
    if (this.call('statusString', status, out) === AMDSMI.SUCCESS && typeof out[0] === 'string') return `${out[0]} (amdsmi ${status})`;
    return `amdsmi status ${status}`;
  }

  init(): number {
    return this.call('init', AMDSMI_INIT_AMD_GPUS);
  }

  shutdown(): number {
    return this.call('shutdown');
  }

  /** Every AMD GPU processor handle, socket by socket (a NULL array first asks for the count). */
  gpuHandles(): AmdResult<AmdHandle[]> {
    const sockets = this.handles((count, buf) => this.call('sockets', count, buf));
    if (sockets.status !== AMDSMI.SUCCESS || !sockets.value) return sockets;
    const gpus: AmdHandle[] = [];
    for (const s of sockets.value) {
      const procs = this.handles((count, buf) => this.call('processors', s, count, buf));
      if (procs.status !== AMDSMI.SUCCESS || !procs.value) return procs;
      for (const p of procs.value) {
        const type = [0];
        const st = this.call('type', p, type);
        // Without amdsmi_get_processor_type, init(AMD_GPUS) only enumerated GPUs anyway.
        if (st === AMDSMI.FUNCTION_NOT_FOUND || (st === AMDSMI.SUCCESS && type[0] === AMDSMI_PROCESSOR_TYPE_AMD_GPU)) gpus.push(p);
      }
    }
    return { status: AMDSMI.SUCCESS, value: gpus };
  }

  private handles(fn: (count: number[], buf: Buffer | null) => number): AmdResult<AmdHandle[]> {
    const count = [0];
    let status = fn(count, null);
    if (status !== AMDSMI.SUCCESS) return { status };
    if (count[0] === 0) return { status, value: [] };
    const buf = Buffer.alloc(count[0] * 8);
    status = fn(count, buf);
    if (status !== AMDSMI.SUCCESS) return { status };
    return { status, value: this.koffi.decode(buf, this.koffi.array('void *', count[0])) as AmdHandle[] };
  }

  asic(h: AmdHandle): AmdResult<{ marketName: string; computeUnits?: number }> {
    const buf = Buffer.alloc(ASIC_INFO_SIZE);
    const status = this.call('asic', h, buf);
    if (status !== AMDSMI.SUCCESS) return { status };
    const cu = buf.readUInt32LE(ASIC_CU_OFFSET);
    return { status, value: { marketName: cString(buf, 0, STRING_LENGTH), computeUnits: cu === U32_UNSUPPORTED ? undefined : cu } };
  }

  uuid(h: AmdHandle): AmdResult<string> {
    const buf = Buffer.alloc(UUID_SIZE);
    const status = this.call('uuid', h, [UUID_SIZE], buf);
    return { status, value: status === AMDSMI.SUCCESS ? cString(buf, 0, UUID_SIZE) : undefined };
  }

  /** Power cap and the highest cap it can be set to, in W (amdsmi reports µW on Linux). */
  powerCap(h: AmdHandle): AmdResult<{ capWatts: number; maxCapWatts: number }> {
    const buf = Buffer.alloc(POWER_CAP_INFO_SIZE);
    const status = this.call('cap', h, 0, buf);
    if (status !== AMDSMI.SUCCESS) return { status };
    return { status, value: { capWatts: Number(buf.readBigUInt64LE(0)) / 1e6, maxCapWatts: Number(buf.readBigUInt64LE(32)) / 1e6 } };
  }

  /** The energy accumulator and its resolution: energy = counter × resolution µJ. */
  energy(h: AmdHandle): AmdResult<{ counter: number; resolutionUj: number }> {
    const counter: Array<number | bigint> = [0];
    const resolution = [0];
    const ts: Array<number | bigint> = [0];
    const status = this.call('energy', h, counter, resolution, ts);
    return { status, value: status === AMDSMI.SUCCESS ? { counter: Number(counter[0]), resolutionUj: resolution[0] } : undefined };
  }

  powerWatts(h: AmdHandle): AmdResult<number> {
    const buf = Buffer.alloc(POWER_INFO_SIZE);
    const status = this.call('power', h, buf);
    const watts = status === AMDSMI.SUCCESS ? decodePowerWatts(buf) : undefined;
    return { status: status === AMDSMI.SUCCESS && watts === undefined ? AMDSMI.NOT_SUPPORTED : status, value: watts };
  }

  /** Processes on the GPU; grows the buffer when the driver says it holds more. */
  processes(h: AmdHandle, capacity = 16): AmdResult<AmdProcess[]> {
    let cap = capacity;
    for (let attempt = 0; attempt < 4; attempt++) {
      const count = [cap];
      const buf = Buffer.alloc(cap * PROC_INFO_SIZE);
      const status = this.call('processes', h, count, buf);
      if (status === AMDSMI.SUCCESS) return { status, value: decodeProcesses(buf, Math.min(count[0], cap)) };
      if (status !== AMDSMI.OUT_OF_RESOURCES) return { status };
      cap = Math.max(cap * 2, count[0] + 8); // processes may start between the two calls
    }
    return { status: AMDSMI.OUT_OF_RESOURCES };
  }
}
