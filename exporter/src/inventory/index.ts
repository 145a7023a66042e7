import type { Config } from '../config';
import { AmdSmiSource } from '../sources/amdsmi';
import { NIC_DEFAULTS } from '../sources/netdev';
import { NvmlSource } from '../sources/nvml';
import { RaplSource } from '../sources/rapl';
import type { Source } from '../sources/types';
import type { Logger } from '../util/log';
import { readMemTotalBytes } from '../util/procfs';
import { chooseModelParameters, type ModelChoices } from './choices';
import { collectInventory, type Inventory } from './collect';
import type { GpuDescription } from './series';

/** The inventory and the model choices made from it, taken once at start-up. */
export interface Hardware {
  inventory?: Inventory;
  choices: ModelChoices;
}

export async function takeInventory(cfg: Config, log: Logger, vcpus: number): Promise<Hardware> {
  let inventory: Inventory | undefined;
  if (cfg.inventory.enabled) {
    inventory = await collectInventory({
      sysfs: cfg.paths.sysfs,
      procfs: cfg.paths.procfs,
      timeoutMs: cfg.inventory.timeout,
      nicExclude: new RegExp(cfg.nics.exclude),
      nicInclude: cfg.nics.include ? new RegExp(cfg.nics.include) : undefined,
      diskExclude: new RegExp(cfg.disks.exclude),
    });
    for (const note of inventory.notes) log.info('hardware inventory', { note });
  }
  const memoryBytes = inventory?.memoryBytes ?? (await readMemTotalBytes(cfg.paths.procfs).catch(() => 0));
  const choices = chooseModelParameters(inventory, {
    cpuTdpWatts: cfg.cpu.tdpWatts,
    cpuTdpWattsPerVcpu: cfg.cpu.tdpWattsPerVcpu,
    vcpus,
    dramWattsPerGigabyte: cfg.dram.wattsPerGigabyte,
    memoryBytes,
    nicDefaultIdleWatts: cfg.nics.defaults.idleWatts,
    nicDeviceIdleWatts: Object.fromEntries(Object.entries(cfg.nics.devices).map(([k, v]) => [k, v.idleWatts])),
    nicFallbackIdleWatts: NIC_DEFAULTS.idleWatts,
  });
  return { inventory, choices };
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
