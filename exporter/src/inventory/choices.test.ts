import { chooseModelParameters, nicIdleWattsForSpeed, type ModelDefaults } from './choices';
import type { Inventory } from './collect';

const GiB = 2 ** 30;
const defaults: ModelDefaults = {
  cpuTdpWattsPerVcpu: 3.5,
  vcpus: 128,
  memoryBytes: 512 * GiB,
  nicDeviceIdleWatts: {},
  nicFallbackIdleWatts: 1,
};
const server: Inventory = {
  scope: 'host',
  cpu: { model: 'AMD EPYC 7763 64-Core Processor', vendor: 'AMD', sockets: 2, cores: 128, threads: 256 },
  memoryBytes: 512 * GiB,
  dimms: Array.from({ length: 16 }, () => ({ sizeBytes: 32 * GiB, type: 'DDR5' })),
  system: { vendor: 'Dell Inc.', model: 'PowerEdge R7525', virtual: false },
  nics: [
    { device: 'eth0', kind: 'nic', speedMbps: 25_000 },
    { device: 'eth1', kind: 'nic', speedMbps: 1_000 },
    { device: 'eth2', kind: 'nic' },
  ],
  disks: [],
  notes: [],
};

describe('model choices from the inventory', () => {
  test('CPU: TDP per socket from the table × sockets, with the source in the reason', () => {
    const c = chooseModelParameters(server, defaults).cpu;
    expect(c).toMatchObject({ value: 2 * 280, basis: 'inventory', device: 'cpu' });
    expect(c.reason).toMatch(/AMD EPYC 7763: 280 W per socket × 2/);
    expect(c.reason).toMatch(/amd\.com/);
  });

  test('CPU: the configuration wins over the table', () => {
    expect(chooseModelParameters(server, { ...defaults, cpuTdpWatts: 400 }).cpu).toMatchObject({ value: 400, basis: 'config' });
  });

  test('CPU: a VM or an unknown model falls back to W per vCPU, saying why', () => {
    const vm = chooseModelParameters({ ...server, system: { vendor: '', model: 'KVM', virtual: true } }, defaults).cpu;
    expect(vm).toMatchObject({ value: 3.5 * 128, basis: 'default' });
    expect(vm.reason).toMatch(/virtual machine/);
    const unknown = chooseModelParameters({ ...server, cpu: { ...server.cpu!, model: 'Some Future CPU' } }, defaults).cpu;
    expect(unknown).toMatchObject({ value: 3.5 * 128, basis: 'default' });
    expect(unknown.reason).toMatch(/"Some Future CPU" is not in the TDP table/);
  });

  test('DRAM: W per DIMM by type and size (DDR5: Crucial 3 W per 8 GB scaled by (1.1/1.2)²)', () => {
    const d = chooseModelParameters(server, defaults).dram;
    expect(d.basis).toBe('inventory');
    expect(d.value).toBeCloseTo(16 * 32 * (3 / 8) * (1.1 / 1.2) ** 2, 9);
    const ddr4 = chooseModelParameters({ ...server, dimms: [{ sizeBytes: 64 * GiB, type: 'DDR4' }] }, defaults).dram;
    expect(ddr4.value).toBeCloseTo(64 * 0.375, 9);
  });

  test('DRAM: no DIMM list or an unknown type falls back to 0.392 W/GiB of MemTotal; the configuration wins', () => {
    expect(chooseModelParameters({ ...server, dimms: [] }, defaults).dram).toMatchObject({ value: 512 * 0.392, basis: 'default' });
    const lp = chooseModelParameters({ ...server, dimms: [{ sizeBytes: 64 * GiB, type: 'LPDDR5' }] }, defaults).dram;
    expect(lp).toMatchObject({ value: 512 * 0.392, basis: 'default' });
    expect(lp.reason).toMatch(/LPDDR5/);
    expect(chooseModelParameters(server, { ...defaults, dramWattsPerGigabyte: 0.5 }).dram).toMatchObject({ value: 256, basis: 'config' });
  });

  test('NICs: idle watts by link speed; unknown speed → default; configuration wins per device and as default', () => {
    const nics = chooseModelParameters(server, defaults).nics;
    expect(nics.map((n) => [n.device, n.value, n.basis])).toEqual([
      ['eth0', nicIdleWattsForSpeed(25_000), 'inventory'],
      ['eth1', 1, 'inventory'],
      ['eth2', 1, 'default'],
    ]);
    const own = chooseModelParameters(server, { ...defaults, nicDeviceIdleWatts: { eth0: 9 }, nicDefaultIdleWatts: 2 }).nics;
    expect(own.map((n) => [n.device, n.value, n.basis])).toEqual([
      ['eth0', 9, 'config'],
      ['eth1', 2, 'config'],
      ['eth2', 2, 'config'],
    ]);
  });

  test('NIC speed classes rise with the link speed', () => {
    const speeds = [100, 1_000, 10_000, 25_000, 40_000, 100_000, 200_000, 400_000, 800_000];
    const watts = speeds.map(nicIdleWattsForSpeed);
    for (let i = 1; i < watts.length; i++) expect(watts[i]).toBeGreaterThanOrEqual(watts[i - 1]);
    expect(nicIdleWattsForSpeed(1_000)).toBe(1);
  });

  test('without an inventory every choice is the default', () => {
    const c = chooseModelParameters(undefined, defaults);
    expect([c.cpu.basis, c.dram.basis, c.nics.length]).toEqual(['default', 'default', 0]);
  });
});
