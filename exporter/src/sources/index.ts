import type { Config } from '../config';
import type { Logger } from '../util/log';
import { CpuModelSource } from './cpu-model';
import { DiskstatsSource } from './diskstats';
import { DramModelSource } from './dram-model';
import { createMeterSources } from './meters';
import { InfinibandSource } from './infiniband';
import { NIC_DEFAULTS, NetdevSource } from './netdev';
import { NvmlSource } from './nvml';
import { RaplSource } from './rapl';
import type { Source } from './types';

/**
 * Builds the enabled sources from the configuration. Measured sources win over models: the CPU
 * and DRAM models run only where RAPL has no zone for them.
 */
export async function createSources(cfg: Config, log: Logger): Promise<Source[]> {
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
    sources.push(new CpuModelSource(procfs, cfg.cpu, l('cpu-model')));
  }
  if (cfg.sources.dramModel && !(raplPresent && rapl?.hasDomain('dram'))) {
    sources.push(new DramModelSource(procfs, cfg.dram.wattsPerGigabyte, l('dram-model')));
  }
  if (cfg.sources.diskstats) sources.push(new DiskstatsSource(procfs, sysfs, cfg.disks, l('diskstats')));
  let infiniband = false;
  if (cfg.sources.infiniband) {
    const ib = new InfinibandSource(
      sysfs,
      (device) => ({ ...NIC_DEFAULTS, ...cfg.nics.defaults, ...cfg.nics.devices[device] }),
      l('infiniband'),
    );
    infiniband = await ib.init().catch(() => false);
    if (infiniband) sources.push(ib);
  }
  if (cfg.sources.netdev) sources.push(new NetdevSource(procfs, sysfs, cfg.nics, l('netdev'), infiniband));
  if (cfg.sources.nvml) sources.push(new NvmlSource({ library: cfg.nvml.library }, l('nvml')));
  // Facility meters (cooling units, the room's IT feeds): one source each.
  sources.push(...createMeterSources(cfg, log));
  return sources;
}
