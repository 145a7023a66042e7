import { Worker } from 'worker_threads';
import { parseDiskstats } from '../sources/diskstats';
import { isPhysicalPort } from '../sources/netdev';
import { exists, join, listDir, readText, readTrimmed } from '../util/fs';
import { readMemTotalBytes } from '../util/procfs';

/**
 * The start-up hardware inventory: systeminformation (CPU, DIMMs, system) on a worker thread,
 * bounded by a timeout, plus the NICs and disks read from --path.sysfs, the same tree the sources
 * read, so their names equal the `device` labels of the energy series.
 *
 * systeminformation reads the exporter's own /proc, /sys and runs dmidecode: with --path.sysfs or
 * --path.procfs pointing elsewhere (a container reading the host's files) its network and disk
 * views are the container's, so they are not used, and `scope` says what the rest describes.
 */

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
  cpu?: { model: string; vendor: string; sockets: number; cores: number; threads: number };
  /** MemTotal from --path.procfs, the same figure the DRAM model uses. */
  memoryBytes?: number;
  dimms: Dimm[];
  system?: { vendor: string; model: string; virtual: boolean };
  nics: NicInfo[];
  disks: DiskInfo[];
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

function runSystemInformation(hostView: boolean, timeoutMs: number): Promise<SiResult> {
  return new Promise((resolve) => {
    const worker = new Worker(SI_WORKER, { eval: true, workerData: { hostView, systeminformation: require.resolve('systeminformation') } });
    const timer = setTimeout(() => {
      void worker.terminate();
      resolve({ errors: [`systeminformation did not answer within ${timeoutMs} ms`] });
    }, timeoutMs);
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

/** Memoised per sysfs/procfs pair: hardware does not change while the process runs. */
const cache = new Map<string, Promise<Inventory>>();

export function collectInventory(o: CollectOptions): Promise<Inventory> {
  const key = `${o.sysfs}\0${o.procfs}\0${o.timeoutMs}\0${o.nicExclude.source}\0${o.nicInclude?.source ?? ''}\0${o.diskExclude.source}`;
  let p = cache.get(key);
  if (!p) {
    p = collect(o);
    cache.set(key, p);
  }
  return p;
}

async function collect(o: CollectOptions): Promise<Inventory> {
  const hostView = o.sysfs === '/sys' && o.procfs === '/proc';
  const [si, nics, disks, memoryBytes, cpuinfo] = await Promise.all([
    runSystemInformation(hostView, o.timeoutMs),
    // IPoIB netdevs are left to their InfiniBand port, as the netdev source does.
    readInfiniband(o).then(async (ib) => [...(await readNics(o, ib.length > 0)), ...ib]),
    readDisks(o),
    readMemTotalBytes(o.procfs).catch(() => undefined),
    readText(join(o.procfs, 'cpuinfo')).catch(() => ''),
  ]);
  // A VM, not a container: systeminformation's `virtual` is also true inside Docker on bare metal.
  // The x86 "hypervisor" CPU flag is kernel-wide (true in a container on a VM), else its hypervisor name.
  const virtual = /^flags\s*:.*\bhypervisor\b/m.test(cpuinfo) || Boolean(si.system?.virtualHost);
  const notes = [...si.errors];
  if (!hostView) {
    notes.push(
      `--path.sysfs/--path.procfs point at ${o.sysfs} and ${o.procfs}: NICs, disks and memory come from there; CPU, DIMMs and system ` +
        'are systeminformation in the exporter\u2019s own view (CPUs and firmware tables are not namespaced, so normally the same host)',
    );
  }
  // Vendor and model of disks by name from systeminformation, where it describes the same machine.
  for (const d of disks) {
    const match = si.disks?.find((x) => x.device === `/dev/${d.device}`);
    if (match && !d.model) d.model = match.name || undefined;
    if (match && !d.vendor) d.vendor = match.vendor || undefined;
  }
  const c = si.cpu;
  const dimms = (si.memLayout ?? []).filter((m) => m.size > 0).map((m) => ({ sizeBytes: m.size, type: (m.type ?? '').toUpperCase() }));
  return {
    scope: hostView ? 'host' : 'exporter-view',
    cpu: c
      ? {
          model: `${c.manufacturer} ${c.brand}`.trim(),
          vendor: c.manufacturer,
          sockets: Math.max(1, c.processors || 1),
          cores: c.physicalCores,
          threads: c.cores,
        }
      : undefined,
    memoryBytes,
    dimms,
    system: si.system ? { vendor: si.system.manufacturer, model: si.system.model, virtual } : undefined,
    nics,
    disks,
    notes,
  };
}
