import type { Config } from '../config';
import { AmdSmiSource } from '../sources/amdsmi';
import { NIC_DEFAULTS } from '../sources/netdev';
import { NvmlSource } from '../sources/nvml';
import { RaplSource } from '../sources/rapl';
import type { Source } from '../sources/types';
import type { Logger } from '../util/log';
import { readMemTotalBytes } from '../util/procfs';
import { chooseModelParameters, type ModelChoices } from './choices';
import { scanInventory, type Inventory } from './collect';
import type { GpuDescription } from './series';

/** The inventory and the model choices made from it. */
export interface Hardware {
  inventory?: Inventory;
  choices: ModelChoices;
}

/**
 * The start-up hardware in two steps (inventory/collect.ts). `initial` comes from the host facts,
 * before the sources: the CPU TDP and the NIC idle power are chosen there and never change.
 * `complete()` starts systeminformation (once) and adds the DIMMs and the system; of the choices
 * only the DRAM power may change then (from the per-GiB default to the DIMMs' figure).
 */
export interface HardwareScan {
  initial: Hardware;
  /** `inBackground`: systeminformation's worker does not hold the process open (serve). */
  complete(inBackground?: boolean): Promise<Hardware>;
}

export async function scanHardware(cfg: Config, log: Logger, vcpus: number): Promise<HardwareScan> {
  const choose = async (inventory: Inventory | undefined): Promise<ModelChoices> =>
    chooseModelParameters(inventory, {
      cpuTdpWatts: cfg.cpu.tdpWatts,
      cpuTdpWattsPerVcpu: cfg.cpu.tdpWattsPerVcpu,
      vcpus,
      dramWattsPerGigabyte: cfg.dram.wattsPerGigabyte,
      memoryBytes: inventory?.memoryBytes ?? (await readMemTotalBytes(cfg.paths.procfs).catch(() => 0)),
      nicDefaultIdleWatts: cfg.nics.defaults.idleWatts,
      nicDeviceIdleWatts: Object.fromEntries(Object.entries(cfg.nics.devices).map(([k, v]) => [k, v.idleWatts])),
      nicFallbackIdleWatts: NIC_DEFAULTS.idleWatts,
    });
  if (!cfg.inventory.enabled) {
    const off: Hardware = { choices: await choose(undefined) };
    return { initial: off, complete: () => Promise.resolve(off) };
  }
  const scan = scanInventory({
    sysfs: cfg.paths.sysfs,
    procfs: cfg.paths.procfs,
    timeoutMs: cfg.inventory.timeout,
    nicExclude: new RegExp(cfg.nics.exclude),
    nicInclude: cfg.nics.include ? new RegExp(cfg.nics.include) : undefined,
    diskExclude: new RegExp(cfg.disks.exclude),
  });
  const facts = await scan.facts;
  const initial: Hardware = { inventory: facts, choices: await choose(facts) };
  let full: Promise<Hardware> | undefined;
  const complete = async (inBackground: boolean): Promise<Hardware> => {
    const inventory = await scan.complete(inBackground);
    for (const note of inventory.notes) log.info('hardware inventory', { note });
    const { dram } = await choose(inventory);
    return { inventory, choices: { ...initial.choices, dram } };
  };
  return { initial, complete: (inBackground = false) => (full ??= complete(inBackground)) };
}

/** The GPUs the GPU sources found at init, for the device info series and the landing page. */
export function gpuDescriptions(sources: readonly Source[]): GpuDescription[] {
  const out: GpuDescription[] = [];
  for (const s of sources) {
    if (s instanceof NvmlSource) {
      for (const d of s.devices)
        out.push({ device: d.device, vendor: 'nvidia', model: d.name, uuid: d.uuid, powerLimitWatts: d.powerLimitWatts });
    } else if (s instanceof AmdSmiSource) {
      for (const d of s.devices) out.push({ device: d.device, vendor: 'amd', model: d.name, uuid: d.uuid, powerLimitWatts: d.capWatts });
    }
  }
  return out;
}

/** The CPU and DRAM devices RAPL measures (package-N, dram-N), when it is present. */
export function measuredCpuDevices(
  sources: readonly Source[],
  present: (name: string) => boolean,
): Array<{ device: string; kind: 'cpu' | 'dram' }> {
  const rapl = sources.find((s): s is RaplSource => s instanceof RaplSource);
  if (!rapl || !present(rapl.name)) return [];
  return rapl.devices.map((d) => ({ device: d.device, kind: d.domain === 'dram' ? 'dram' : 'cpu' }));
}
