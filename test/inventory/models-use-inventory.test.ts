import { parseConfig } from '../../exporter/src/config';
import { scanHardware } from '../../exporter/src/inventory';
import { chooseModelParameters, nicIdleWattsForSpeed } from '../../exporter/src/inventory/choices';
import type { Inventory } from '../../exporter/src/inventory/collect';
import { createSources } from '../../exporter/src/source-factory';
import { CpuModelSource } from '../../exporter/src/sources/cpu-model';
import { DramModelSource } from '../../exporter/src/sources/dram-model';
import type { Reading, Source } from '../../exporter/src/sources/types';
import { createLogger } from '../../exporter/src/util/log';
import { FixtureTree } from '../helpers/fixture';

/**
 * The models run with what the inventory chose: a recorded host tree (no RAPL, eth0 at 25 Gb/s)
 * with a bare-metal inventory of 2 × EPYC 7763 and 16 × 32 GiB DDR5.
 */

const GiB = 2 ** 30;
const log = createLogger('error');
let tree: FixtureTree;
beforeAll(() => {
  tree = new FixtureTree();
  tree.write('sys/class/net/eth0/speed', '25000\n');
  tree.write('sys/class/infiniband/mlx5_0/ports/1/rate', '200 Gb/sec (4X HDR)\n');
});
afterAll(() => tree.cleanup());

const config = (extra: Record<string, unknown> = {}) =>
  parseConfig({
    paths: { sysfs: tree.sysfs, procfs: tree.procfs },
    sources: { rapl: false, nvml: false, amdsmi: false, infiniband: false },
    ...extra,
  });

function inventory(): Inventory {
  return {
    scope: 'exporter-view',
    cpu: { model: 'AMD EPYC 7763 64-Core Processor', vendor: 'AMD', sockets: 2, cores: 128, threads: 256 },
    memoryBytes: 512 * GiB,
    dimms: Array.from({ length: 16 }, () => ({ sizeBytes: 32 * GiB, type: 'DDR5' })),
    system: { vendor: 'Dell Inc.', model: 'PowerEdge R7525', virtual: false },
    nics: [{ device: 'eth0', kind: 'nic', speedMbps: 25_000 }],
    disks: [],
    notes: [],
  };
}

async function firstReadings(sources: Source[]): Promise<Reading[]> {
  const out: Reading[] = [];
  for (const s of sources) {
    await s.init();
    out.push(...(await s.sample({ now: 0, signal: new AbortController().signal })).readings);
  }
  return out;
}

test('CPU TDP, DRAM watts and the NIC idle power are the inventory’s choices', async () => {
  const cfg = config();
  const inv = inventory();
  const choices = chooseModelParameters(inv, {
    cpuTdpWattsPerVcpu: 3.5,
    vcpus: 256,
    memoryBytes: 512 * GiB,
    nicDeviceIdleWatts: {},
    nicFallbackIdleWatts: 1,
  });
  const sources = await createSources(cfg, log, { inventory: inv, choices });
  const readings = await firstReadings(sources);
  const cpu = sources.find((s): s is CpuModelSource => s instanceof CpuModelSource);
  expect(cpu?.tdpWatts).toBe(2 * 280);
  const dram = readings.find((r) => r.device === 'dram');
  expect(dram?.kind === 'mean_power' && dram.watts).toBeCloseTo(16 * 32 * 0.375 * (1.1 / 1.2) ** 2, 9);
  const eth0 = readings.find((r) => r.device === 'eth0');
  expect(eth0?.kind === 'activity' && eth0.idleWatts).toBe(nicIdleWattsForSpeed(25_000));
});

test('the configuration wins over every inventory choice', async () => {
  const cfg = config({ cpu: { tdpWatts: 123 }, dram: { wattsPerGigabyte: 0.5 }, nics: { devices: { eth0: { idleWatts: 7 } } } });
  const inv = inventory();
  const choices = chooseModelParameters(inv, {
    cpuTdpWatts: 123,
    cpuTdpWattsPerVcpu: 3.5,
    vcpus: 256,
    dramWattsPerGigabyte: 0.5,
    memoryBytes: 512 * GiB,
    nicDeviceIdleWatts: { eth0: 7 },
    nicFallbackIdleWatts: 1,
  });
  const sources = await createSources(cfg, log, { inventory: inv, choices });
  const readings = await firstReadings(sources);
  expect(sources.find((s): s is CpuModelSource => s instanceof CpuModelSource)?.tdpWatts).toBe(123);
  const memTotalKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(tree.read('proc/meminfo'))?.[1]);
  const dram = readings.find((r) => r.device === 'dram');
  expect(dram?.kind === 'mean_power' && dram.watts).toBeCloseTo(((memTotalKb * 1024) / GiB) * 0.5, 9);
  const eth0 = readings.find((r) => r.device === 'eth0');
  expect(eth0?.kind === 'activity' && eth0.idleWatts).toBe(7);
});

test('the inventory of the tree: NIC speed from its sysfs, memory from its meminfo', async () => {
  const hw = await (await scanHardware(config(), log, 4)).complete();
  expect(hw.inventory?.nics.find((n) => n.device === 'eth0')?.speedMbps).toBe(25_000);
  expect(hw.choices.nics.find((c) => c.device === 'eth0')).toMatchObject({ basis: 'inventory', value: nicIdleWattsForSpeed(25_000) });
  expect(hw.inventory?.nics.find((n) => n.device === 'mlx5_0:1')).toEqual({ device: 'mlx5_0:1', kind: 'infiniband', speedMbps: 200_000 });
  // The infiniband source charges that port the idle power of its speed class.
  const ib = (
    await firstReadings(
      await createSources(
        config({
          sources: {
            infiniband: true,
            netdev: false,
            cpuModel: false,
            dramModel: false,
            diskstats: false,
            rapl: false,
            nvml: false,
            amdsmi: false,
          },
        }),
        log,
        hw,
      ),
    )
  ).find((r) => r.device === 'mlx5_0:1');
  expect(ib?.kind === 'activity' && ib.idleWatts).toBe(nicIdleWattsForSpeed(200_000));
});

test('serve: DRAM starts on the per-GiB default while the DIMMs are unread, then takes their figure', async () => {
  const cfg = config();
  const facts: Inventory = { ...inventory(), dimms: [], system: undefined, partial: true };
  const defaults = { cpuTdpWattsPerVcpu: 3.5, vcpus: 256, memoryBytes: 512 * GiB, nicDeviceIdleWatts: {}, nicFallbackIdleWatts: 1 };
  const initial = chooseModelParameters(facts, defaults);
  expect(initial.dram).toMatchObject({ basis: 'default', reason: expect.stringMatching(/not read yet/) });
  const sources = await createSources(cfg, log, { inventory: facts, choices: initial });
  const memTotalKb = Number(/^MemTotal:\s+(\d+) kB/m.exec(tree.read('proc/meminfo'))?.[1]);
  const dramWatts = async () => {
    const r = (await firstReadings(sources)).find((x) => x.device === 'dram');
    return r?.kind === 'mean_power' ? r.watts : undefined;
  };
  expect(await dramWatts()).toBeCloseTo(((memTotalKb * 1024) / GiB) * 0.392, 9);
  const complete = chooseModelParameters(inventory(), defaults).dram;
  expect(complete.basis).toBe('inventory');
  sources.find((s): s is DramModelSource => s instanceof DramModelSource)?.useDimmWatts(complete.value);
  // init() again (firstReadings) must keep the DIMMs' figure.
  expect(await dramWatts()).toBeCloseTo(16 * 32 * 0.375 * (1.1 / 1.2) ** 2, 9);
});
