import { Worker } from 'worker_threads';
import { parseDiskstats } from '../sources/diskstats';
import { isPhysicalPort } from '../sources/netdev';
import { exists, join, listDir, readText, readTrimmed } from '../util/fs';
import { readMemTotalBytes } from '../util/procfs';

/**
 * The start-up hardware inventory, in two steps. The host facts (NICs and disks from --path.sysfs,
 * memory and the CPU from --path.procfs: the same tree the sources read, so names equal the
 * `device` labels of the energy series) take milliseconds and come before the sources. The rest
 * (DIMMs, system, disk vendors) is systeminformation on a worker thread, bounded by a timeout: it
 * runs dmidecode, which can take seconds, so the exporter serves and ticks without waiting for it.
 *
 * systeminformation reads the exporter's own /proc, /sys and runs dmidecode: with --path.sysfs or
 * --path.procfs pointing elsewhere (a container reading the host's files) its network and disk
 * views are the container's, so they are not used, and `scope` says what the rest describes.
 */

export interface CpuInfo {
  model: string;
  vendor: string;
  sockets: number;
  cores: number;
  threads: number;
}

export interface Dimm {
  sizeBytes: number;
  /** "DDR4", "DDR5", ... or "" when dmidecode could not tell. */
  type: string;
}

export interface NicInfo {
  /** The interface (eth0), or an InfiniBand port as the infiniband source names it (mlx5_0:1). */
  device: string;
  kind: 'nic' | 'infiniband';
  /** Link speed in Mb/s (sysfs `speed`); undefined when down or unknown. */
  speedMbps?: number;
}

export interface DiskInfo {
  device: string;
  kind: 'ssd' | 'hdd';
  vendor?: string;
  model?: string;
}

export interface Inventory {
  /** "host": the exporter reads the machine's own /proc and /sys; "exporter-view": see the module comment. */
  scope: 'host' | 'exporter-view';
  /** From /proc/cpuinfo where it names the model (x86), else systeminformation's. */
  cpu?: CpuInfo;
  /** MemTotal from --path.procfs, the same figure the DRAM model uses. */
  memoryBytes?: number;
  dimms: Dimm[];
  system?: { vendor: string; model: string; virtual: boolean };
  /** The x86 "hypervisor" CPU flag: a VM by the kernel's own word, known before systeminformation answers. */
  hypervisor?: boolean;
  nics: NicInfo[];
  disks: DiskInfo[];
  /** True for the host facts alone, before systeminformation's answers are merged in. */
  partial?: boolean;
  /** What could not be collected, and why (shown on the landing page). */
  notes: string[];
}

export interface CollectOptions {
  sysfs: string;
  procfs: string;
  timeoutMs: number;
  nicExclude: RegExp;
  nicInclude?: RegExp;
  diskExclude: RegExp;
}

/** What the worker sends back: systeminformation's answers, each possibly an error message. */
interface SiResult {
  cpu?: { manufacturer: string; brand: string; processors: number; physicalCores: number; cores: number };
  memLayout?: Array<{ size: number; type: string }>;
  system?: { manufacturer: string; model: string; virtual: boolean; virtualHost?: string };
  disks?: Array<{ device: string; vendor: string; name: string }>;
  errors: string[];
}

/** Plain JavaScript so it runs the same from the build and from ts-jest. */
const SI_WORKER = `
const { parentPort, workerData } = require('worker_threads');
const si = require(workerData.systeminformation);
const out = { errors: [] };
const grab = (name, p) => p.then((v) => { out[name] = v; }, (e) => { out.errors.push(name + ': ' + e.message); });
Promise.all([
  grab('cpu', si.cpu()),
  grab('memLayout', si.memLayout()),
  grab('system', si.system()),
  workerData.hostView ? grab('disks', si.diskLayout()) : Promise.resolve(),
]).then(() => parentPort.postMessage(out));
`;

/**
 * systeminformation on its worker, bounded by the timeout. `holdsProcess` false: neither the worker
 * nor the timer keeps the process alive (an exporter shutting down does not wait for the inventory).
 */
function runSystemInformation(hostView: boolean, timeoutMs: number, holdsProcess: boolean): Promise<SiResult> {
  return new Promise((resolve) => {
    const worker = new Worker(SI_WORKER, { eval: true, workerData: { hostView, systeminformation: require.resolve('systeminformation') } });
    const timer = setTimeout(() => {
      void worker.terminate();
      resolve({ errors: [`systeminformation did not answer within ${timeoutMs} ms`] });
    }, timeoutMs);
    if (!holdsProcess) {
      worker.unref();
      timer.unref();
    }
    worker.once('message', (m: SiResult) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(m);
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      resolve({ errors: [`systeminformation failed: ${err.message}`] });
    });
  });
}

async function readNics(o: CollectOptions, skipIpoib: boolean): Promise<NicInfo[]> {
  const out: NicInfo[] = [];
  for (const name of await listDir(join(o.sysfs, 'class/net'))) {
    const dir = join(o.sysfs, 'class/net', name);
    const physical = await isPhysicalPort(o.sysfs, name, skipIpoib);
    if (!(o.nicInclude?.test(name) || (physical && !o.nicExclude.test(name)))) continue;
    const speed = Number(await readTrimmed(join(dir, 'speed')).catch(() => ''));
    out.push({ device: name, kind: 'nic', speedMbps: Number.isFinite(speed) && speed > 0 ? speed : undefined });
  }
  return out;
}

/** InfiniBand ports (the ports the infiniband source counts: link layer InfiniBand), rate "200 Gb/sec (4X HDR)". */
async function readInfiniband(o: CollectOptions): Promise<NicInfo[]> {
  const out: NicInfo[] = [];
  const base = join(o.sysfs, 'class/infiniband');
  for (const hca of await listDir(base)) {
    for (const port of await listDir(join(base, hca, 'ports'))) {
      const dir = join(base, hca, 'ports', port);
      if ((await readTrimmed(join(dir, 'link_layer')).catch(() => 'InfiniBand')) !== 'InfiniBand') continue;
      const gbps = Number(/^([\d.]+) Gb\/sec/.exec(await readTrimmed(join(dir, 'rate')).catch(() => ''))?.[1]);
      out.push({ device: `${hca}:${port}`, kind: 'infiniband', speedMbps: gbps > 0 ? gbps * 1000 : undefined });
    }
  }
  return out;
}

/** The disks the diskstats source measures (same names, same ssd/hdd rule), with sysfs vendor and model. */
async function readDisks(o: CollectOptions): Promise<DiskInfo[]> {
  const out: DiskInfo[] = [];
  const lines = parseDiskstats(await readText(join(o.procfs, 'diskstats')).catch(() => ''));
  for (const { name } of lines) {
    if (o.diskExclude.test(name) || (await exists(join(o.sysfs, 'class/block', name, 'partition')))) continue;
    const dir = join(o.sysfs, 'block', name);
    const rot = name.startsWith('nvme') ? '0' : await readTrimmed(join(dir, 'queue/rotational')).catch(() => '0');
    const model = await readTrimmed(join(dir, 'device/model')).catch(() => '');
    const vendor = await readTrimmed(join(dir, 'device/vendor')).catch(() => '');
    out.push({ device: name, kind: rot === '1' ? 'hdd' : 'ssd', model: model || undefined, vendor: vendor || undefined });
  }
  return out;
}

const VENDORS: Record<string, string> = { GenuineIntel: 'Intel', AuthenticAMD: 'AMD', HygonGenuine: 'Hygon' };

/**
 * The CPU as /proc/cpuinfo describes it: sockets are distinct `physical id`s, cores distinct
 * (physical id, core id) pairs, threads `processor` entries. Undefined without a `model name`
 * (most aarch64 kernels), where systeminformation's answer is used once it comes.
 */
export function parseCpuinfo(text: string): CpuInfo | undefined {
  const model = /^model name\s*:\s*(.+)$/m.exec(text)?.[1].trim();
  if (!model) return undefined;
  const sockets = new Set<string>();
  const cores = new Set<string>();
  let threads = 0;
  for (const block of text.split(/\n\s*\n/)) {
    if (!/^processor\s*:/m.test(block)) continue;
    threads++;
    const socket = /^physical id\s*:\s*(\S+)/m.exec(block)?.[1] ?? '0';
    sockets.add(socket);
    cores.add(`${socket}/${/^core id\s*:\s*(\S+)/m.exec(block)?.[1] ?? threads}`);
  }
  const vendorId = /^vendor_id\s*:\s*(\S+)/m.exec(text)?.[1] ?? '';
  return { model, vendor: VENDORS[vendorId] ?? vendorId, sockets: Math.max(1, sockets.size), cores: cores.size, threads };
}

/** The fast step: files under --path.sysfs/--path.procfs only (no worker, no dmidecode). */
async function collectHostFacts(o: CollectOptions): Promise<Inventory> {
  const hostView = o.sysfs === '/sys' && o.procfs === '/proc';
  const [nics, disks, memoryBytes, cpuinfo] = await Promise.all([
    // IPoIB netdevs are left to their InfiniBand port, as the netdev source does.
    readInfiniband(o).then(async (ib) => [...(await readNics(o, ib.length > 0)), ...ib]),
    readDisks(o),
    readMemTotalBytes(o.procfs).catch(() => undefined),
    readText(join(o.procfs, 'cpuinfo')).catch(() => ''),
  ]);
  const notes: string[] = [];
  if (!hostView) {
    notes.push(
      `--path.sysfs/--path.procfs point at ${o.sysfs} and ${o.procfs}: NICs, disks, memory and the CPU come from there; DIMMs and ` +
        'system are systeminformation in the exporter\u2019s own view (firmware tables are not namespaced, so normally the same host)',
    );
  }
  return {
    scope: hostView ? 'host' : 'exporter-view',
    cpu: parseCpuinfo(cpuinfo),
    memoryBytes,
    dimms: [],
    // The x86 "hypervisor" CPU flag is kernel-wide (true in a container on a VM).
    hypervisor: /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo),
    nics,
    disks,
    partial: true,
    notes,
  };
}

/** The host facts completed with systeminformation's answers (copies: the facts stay as they were). */
function complete(facts: Inventory, si: SiResult): Inventory {
  // Vendor and model of disks by name from systeminformation, where it describes the same machine.
  const disks = facts.disks.map((d) => {
    const match = si.disks?.find((x) => x.device === `/dev/${d.device}`);
    return { ...d, model: d.model ?? (match?.name || undefined), vendor: d.vendor ?? (match?.vendor || undefined) };
  });
  const c = si.cpu;
  const cpu =
    facts.cpu ??
    (c
      ? {
          model: `${c.manufacturer} ${c.brand}`.trim(),
          vendor: c.manufacturer,
          sockets: Math.max(1, c.processors || 1),
          cores: c.physicalCores,
          threads: c.cores,
        }
      : undefined);
  const dimms = (si.memLayout ?? []).filter((m) => m.size > 0).map((m) => ({ sizeBytes: m.size, type: (m.type ?? '').toUpperCase() }));
  // A VM, not a container: systeminformation's `virtual` is also true inside Docker on bare metal,
  // so the hypervisor flag, else the hypervisor name systeminformation found.
  const virtual = Boolean(facts.hypervisor) || Boolean(si.system?.virtualHost);
  return {
    ...facts,
    cpu,
    dimms,
    system: si.system ? { vendor: si.system.manufacturer, model: si.system.model, virtual } : undefined,
    disks,
    partial: false,
    notes: [...si.errors, ...facts.notes],
  };
}

/**
 * Both steps of one inventory: `facts` at once; `complete()` starts systeminformation (once) and
 * merges it. `inBackground`: the first call's worker does not hold the process open.
 */
export interface InventoryScan {
  facts: Promise<Inventory>;
  complete(inBackground?: boolean): Promise<Inventory>;
}

/** Memoised per sysfs/procfs pair and options: hardware does not change while the process runs. */
const scans = new Map<string, InventoryScan>();

export function scanInventory(o: CollectOptions): InventoryScan {
  const key = `${o.sysfs}\0${o.procfs}\0${o.timeoutMs}\0${o.nicExclude.source}\0${o.nicInclude?.source ?? ''}\0${o.diskExclude.source}`;
  let scan = scans.get(key);
  if (!scan) {
    const facts = collectHostFacts(o);
    let full: Promise<Inventory> | undefined;
    const hostView = o.sysfs === '/sys' && o.procfs === '/proc';
    scan = {
      facts,
      complete: (inBackground = false) =>
        (full ??= Promise.all([facts, runSystemInformation(hostView, o.timeoutMs, !inBackground)]).then(([f, si]) => complete(f, si))),
    };
    scans.set(key, scan);
  }
  return scan;
}

/** The whole inventory (both steps). */
export function collectInventory(o: CollectOptions): Promise<Inventory> {
  return scanInventory(o).complete();
}
