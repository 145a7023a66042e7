import type { Config } from './config';
import { DRAM_DEFAULT_WATTS_PER_GIB } from './inventory/choices';
import type { Hardware } from './inventory';
import type { Logger } from './util/log';
import { AmdSmiSource } from './sources/amdsmi';
import { CpuModelSource } from './sources/cpu-model';
import { DiskstatsSource } from './sources/diskstats';
import { DramModelSource } from './sources/dram-model';
import type { CoolingMeters } from './model/cooling';
import type * as Ipmi from './sources/meters/ipmi';
import type * as Modbus from './sources/meters/modbus';
import type * as Redfish from './sources/meters/redfish';
import type * as Snmp from './sources/meters/snmp';
import { InfinibandSource } from './sources/infiniband';
import { NIC_DEFAULTS, NetdevSource } from './sources/netdev';
import { NvmlSource } from './sources/nvml';
import { RaplSource } from './sources/rapl';
import type { Source } from './sources/types';

/**
 * Builds the sources the configuration enables (config → sources): the one place that knows both,
 * so that sources/ never imports the configuration.
 */

/**
 * Builds the enabled sources from the configuration. Measured sources win over models: the CPU
 * and DRAM models run only where RAPL has no zone for them.
 */
export async function createSources(cfg: Config, log: Logger, hardware?: Hardware): Promise<Source[]> {
  const { sysfs, procfs } = cfg.paths;
  const sources: Source[] = [];
  const l = (name: string) => log.child({ source: name });

  let rapl: RaplSource | undefined;
  if (cfg.sources.rapl) {
    rapl = new RaplSource(sysfs, l('rapl'), procfs);
    sources.push(rapl);
  }
  const raplPresent = rapl ? await rapl.init().catch(() => false) : false;

  if (cfg.sources.cpuModel && !(raplPresent && rapl?.hasDomain('cpu'))) {
    // The inventory's TDP where it chose one; the user's cpu.tdpWatts always wins (inventory/choices.ts).
    const cpu = hardware?.choices.cpu;
    const fromInventory = cpu?.basis === 'inventory' ? { tdpWatts: cpu.value, tdpFrom: `inventory: ${cpu.reason}` } : {};
    sources.push(new CpuModelSource(procfs, { ...cfg.cpu, ...fromInventory }, l('cpu-model')));
  }
  if (cfg.sources.dramModel && !(raplPresent && rapl?.hasDomain('dram'))) {
    const dramWatts = hardware?.choices.dram.basis === 'inventory' ? hardware.choices.dram.value : undefined;
    sources.push(new DramModelSource(procfs, cfg.dram.wattsPerGigabyte ?? DRAM_DEFAULT_WATTS_PER_GIB, l('dram-model'), dramWatts));
  }
  if (cfg.sources.diskstats) sources.push(new DiskstatsSource(procfs, sysfs, cfg.disks, l('diskstats')));
  // NIC idle power by link speed where the inventory chose it; configured values stay as they are.
  const nicDevices = { ...cfg.nics.devices };
  for (const c of hardware?.choices.nics ?? [])
    if (c.basis === 'inventory') nicDevices[c.device] = { ...nicDevices[c.device], idleWatts: c.value };
  let infiniband = false;
  if (cfg.sources.infiniband) {
    const ib = new InfinibandSource(sysfs, (device) => ({ ...NIC_DEFAULTS, ...cfg.nics.defaults, ...nicDevices[device] }), l('infiniband'));
    infiniband = await ib.init().catch(() => false);
    if (infiniband) sources.push(ib);
  }
  if (cfg.sources.netdev) sources.push(new NetdevSource(procfs, sysfs, { ...cfg.nics, devices: nicDevices }, l('netdev'), infiniband));
  const nvml = cfg.sources.nvml ? new NvmlSource({ library: cfg.nvml.library }, l('nvml')) : undefined;
  if (nvml) sources.push(nvml);
  // AMD GPUs are numbered after the NVIDIA ones, so `gpuN` names one GPU on a mixed node.
  const nvidiaCount = async () => (nvml && (await nvml.init()) ? nvml.devices.length : 0);
  if (cfg.sources.amdsmi) sources.push(new AmdSmiSource({ library: cfg.amdsmi.library, firstIndex: nvidiaCount }, l('amdsmi')));
  // Facility meters (cooling units, the room's IT feeds): one source each.
  sources.push(...createMeterSources(cfg, log));
  return sources;
}

/** One source per configured meter (docs/meters.md). */
export function createMeterSources(cfg: Config, log: Logger): Source[] {
  // Each meter's timeout is resolved by parseConfig (below the sampler's per-source timeout).
  return cfg.meters.map((m) => {
    const l = log.child({ source: `${m.protocol}:${m.name}` });
    // Each protocol's client loads only when a meter uses it (modbus-serial and net-snmp: ~30 ms of cold start).
    /* eslint-disable @typescript-eslint/no-require-imports -- synchronous lazy loading, see above */
    switch (m.protocol) {
      case 'snmp':
        return new (require('./sources/meters/snmp') as typeof Snmp).SnmpMeterSource(m, m.timeout, l);
      case 'modbus':
        return new (require('./sources/meters/modbus') as typeof Modbus).ModbusMeterSource(m, m.timeout, l);
      case 'redfish':
        return new (require('./sources/meters/redfish') as typeof Redfish).RedfishMeterSource(m, m.timeout, l);
      case 'ipmi':
        return new (require('./sources/meters/ipmi') as typeof Ipmi).IpmiMeterSource(m, m.timeout, l);
    }
    /* eslint-enable @typescript-eslint/no-require-imports */
  });
}

/** The meter names and share for the sampler's cooling accounting. */
export function coolingMeters(cfg: Config): CoolingMeters {
  return {
    cooling: cfg.meters.filter((m) => m.role === 'cooling').map((m) => m.name),
    it: cfg.meters.filter((m) => m.role === 'it').map((m) => m.name),
    share: cfg.cooling.share,
    cop: Object.fromEntries(cfg.meters.flatMap((m) => (m.cop === undefined ? [] : [[m.name, m.cop] as const]))),
  };
}
