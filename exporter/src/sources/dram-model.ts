import type { Logger } from '../util/log';
import { readMemTotalBytes } from '../util/procfs';
import type { SampleResult, Source } from './types';

/**
 * DRAM power where RAPL has no dram zone: a constant per installed gigabyte (0.392 W/GB by
 * default, the figure used by Cloud Carbon Footprint and CodeCarbon). An estimate: source="model".
 * GB here is GiB (2^30 bytes), the unit memory is sold in.
 */
export class DramModelSource implements Source {
  readonly name = 'dram-model';
  private watts = 0;

  constructor(
    private readonly procfs: string,
    private readonly wattsPerGigabyte: number,
    private readonly log: Logger,
    /** Total DRAM watts chosen from the DIMMs found at start-up (inventory); replaces the per-GiB figure. */
    private totalWatts?: number,
  ) {}

  /**
   * The DIMMs' figure once the inventory has read them (it runs after start-up: dmidecode can take
   * seconds); from the next reading on. The energy already counted stays as it was.
   */
  useDimmWatts(totalWatts: number): void {
    this.log.info('DRAM power from the DIMMs found (inventory), from now on', { was: this.watts.toFixed(2), watts: totalWatts.toFixed(2) });
    this.totalWatts = totalWatts;
    this.watts = totalWatts;
  }

  async init(): Promise<boolean> {
    const bytes = await readMemTotalBytes(this.procfs);
    this.watts = this.totalWatts ?? (bytes / 2 ** 30) * this.wattsPerGigabyte;
    this.log.info(
      this.totalWatts !== undefined ? 'DRAM power from the DIMMs found (inventory)' : 'DRAM power from the per-gigabyte model',
      {
        gib: (bytes / 2 ** 30).toFixed(1),
        watts: this.watts.toFixed(2),
      },
    );
    return true;
  }

  async sample(): Promise<SampleResult> {
    return {
      readings: [{ kind: 'mean_power', component: 'compute', domain: 'dram', device: 'dram', source: 'model', watts: this.watts }],
    };
  }
}
