import { execFileSync } from 'child_process';
import { closeSync, existsSync, openSync, rmSync } from 'fs';
import { parseConfig } from '../../exporter/src/config';
import { Metrics } from '../../exporter/src/metrics';
import { Sampler } from '../../exporter/src/sampler';
import { CpuModelSource } from '../../exporter/src/sources/cpu-model';
import { DiskstatsSource } from '../../exporter/src/sources/diskstats';
import { DramModelSource } from '../../exporter/src/sources/dram-model';
import { DRAM_DEFAULT_WATTS_PER_GIB } from '../../exporter/src/inventory/choices';
import { InfinibandSource } from '../../exporter/src/sources/infiniband';
import { NIC_DEFAULTS, NetdevSource } from '../../exporter/src/sources/netdev';
import { RaplSource } from '../../exporter/src/sources/rapl';
import type { Source } from '../../exporter/src/sources/types';
import { silentLogger } from '../../exporter/src/util/log';
import { FixtureTree } from '../helpers/fixture';

/**
 * Issue 10 §8, the fault matrix: every host source (RAPL, the CPU and DRAM models, diskstats,
 * netdev, InfiniBand) runs over a copy of test/fixtures/host whose files advance each tick, and
 * one of them suffers one fault: a hung read (a FIFO in place of the file: the read blocks in the
 * kernel), a read error (file gone), a lost device (directory gone), a counter reset, a wrap, a
 * one-tick glitch, garbage text. Every tick: each exported counter is finite, non-negative and
 * never goes down. At the end: the faulted source exported no more than the same run without the
 * fault (no joule invented), exactly as much for a wrap or a glitch (no joule lost), and every
 * other source kept reading without an error.
 * NVML faults: test/nvml/nvml-faults.test.ts, nvml-hang.test.ts; meters: test/meters/*.
 * Bounded: 8 ticks per cell on an injected clock; a hung read costs one 1 s timeout per cell.
 */

type Fault = 'hang' | 'error' | 'lost' | 'reset' | 'wrap' | 'glitch' | 'garbage';

interface Target {
  /** The reader: the `reader` label of jouleflow_source_up (here also its method, the `source` of its energy). */
  source: string;
  /** The file the fault hits, and the text it holds at the start. */
  file: string;
  /** The device directory a lost device takes with it (single-file targets). */
  deviceDir?: string;
  /** The file's next content: the counters advanced by one interval. */
  advance(text: string): string;
  /** A counter restarted from a low value. */
  reset(text: string): string;
  faults: Fault[];
}

const TICKS = 8;
const FAULT_AT = 3;
/** Transient faults (hang, error, garbage) last this many ticks. */
const FAULT_TICKS = 3;
const RAPL_RANGE_UJ = 262143328850; // intel-rapl:0 max_energy_range_uj in the fixture
const RAPL_STEP_UJ = 30e6; // 30 J per 1 s tick: well under the 250 W bound

const addNumber = (by: number, mod?: number) => (t: string) => {
  const v = Number(t.trim()) + by;
  return `${mod ? v % mod : v}\n`;
};
const fields = (line: string) => line.trim().split(/\s+/);
/** /proc/diskstats: nvme0n1 reads and writes 2000 sectors more. */
const advanceDisk = (t: string) =>
  t
    .split('\n')
    .map((l) => {
      const f = fields(l);
      if (f[2] !== 'nvme0n1') return l;
      f[5] = String(Number(f[5]) + 2000);
      f[9] = String(Number(f[9]) + 2000);
      return f.join(' ');
    })
    .join('\n');
/** /proc/stat: 300 busy and 100 idle jiffies more on the aggregate line. */
const advanceStat = (t: string) =>
  t
    .split('\n')
    .map((l) => {
      if (!l.startsWith('cpu ')) return l;
      const f = fields(l);
      f[1] = String(Number(f[1]) + 300);
      f[4] = String(Number(f[4]) + 100);
      return f.join(' ');
    })
    .join('\n');

const TARGETS: Target[] = [
  {
    source: 'rapl',
    file: 'sys/class/powercap/intel-rapl:0/energy_uj',
    deviceDir: 'sys/class/powercap/intel-rapl:0',
    advance: addNumber(RAPL_STEP_UJ, RAPL_RANGE_UJ),
    reset: () => '1000000\n',
    faults: ['hang', 'error', 'lost', 'reset', 'wrap', 'glitch', 'garbage'],
  },
  {
    source: 'netdev',
    file: 'sys/class/net/eth0/statistics/rx_bytes',
    deviceDir: 'sys/class/net/eth0',
    advance: addNumber(5e8),
    reset: () => '1000\n',
    faults: ['hang', 'error', 'lost', 'reset', 'glitch', 'garbage'],
  },
  {
    source: 'infiniband',
    file: 'sys/class/infiniband/mlx5_0/ports/1/counters/port_rcv_data',
    deviceDir: 'sys/class/infiniband/mlx5_0',
    advance: addNumber(1e8),
    reset: () => '1000\n',
    faults: ['hang', 'error', 'lost', 'reset', 'glitch', 'garbage'],
  },
  {
    source: 'diskstats',
    file: 'proc/diskstats',
    advance: advanceDisk,
    reset: (t) => t.replace(/^(\s*259\s+0\s+nvme0n1\s+\d+\s+\d+\s+)\d+((?:\s+\d+){3}\s+)\d+/m, '$110$210'),
    faults: ['hang', 'error', 'reset', 'glitch', 'garbage'],
  },
  {
    source: 'cpu-model',
    file: 'proc/stat',
    advance: advanceStat,
    reset: (t) => t.replace(/^cpu\s+\d+/m, 'cpu  10'),
    faults: ['hang', 'error', 'glitch', 'garbage'],
  },
];

function sources(tree: FixtureTree): Source[] {
  const cfg = parseConfig({ paths: { sysfs: tree.sysfs, procfs: tree.procfs } });
  const ib = (d: string) => ({ ...NIC_DEFAULTS, ...cfg.nics.defaults, ...cfg.nics.devices[d] });
  return [
    new RaplSource(tree.sysfs, silentLogger, tree.procfs),
    new CpuModelSource(tree.procfs, cfg.cpu, silentLogger),
    new DramModelSource(tree.procfs, cfg.dram.wattsPerGigabyte ?? DRAM_DEFAULT_WATTS_PER_GIB, silentLogger),
    new DiskstatsSource(tree.procfs, tree.sysfs, cfg.disks, silentLogger),
    new InfinibandSource(tree.sysfs, ib, silentLogger),
    new NetdevSource(tree.procfs, tree.sysfs, cfg.nics, silentLogger, true),
  ];
}

interface Run {
  /** Energy exported per source name at the end. */
  energy: Map<string, number>;
  /** Errors counted per reader (all reasons). */
  errors: Map<string, number>;
  up: Map<string, number>;
}

async function series(metrics: Metrics): Promise<Map<string, number>> {
  const { values } = await metrics.nodeEnergy.get();
  return new Map(values.map((v) => [`${v.labels.source}/${v.labels.device}/${v.labels.component}`, v.value]));
}

async function run(target: Target, fault: Fault | undefined): Promise<Run> {
  const tree = new FixtureTree();
  let text = tree.read(target.file);
  if (fault === 'wrap') text = `${RAPL_RANGE_UJ - 2 * RAPL_STEP_UJ - 1e6}\n`; // wraps between ticks FAULT_AT-1 and FAULT_AT
  tree.write(target.file, text);
  const fifo = tree.path(target.file);
  let now = 0;
  const metrics = new Metrics();
  const all = sources(tree);
  const sampler = new Sampler({
    sources: all,
    metrics,
    log: silentLogger,
    intervalMs: 1000,
    timeoutMs: 1000,
    cooling: { mode: 'pue', pue: 1.2, supplyAirCelsius: 20 },
    cpuCount: 4,
    clock: () => now,
  });
  let lost = false;
  let hung = false;
  try {
    await sampler.init();
    let before = await series(metrics);
    for (let i = 0; i < TICKS; i++) {
      text = i === 0 ? text : target.advance(text);
      const active = fault !== undefined && i >= FAULT_AT && i < FAULT_AT + FAULT_TICKS;
      if (fault === 'reset' && i === FAULT_AT) text = target.reset(text);
      if (fault === 'lost' && i === FAULT_AT && target.deviceDir) {
        rmSync(tree.path(target.deviceDir), { recursive: true, force: true });
        lost = true;
      }
      if (fault === 'hang' && active && !hung) {
        rmSync(fifo);
        execFileSync('mkfifo', [fifo]);
        hung = true;
      } else if (hung && !active) {
        releaseFifo(fifo);
        hung = false;
      }
      if (!lost && !hung) {
        if (fault === 'error' && active) rmSync(tree.path(target.file), { force: true });
        else if (fault === 'garbage' && active) tree.write(target.file, 'garbage\u0000\n');
        else if (fault === 'glitch' && i === FAULT_AT) tree.write(target.file, target.reset(text));
        else tree.write(target.file, text);
      }
      await sampler.tick();
      now += 1000;
      const after = await series(metrics);
      for (const [k, v] of after) {
        expect([k, Number.isFinite(v) && v >= 0]).toEqual([k, true]);
        expect([k, v >= (before.get(k) ?? 0)]).toEqual([k, true]);
      }
      before = after;
    }
    // Node energy by method (`source`), errors by the reader that failed (`reader`).
    const by = async (metric: 'nodeEnergy' | 'sourceErrors', label: 'source' | 'reader') => {
      const out = new Map<string, number>();
      for (const v of (await metrics[metric].get()).values)
        out.set(String(v.labels[label]), (out.get(String(v.labels[label])) ?? 0) + v.value);
      return out;
    };
    const up = new Map(
      (await metrics.sourceUp.get()).values.filter((v) => v.labels.device === '').map((v) => [String(v.labels.reader), v.value]),
    );
    return { energy: await by('nodeEnergy', 'source'), errors: await by('sourceErrors', 'reader'), up };
  } finally {
    if (hung) releaseFifo(fifo);
    await sampler.stop();
    tree.cleanup();
  }
}

/** Lets a read blocked on the FIFO return (a writer opens and closes it: EOF), then removes it. */
function releaseFifo(path: string): void {
  if (!existsSync(path)) return;
  closeSync(openSync(path, 'w'));
  rmSync(path);
}

/** Energy sources other than the faulted one are exported under these `source` labels. */
const ENERGY_LABEL: Record<string, string> = {
  rapl: 'rapl',
  netdev: 'model',
  infiniband: 'model',
  diskstats: 'model',
  'cpu-model': 'model',
};

describe.each(TARGETS)('fault matrix: $source', (target) => {
  let clean: Run;
  beforeAll(async () => {
    clean = await run(target, undefined);
  });

  test('clean run: every source up, no error', () => {
    for (const [s, n] of clean.errors) expect([s, n]).toEqual([s, 0]);
    for (const s of ['rapl', 'cpu-model', 'dram-model', 'diskstats', 'netdev', 'infiniband']) expect([s, clean.up.get(s)]).toEqual([s, 1]);
    if (target.source === 'rapl') expect(clean.energy.get('rapl')).toBeGreaterThan(((TICKS - 1) * RAPL_STEP_UJ) / 1e6 - 1e-6);
  });

  test.each(target.faults)('%s', async (fault) => {
    const r = await run(target, fault);
    // Other sources unaffected: no error of any kind, still up.
    for (const [s, n] of r.errors) if (s !== target.source) expect([s, n]).toEqual([s, 0]);
    for (const [s, v] of r.up) if (s !== target.source) expect([s, v]).toEqual([s, 1]);
    // The faulted source: its errors are counted, its energy never invented (nor lost, for wrap and glitch).
    // (A vanished NIC is not an error: it is reported down once, then dropped.)
    if (fault !== 'wrap' && !(fault === 'lost' && target.source === 'netdev')) expect(r.errors.get(target.source) ?? 0).toBeGreaterThan(0);
    const label = ENERGY_LABEL[target.source];
    const got = r.energy.get(label) ?? 0;
    const want = clean.energy.get(label) ?? 0;
    if (fault === 'wrap' || fault === 'glitch') expect(got).toBeCloseTo(want, 6);
    else expect(got).toBeLessThanOrEqual(want + 1e-6);
  });
});
