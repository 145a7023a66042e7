import { FixtureTree, bumpDiskstats, bumpProcStat } from '../../../test/helpers/fixture';
import { silentLogger } from '../util/log';
import { parseProcStat } from '../util/procfs';
import { CpuModelSource, curveFactor } from './cpu-model';
import { DISK_DEFAULTS, DiskstatsSource, parseDiskstats } from './diskstats';
import { DramModelSource } from './dram-model';
import { NIC_DEFAULTS, NetdevSource, parseProcNetDev } from './netdev';
import { IB_DATA_UNIT_BYTES, InfinibandSource } from './infiniband';
import { EnergyModel } from '../model/energy';
import { RAPL_FALLBACK_BOUNDS, RaplSource } from './rapl';
import type { ActivityReading, CounterReading, MeanPowerReading } from './types';

let tree: FixtureTree;
beforeEach(() => (tree = new FixtureTree()));
afterEach(() => tree.cleanup());

describe('RAPL', () => {
  test('counts packages and dram zones, skips core sub-zones and the mmio duplicate', async () => {
    const rapl = new RaplSource(tree.sysfs, silentLogger);
    expect(await rapl.init()).toBe(true);
    const { readings } = await rapl.sample();
    const r = readings as CounterReading[];
    expect(r.map((x) => x.device).sort()).toEqual(['dram-0', 'dram-1', 'package-0', 'package-1']);
    const pkg1 = r.find((x) => x.device === 'package-1')!;
    expect(pkg1.joules).toBe(262143); // 262143000000 µJ
    expect(pkg1.wrapJoules).toBeCloseTo(262143.32885, 9);
    expect(pkg1.maxPowerWatts).toBe(250);
    expect(r.find((x) => x.device === 'dram-0')!.domain).toBe('dram');
    expect(rapl.hasDomain('dram')).toBe(true);
  });

  test('every zone has a power bound: published, else TDP default, DRAM from installed GiB', async () => {
    const rapl = new RaplSource(tree.sysfs, silentLogger, tree.procfs);
    await rapl.init();
    const r = (await rapl.sample()).readings as CounterReading[];
    // test/fixtures/host: MemTotal 67108864 kB = 64 GiB over two dram zones.
    for (const d of ['dram-0', 'dram-1'])
      expect(r.find((x) => x.device === d)!.maxPowerWatts).toBe(32 * RAPL_FALLBACK_BOUNDS.dramWattsPerGiB);
    expect(r.find((x) => x.device === 'package-0')!.maxPowerWatts).toBe(250);
    tree.write('sys/class/powercap/intel-rapl:1/constraint_0_max_power_uw', '0\n');
    const noTdp = new RaplSource(tree.sysfs, silentLogger);
    await noTdp.init();
    const pkg1 = ((await noTdp.sample()).readings as CounterReading[]).find((x) => x.device === 'package-1')!;
    expect(pkg1.maxPowerWatts).toBe(RAPL_FALLBACK_BOUNDS.packageWatts);
  });

  test('issue 10 repro: a DRAM zone stepping back by 100 J is a counted reset, not +65 623 J', async () => {
    const rapl = new RaplSource(tree.sysfs, silentLogger, tree.procfs);
    await rapl.init();
    const model = new EnergyModel();
    const zone = 'sys/class/powercap/intel-rapl:0:1/energy_uj';
    const before = Number(tree.read(zone).trim()) / 1e6;
    const dram0 = async (t: number) => {
      const step = model.step(t, (await rapl.sample()).readings);
      return {
        joules: step.series.find((s) => s.device === 'dram-0')!.joules,
        resets: step.events.filter((e) => e.reason === 'counter_reset').length,
      };
    };
    await dram0(0);
    tree.write(zone, `${Math.round((before - 100) * 1e6)}\n`); // the issue's `echo … > energy_uj`
    const back = await dram0(1000);
    tree.write(zone, `${Math.round((before - 100 + 3) * 1e6)}\n`);
    const after = await dram0(2000);
    expect(back.joules + after.joules).toBeCloseTo(3, 6);
    expect(back.resets + after.resets).toBe(1);
  });

  test('no powercap directory: absent, not an error', async () => {
    tree.cleanup();
    tree = new FixtureTree();
    const rapl = new RaplSource(tree.path('nonexistent'), silentLogger);
    expect(await rapl.init()).toBe(false);
  });
});

describe('CPU and DRAM models', () => {
  test('Teads curve: exact at its points, linear between them', () => {
    const curve: Array<[number, number]> = [
      [0, 0.12],
      [10, 0.32],
      [50, 0.75],
      [100, 1.02],
    ];
    expect(curveFactor(curve, 0)).toBe(0.12);
    expect(curveFactor(curve, 50)).toBe(0.75);
    expect(curveFactor(curve, 30)).toBeCloseTo(0.535, 12);
    expect(curveFactor(curve, 100)).toBe(1.02);
  });

  test('utilisation from /proc/stat deltas drives the mean power over TDP', async () => {
    const src = new CpuModelSource(
      tree.procfs,
      {
        tdpWatts: 200,
        tdpWattsPerVcpu: 3.5,
        curve: [
          [0, 0.12],
          [10, 0.32],
          [50, 0.75],
          [100, 1.02],
        ],
      },
      silentLogger,
    );
    await src.init();
    bumpProcStat(tree, 300, 300); // 50 % busy
    const r = (await src.sample()).readings[0] as MeanPowerReading;
    expect(r.source).toBe('model');
    expect(r.watts).toBeCloseTo(200 * 0.75, 9);
  });

  test('unknown TDP: per-vCPU default × CPUs counted in /proc/stat', async () => {
    const src = new CpuModelSource(
      tree.procfs,
      {
        tdpWattsPerVcpu: 3.5,
        curve: [
          [0, 0.12],
          [100, 1.02],
        ],
      },
      silentLogger,
    );
    await src.init();
    expect(src.tdpWatts).toBe(14);
    expect(parseProcStat(tree.read('proc/stat')).cpus).toBe(4);
  });

  test('DRAM: 0.392 W per GiB installed; 64 GiB → 25.088 W', async () => {
    const src = new DramModelSource(tree.procfs, 0.392, silentLogger);
    await src.init();
    const r = (await src.sample()).readings[0] as MeanPowerReading;
    expect(r.watts).toBeCloseTo(64 * 0.392, 9);
    expect(r.source).toBe('model');
  });
});

describe('diskstats', () => {
  test('parses sectors as 512-byte units', () => {
    const d = parseDiskstats(tree.read('proc/diskstats')).find((x) => x.name === 'sda')!;
    expect(d.readBytes).toBe(2000000 * 512);
    expect(d.writeBytes).toBe(1000000 * 512);
  });

  test('whole physical disks only, with class defaults (NVMe = SSD, rotational = HDD)', async () => {
    const src = new DiskstatsSource(
      tree.procfs,
      tree.sysfs,
      { exclude: '^(loop|ram|zram|dm-|md)\\d*', ssd: {}, hdd: {}, devices: { sda: { idleWatts: 6 } } },
      silentLogger,
    );
    await src.init();
    const r = (await src.sample()).readings as ActivityReading[];
    expect(r.map((x) => x.device)).toEqual(['nvme0n1', 'sda']);
    const nvme = r[0];
    expect(nvme.counters).toEqual({ read_bytes: 40000000 * 512, write_bytes: 80000000 * 512 });
    expect(nvme.joulesPerUnit.read_bytes).toBe(DISK_DEFAULTS.ssd.readJoulesPerByte);
    expect(nvme.idleWatts).toBe(5);
    expect(r[1].joulesPerUnit.write_bytes).toBe(12e-9);
    expect(r[1].idleWatts).toBe(6);
    bumpDiskstats(tree, 'sda', 8, 16);
    const again = (await src.sample()).readings as ActivityReading[];
    expect(again[1].counters.write_bytes - r[1].counters.write_bytes).toBe(16 * 512);
  });
});

describe('netdev', () => {
  test('physical interfaces only, 5 pJ/bit → 40 pJ/byte', async () => {
    const src = new NetdevSource(tree.procfs, tree.sysfs, { exclude: '^(lo|veth.*)$', defaults: {}, devices: {} }, silentLogger);
    await src.init();
    const r = (await src.sample()).readings as ActivityReading[];
    expect(r.map((x) => x.device)).toEqual(['eth0', 'ib0']);
    expect(r[1].counters).toEqual({ rx_bytes: 50000000000, tx_bytes: 40000000000 });
    expect(r[0].joulesPerUnit.tx_bytes).toBeCloseTo(8 * 5e-12, 20);
    expect(r[0].idleWatts).toBe(NIC_DEFAULTS.idleWatts);
  });

  test('falls back to /proc/net/dev where sysfs has no class/net', async () => {
    expect(parseProcNetDev(tree.read('proc/net/dev')).map((d) => [d.name, d.rxBytes, d.txBytes])).toEqual([
      ['lo', 777777, 777777],
      ['eth0', 1000000000, 2000000000],
      ['ib0', 50000000000, 40000000000],
    ]);
    const src = new NetdevSource(
      tree.procfs,
      tree.path('nowhere'),
      { exclude: '^lo$', defaults: { idleWatts: 0 }, devices: {} },
      silentLogger,
    );
    await src.init();
    const r = (await src.sample()).readings as ActivityReading[];
    expect(r.map((x) => x.device)).toEqual(['eth0', 'ib0']);
    expect(r[0].idleWatts).toBe(0);
  });
});

describe('InfiniBand', () => {
  test('InfiniBand ports only, data counters in 4-byte units; IPoIB netdevs are then skipped', async () => {
    const ib = new InfinibandSource(tree.sysfs, () => ({ idleWatts: 12, joulesPerBit: 5e-12 }), silentLogger);
    expect(await ib.init()).toBe(true);
    const r = (await ib.sample()).readings as ActivityReading[];
    expect(r.map((x) => x.device)).toEqual(['mlx5_0:1']);
    expect(r[0].counters).toEqual({ xmit_bytes: 250000000000 * 4, rcv_bytes: 240000000000 * 4 });
    expect(IB_DATA_UNIT_BYTES).toBe(4);
    expect(r[0].idleWatts).toBe(12);
    const net = new NetdevSource(tree.procfs, tree.sysfs, { exclude: '^lo$', defaults: {}, devices: {} }, silentLogger, true);
    await net.init();
    expect(((await net.sample()).readings as ActivityReading[]).map((x) => x.device)).toEqual(['eth0']);
  });
});
