import { parentPort } from 'worker_threads';
import type { AmdHandle, AmdProcess } from './amdsmi-binding';
import { AMDSMI, AmdSmiBinding } from './amdsmi-binding';

/**
 * The AMD SMI worker thread: it alone loads libamd_smi.so and holds its handles, and answers the
 * main thread's requests one at a time with synchronous library calls (amdsmi-thread.ts is the
 * other end). A hung driver call blocks this thread only.
 */

export interface AmdGpuInfo {
  index: number;
  name: string;
  uuid: string;
  capWatts?: number;
  maxCapWatts?: number;
  computeUnits?: number;
}

export interface AmdGpuRead {
  index: number;
  /** Status of the energy (method "counter") or power ("power") read. */
  status: number;
  message?: string;
  counter?: number;
  resolutionUj?: number;
  watts?: number;
  processes?: AmdProcess[];
  processStatus?: number;
}

export type AmdRequest =
  | { op: 'open'; library: string }
  | { op: 'discover' }
  | { op: 'read'; gpus: Array<{ index: number; method: 'counter' | 'power' }>; processes: boolean }
  | { op: 'shutdown' };

export type AmdReply =
  | { ok: true; opened: true }
  | { ok: true; status: number; message?: string; gpus: AmdGpuInfo[] }
  | { ok: true; reads: AmdGpuRead[] }
  | { ok: true; status: number }
  | { ok: false; error: string };

let smi: AmdSmiBinding | undefined;
let handles: AmdHandle[] = [];

function discover(b: AmdSmiBinding): AmdReply {
  const status = b.init();
  if (status !== AMDSMI.SUCCESS) return { ok: true, status, message: b.statusString(status), gpus: [] };
  const found = b.gpuHandles();
  if (found.status !== AMDSMI.SUCCESS || !found.value)
    return { ok: true, status: found.status, message: b.statusString(found.status), gpus: [] };
  handles = found.value;
  const gpus = handles.map((h, index): AmdGpuInfo => {
    const asic = b.asic(h).value;
    const cap = b.powerCap(h).value;
    return {
      index,
      name: asic?.marketName || 'AMD GPU',
      uuid: b.uuid(h).value ?? '',
      capWatts: cap && cap.capWatts > 0 ? cap.capWatts : undefined,
      maxCapWatts: cap && cap.maxCapWatts > 0 ? cap.maxCapWatts : undefined,
      computeUnits: asic?.computeUnits,
    };
  });
  return { ok: true, status, gpus };
}

function read(b: AmdSmiBinding, req: Extract<AmdRequest, { op: 'read' }>): AmdReply {
  const reads = req.gpus.map(({ index, method }): AmdGpuRead => {
    const h = handles[index];
    const out: AmdGpuRead = { index, status: AMDSMI.SUCCESS };
    if (method === 'counter') {
      const e = b.energy(h);
      out.status = e.status;
      out.counter = e.value?.counter;
      out.resolutionUj = e.value?.resolutionUj;
    } else {
      const p = b.powerWatts(h);
      out.status = p.status;
      out.watts = p.value;
    }
    if (out.status !== AMDSMI.SUCCESS) {
      out.message = b.statusString(out.status);
      return out;
    }
    if (req.processes) {
      const procs = b.processes(h);
      out.processStatus = procs.status;
      out.processes = procs.value;
    }
    return out;
  });
  return { ok: true, reads };
}

function handle(req: AmdRequest): AmdReply {
  if (req.op === 'open') {
    smi = AmdSmiBinding.open(req.library);
    return { ok: true, opened: true };
  }
  if (!smi) return { ok: false, error: 'library not open' };
  switch (req.op) {
    case 'discover':
      return discover(smi);
    case 'read':
      return read(smi, req);
    case 'shutdown':
      return { ok: true, status: smi.shutdown() };
  }
}

parentPort?.on('message', (msg: { id: number; req: AmdRequest }) => {
  let reply: AmdReply;
  try {
    reply = handle(msg.req);
  } catch (err) {
    reply = { ok: false, error: (err as Error).message };
  }
  parentPort?.postMessage({ id: msg.id, reply });
});
