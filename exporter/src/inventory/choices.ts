import type { Component } from '../sources/types';
import { lookupCpuTdp } from './cpu-tdp';
import type { Inventory } from './collect';

/**
 * The model parameters the inventory chooses, each with where it came from and why: the user's
 * configuration always wins; then the hardware found at start-up (CPU TDP table, DIMMs by type
 * and size, NIC link speed); else today's defaults, with the reason the inventory did not apply.
 */

export type Basis = 'config' | 'inventory' | 'default';

export interface Choice {
  component: Component;
  device: string;
  parameter: 'cpu_tdp_watts' | 'dram_watts' | 'nic_idle_watts';
  value: number;
  basis: Basis;
  reason: string;
}

export interface ModelChoices {
  cpu: Choice;
  dram: Choice;
  nics: Choice[];
}

export interface ModelDefaults {
  /** cpu.tdpWatts as configured (all sockets), if any. */
  cpuTdpWatts?: number;
  cpuTdpWattsPerVcpu: number;
  vcpus: number;
  /** dram.wattsPerGigabyte as configured, if any. */
  dramWattsPerGigabyte?: number;
  /** Memory the DRAM model sees (MemTotal), bytes. */
  memoryBytes: number;
  nicDefaultIdleWatts?: number;
  nicDeviceIdleWatts: Record<string, number | undefined>;
  nicFallbackIdleWatts: number;
}

/** The figure Cloud Carbon Footprint and CodeCarbon use, per GiB installed. */
export const DRAM_DEFAULT_WATTS_PER_GIB = 0.392;

/**
 * DRAM watts per GiB of a DIMM, by type. DDR3/DDR4: Crucial's rule of thumb of 3 W per 8 GB
 * module ("How much power does my memory use?", crucial.com). DDR5 runs at VDD 1.1 V instead of
 * 1.2 V (JEDEC JESD79-5 vs JESD79-4); dynamic power scales with V², so 0.375 × (1.1/1.2)².
 */
export const DRAM_WATTS_PER_GIB_BY_TYPE: Record<string, { wattsPerGib: number; source: string }> = {
  DDR3: { wattsPerGib: 3 / 8, source: 'Crucial: 3 W per 8 GB of DDR3/DDR4' },
  DDR4: { wattsPerGib: 3 / 8, source: 'Crucial: 3 W per 8 GB of DDR3/DDR4' },
  DDR5: { wattsPerGib: (3 / 8) * (1.1 / 1.2) ** 2, source: 'Crucial DDR4 figure × (1.1 V / 1.2 V)², JEDEC JESD79-5 VDD' },
};

/**
 * NIC port idle watts by link speed (Mb/s, upper bound of the class). An assumption, not a
 * measurement: the order of typical adapter power per port in vendor datasheets, rising with the
 * SerDes rate; 1 GbE keeps today's 1 W default. Set nics.devices.<if>.idleWatts from your datasheet.
 */
export const NIC_IDLE_WATTS_BY_SPEED: ReadonlyArray<{ upToMbps: number; watts: number }> = [
  { upToMbps: 1_000, watts: 1 },
  { upToMbps: 10_000, watts: 3 },
  { upToMbps: 25_000, watts: 5 },
  { upToMbps: 50_000, watts: 8 },
  { upToMbps: 100_000, watts: 12 },
  { upToMbps: 200_000, watts: 18 },
  { upToMbps: Infinity, watts: 25 },
];

const gib = (bytes: number) => bytes / 2 ** 30;
const round = (x: number) => Math.round(x * 1000) / 1000;

function chooseCpu(inv: Inventory | undefined, d: ModelDefaults): Choice {
  const base = { component: 'compute', device: 'cpu', parameter: 'cpu_tdp_watts' } as const;
  if (d.cpuTdpWatts !== undefined) return { ...base, value: d.cpuTdpWatts, basis: 'config', reason: 'cpu.tdpWatts in the configuration' };
  const fallback = (why: string): Choice => ({
    ...base,
    value: d.cpuTdpWattsPerVcpu * d.vcpus,
    basis: 'default',
    reason: `${why}; ${d.cpuTdpWattsPerVcpu} W × ${d.vcpus} vCPUs`,
  });
  if (!inv?.cpu) return fallback('no CPU inventory');
  // A VM's vCPUs are a slice of a socket: the socket's TDP would bill other tenants' cores.
  if (inv.hypervisor || inv.system?.virtual)
    return fallback(`virtual machine (${inv.system?.model || 'hypervisor'}): a socket TDP would count cores outside this VM`);
  const hit = lookupCpuTdp(inv.cpu.model);
  if (!hit) return fallback(`CPU model "${inv.cpu.model}" is not in the TDP table`);
  return {
    ...base,
    value: hit.wattsPerSocket * inv.cpu.sockets,
    basis: 'inventory',
    reason: `${hit.name}: ${hit.wattsPerSocket} W per socket × ${inv.cpu.sockets} socket(s) (${hit.source})`,
  };
}

function chooseDram(inv: Inventory | undefined, d: ModelDefaults): Choice {
  const base = { component: 'compute', device: 'dram', parameter: 'dram_watts' } as const;
  if (d.dramWattsPerGigabyte !== undefined) {
    return {
      ...base,
      value: gib(d.memoryBytes) * d.dramWattsPerGigabyte,
      basis: 'config',
      reason: 'dram.wattsPerGigabyte in the configuration',
    };
  }
  const fallback = (why: string): Choice => ({
    ...base,
    value: gib(d.memoryBytes) * DRAM_DEFAULT_WATTS_PER_GIB,
    basis: 'default',
    reason: `${why}; ${DRAM_DEFAULT_WATTS_PER_GIB} W/GiB × ${gib(d.memoryBytes).toFixed(1)} GiB`,
  });
  const dimms = inv?.dimms ?? [];
  if (dimms.length === 0)
    return fallback(
      inv?.partial
        ? 'DIMM list not read yet (systeminformation answers after start-up)'
        : 'no DIMM list (dmidecode unavailable or not permitted)',
    );
  const unknown = dimms.find((m) => !DRAM_WATTS_PER_GIB_BY_TYPE[m.type]);
  if (unknown) return fallback(`DIMM type "${unknown.type || 'unknown'}" has no per-GiB figure`);
  let watts = 0;
  const types = new Map<string, { n: number; gib: number }>();
  for (const m of dimms) {
    watts += gib(m.sizeBytes) * DRAM_WATTS_PER_GIB_BY_TYPE[m.type].wattsPerGib;
    const t = types.get(m.type) ?? { n: 0, gib: 0 };
    t.n++;
    t.gib += gib(m.sizeBytes);
    types.set(m.type, t);
  }
  const parts = [...types].map(
    ([t, v]) =>
      `${v.n} × ${t} (${v.gib.toFixed(0)} GiB, ${round(DRAM_WATTS_PER_GIB_BY_TYPE[t].wattsPerGib)} W/GiB: ${DRAM_WATTS_PER_GIB_BY_TYPE[t].source})`,
  );
  return { ...base, value: watts, basis: 'inventory', reason: parts.join('; ') };
}

export function nicIdleWattsForSpeed(mbps: number): number {
  return (NIC_IDLE_WATTS_BY_SPEED.find((c) => mbps <= c.upToMbps) ?? NIC_IDLE_WATTS_BY_SPEED[NIC_IDLE_WATTS_BY_SPEED.length - 1]).watts;
}

function chooseNics(inv: Inventory | undefined, d: ModelDefaults): Choice[] {
  return (inv?.nics ?? []).map((n): Choice => {
    const base = { component: 'transmit', device: n.device, parameter: 'nic_idle_watts' } as const;
    const own = d.nicDeviceIdleWatts[n.device];
    if (own !== undefined)
      return { ...base, value: own, basis: 'config', reason: `nics.devices.${n.device}.idleWatts in the configuration` };
    if (d.nicDefaultIdleWatts !== undefined)
      return { ...base, value: d.nicDefaultIdleWatts, basis: 'config', reason: 'nics.defaults.idleWatts in the configuration' };
    if (n.speedMbps === undefined)
      return { ...base, value: d.nicFallbackIdleWatts, basis: 'default', reason: 'link speed unknown (down, or not reported)' };
    return {
      ...base,
      value: nicIdleWattsForSpeed(n.speedMbps),
      basis: 'inventory',
      reason: `${n.speedMbps} Mb/s link (assumed idle power by speed class)`,
    };
  });
}

export function chooseModelParameters(inv: Inventory | undefined, d: ModelDefaults): ModelChoices {
  return { cpu: chooseCpu(inv, d), dram: chooseDram(inv, d), nics: chooseNics(inv, d) };
}
