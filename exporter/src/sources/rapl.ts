import type { Logger } from '../util/log';
import { exists, isPermissionError, join, KernelFiles, listDir, readNumber, readTrimmed } from '../util/fs';
import { readMemTotalBytes } from '../util/procfs';
import type { CounterReading, Domain, SampleResult, Source } from './types';
import { SourceError } from './types';

/**
 * CPU package and DRAM energy from the powercap RAPL counters
 * (/sys/class/powercap/intel-rapl:N[:M]/energy_uj; AMD exposes the same interface since 5.8).
 *
 * Counted zones: every package-N and every dram zone. core/uncore are sub-zones already inside
 * their package, and psys covers the package too, so they are not added (they would double count);
 * psys is used only when no package zone exists. intel-rapl-mmio duplicates the MSR package zone.
 */

interface Zone {
  dir: string;
  /** DIR/energy_uj, read every tick. */
  energyPath: string;
  device: string;
  domain: Domain;
  wrapJoules?: number;
  maxPowerWatts?: number;
}

/**
 * Power bounds for zones that publish no constraint_N_max_power_uw (every DRAM zone, some
 * packages): without one a corrupt or reset counter could not be told from a wrap. Deliberately
 * above any real part; the model still allows IMPOSSIBLE_DELTA_FACTOR× these.
 */
export const RAPL_FALLBACK_BOUNDS = {
  /** The highest x86 server package TDP today is 500 W (Xeon 6980P, EPYC 9965). */
  packageWatts: 500,
  /** A platform (psys) zone covers the whole SoC board. */
  psysWatts: 1000,
  /** DRAM draws ≤ ~0.4 W/GiB under full load (DDR4/DDR5 RDIMM data sheets); 1 W/GiB leaves margin. */
  dramWattsPerGiB: 1,
  /** Small-memory systems with many DIMMs: never bound a DRAM zone below this. */
  dramMinZoneWatts: 20,
} as const;

async function optionalNumber(path: string): Promise<number | undefined> {
  if (!(await exists(path))) return undefined;
  const v = await readNumber(path).catch(() => undefined);
  return v !== undefined && v > 0 ? v : undefined;
}

async function zoneInfo(dir: string): Promise<{ name: string; wrapJoules?: number; publishedMaxWatts?: number }> {
  const name = await readTrimmed(join(dir, 'name'));
  const range = await optionalNumber(join(dir, 'max_energy_range_uj'));
  // constraint_0 is the long-term limit (its max the TDP); constraint_1 the short-term one.
  const maxes = await Promise.all([0, 1].map((n) => optionalNumber(join(dir, `constraint_${n}_max_power_uw`))));
  const published = maxes.filter((v): v is number => v !== undefined);
  return {
    name,
    wrapJoules: range !== undefined ? range / 1e6 : undefined,
    publishedMaxWatts: published.length > 0 ? Math.max(...published) / 1e6 : undefined,
  };
}

export class RaplSource implements Source {
  readonly name = 'rapl';
  private zones: Zone[] = [];
  /**
   * energy_uj is a register read (an MSR on the package's CPU, or MMIO), answered at once: read
   * synchronously through kept descriptors, with no round trip through libuv's pool.
   */
  private readonly files = new KernelFiles();

  /** `procfs`: where /proc/meminfo is, for the DRAM zones' power bound (absent: the per-zone floor). */
  constructor(
    private readonly sysfs: string,
    private readonly log: Logger,
    private readonly procfs?: string,
  ) {}

  hasDomain(domain: Domain): boolean {
    return this.zones.some((z) => z.domain === domain);
  }

  /** The zones' `device` labels and domains (for the hardware info series). */
  get devices(): Array<{ device: string; domain: Domain }> {
    return this.zones.map((z) => ({ device: z.device, domain: z.domain }));
  }

  private initialised: Promise<boolean> | undefined;

  /** Idempotent: the source list asks RAPL first (to choose the CPU model), the sampler asks again. */
  init(): Promise<boolean> {
    this.initialised ??= this.discover();
    return this.initialised;
  }

  private async discover(): Promise<boolean> {
    const base = join(this.sysfs, 'class/powercap');
    const entries = (await listDir(base)).filter((e) => /^intel-rapl(-mmio)?:\d+(:\d+)?$/.test(e));
    if (entries.length === 0) {
      this.log.info('no RAPL powercap zones found; CPU and DRAM power will come from the utilisation model', {
        path: base,
      });
      return false;
    }
    const packages: Zone[] = [];
    const mmio: Zone[] = [];
    const drams: Zone[] = [];
    const psys: Zone[] = [];
    for (const e of entries) {
      const dir = join(base, e);
      const info = await zoneInfo(dir);
      const idx = e.split(':')[1];
      const zone = (device: string, domain: Domain): Zone => ({
        dir,
        energyPath: join(dir, 'energy_uj'),
        device,
        domain,
        wrapJoules: info.wrapJoules,
        maxPowerWatts: info.publishedMaxWatts,
      });
      if (info.name.startsWith('package')) (e.startsWith('intel-rapl-mmio') ? mmio : packages).push(zone(info.name, 'cpu'));
      else if (info.name === 'dram') drams.push(zone(`dram-${idx}`, 'dram'));
      else if (info.name === 'psys') psys.push(zone(`psys-${idx}`, 'cpu'));
    }
    const pkg = packages.length > 0 ? packages : mmio.length > 0 ? mmio : psys;
    this.zones = [...pkg, ...drams];
    await this.boundUnpublished(psys.length > 0 && pkg === psys);
    try {
      await readNumber(this.zones[0].energyPath);
    } catch (err) {
      if (isPermissionError(err)) {
        this.log.warn(
          'RAPL energy_uj is readable by root only (CVE-2020-8694); run as root or grant read access to use measured CPU energy; falling back to the utilisation model',
          { path: this.zones[0].dir },
        );
        return false;
      }
      throw err;
    }
    this.log.info('RAPL zones found', { zones: this.zones.map((z) => z.device).join(',') });
    return this.zones.length > 0;
  }

  /** Every zone gets a power bound: the published one, else a fallback (see RAPL_FALLBACK_BOUNDS). */
  private async boundUnpublished(psysOnly: boolean): Promise<void> {
    const drams = this.zones.filter((z) => z.domain === 'dram');
    let dramWatts: number = RAPL_FALLBACK_BOUNDS.dramMinZoneWatts;
    if (drams.length > 0 && this.procfs !== undefined) {
      const gib = (await readMemTotalBytes(this.procfs).catch(() => 0)) / 2 ** 30;
      dramWatts = Math.max(dramWatts, (gib * RAPL_FALLBACK_BOUNDS.dramWattsPerGiB) / drams.length);
    }
    for (const z of this.zones) {
      if (z.maxPowerWatts !== undefined) continue;
      z.maxPowerWatts = z.domain === 'dram' ? dramWatts : psysOnly ? RAPL_FALLBACK_BOUNDS.psysWatts : RAPL_FALLBACK_BOUNDS.packageWatts;
      this.log.debug('RAPL zone publishes no maximum power; bounding its counter by a default', {
        device: z.device,
        max_watts: z.maxPowerWatts.toFixed(1),
      });
    }
  }

  async close(): Promise<void> {
    this.files.close();
  }

  async sample(): Promise<SampleResult> {
    const readings: CounterReading[] = [];
    const errors = [];
    for (const z of this.zones) {
      try {
        const uj = await this.files.readNumber(z.energyPath);
        readings.push({
          kind: 'counter',
          component: 'compute',
          domain: z.domain,
          device: z.device,
          source: this.name,
          joules: uj / 1e6,
          wrapJoules: z.wrapJoules,
          maxPowerWatts: z.maxPowerWatts,
        });
      } catch (err) {
        errors.push({ device: z.device, reason: isPermissionError(err) ? 'permission' : 'read', message: (err as Error).message });
      }
    }
    if (readings.length === 0 && errors.length > 0) throw new SourceError(errors[0].reason, errors[0].message);
    return { readings, errors };
  }
}
