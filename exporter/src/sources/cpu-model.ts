import { join, KernelFiles } from '../util/fs';
import type { Logger } from '../util/log';
import { parseProcStat, type CpuTimes } from '../util/procfs';
import type { CpuModelSettings } from './schema';
import type { SampleResult, Source } from './types';
import { SourceError } from './types';

/**
 * CPU power where no RAPL counter exists (most VMs): P = TDP · f(u), with u the utilisation from
 * /proc/stat over the interval and f the Teads curve (fraction of TDP at 0/10/50/100 % load,
 * linearly interpolated). An estimate, published as source="model".
 */

/** The `cpu:` settings, and where tdpWatts came from for the log (the inventory's table entry; absent: the configuration). */
export type CpuModelConfig = CpuModelSettings & { tdpFrom?: string };

/** Piecewise-linear interpolation of the curve at utilisation u in percent (clamped to its ends). */
export function curveFactor(curve: ReadonlyArray<readonly [number, number]>, uPercent: number): number {
  const pts = [...curve].sort((a, b) => a[0] - b[0]);
  if (uPercent <= pts[0][0]) return pts[0][1];
  for (let i = 1; i < pts.length; i++) {
    const [x0, y0] = pts[i - 1];
    const [x1, y1] = pts[i];
    if (uPercent <= x1) return y0 + ((y1 - y0) * (uPercent - x0)) / (x1 - x0);
  }
  return pts[pts.length - 1][1];
}

export class CpuModelSource implements Source {
  readonly name = 'cpu-model';
  private prev: CpuTimes | undefined;
  private backwards = false;
  private tdp = 0;
  /** /proc/stat is generated from per-CPU counters in memory: a synchronous read never waits. */
  private readonly files = new KernelFiles();
  private readonly statPath: string;

  constructor(
    procfs: string,
    private readonly cfg: CpuModelConfig,
    private readonly log: Logger,
  ) {
    this.statPath = join(procfs, 'stat');
  }

  async init(): Promise<boolean> {
    this.prev = parseProcStat(await this.files.read(this.statPath));
    this.tdp = this.cfg.tdpWatts ?? this.cfg.tdpWattsPerVcpu * this.prev.cpus;
    this.log.info('CPU power from the utilisation model (no RAPL)', {
      tdp_watts: this.tdp,
      tdp_from:
        this.cfg.tdpWatts !== undefined ? (this.cfg.tdpFrom ?? 'config') : `${this.cfg.tdpWattsPerVcpu} W × ${this.prev.cpus} vCPUs`,
    });
    return true;
  }

  get tdpWatts(): number {
    return this.tdp;
  }

  async close(): Promise<void> {
    this.files.close();
  }

  async sample(): Promise<SampleResult> {
    const cur = parseProcStat(await this.files.read(this.statPath));
    const prev = this.prev ?? cur;
    const dTotal = cur.total - prev.total;
    const dBusy = cur.busy - prev.busy;
    if (dTotal < 0 || dBusy < 0) {
      // /proc/stat went backwards: a glitch keeps the old baseline (the next read covers both
      // intervals); a second backwards read in a row is a reset and becomes the baseline.
      if (this.backwards) this.prev = cur;
      this.backwards = true;
      throw new SourceError('counter_reset', '/proc/stat CPU times went backwards');
    }
    this.backwards = false;
    this.prev = cur;
    const u = dTotal > 0 && dBusy >= 0 ? Math.min(1, dBusy / dTotal) : 0;
    return {
      readings: [
        {
          kind: 'mean_power',
          component: 'compute',
          domain: 'cpu',
          device: 'cpu',
          source: 'model',
          watts: this.tdp * curveFactor(this.cfg.curve, u * 100),
        },
      ],
    };
  }
}
