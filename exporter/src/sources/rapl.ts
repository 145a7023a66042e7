import type { Logger } from '../util/log';
import { exists, isPermissionError, join, listDir, readNumber, readTrimmed } from '../util/fs';
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
  device: string;
  domain: Domain;
  wrapJoules?: number;
  maxPowerWatts?: number;
}

async function zoneInfo(dir: string): Promise<{ name: string; wrapJoules?: number; maxPowerWatts?: number }> {
  const name = await readTrimmed(join(dir, 'name'));
  const range = (await exists(join(dir, 'max_energy_range_uj'))) ? await readNumber(join(dir, 'max_energy_range_uj')) : undefined;
  const maxPower = (await exists(join(dir, 'constraint_0_max_power_uw')))
    ? await readNumber(join(dir, 'constraint_0_max_power_uw')).catch(() => undefined)
    : undefined;
  return {
    name,
    wrapJoules: range !== undefined && range > 0 ? range / 1e6 : undefined,
    maxPowerWatts: maxPower !== undefined && maxPower > 0 ? maxPower / 1e6 : undefined,
  };
}

export class RaplSource implements Source {
  readonly name = 'rapl';
  private zones: Zone[] = [];

  constructor(
    private readonly sysfs: string,
    private readonly log: Logger,
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
      const zone = (device: string, domain: Domain): Zone => ({ dir, device, domain, ...info });
      if (info.name.startsWith('package')) (e.startsWith('intel-rapl-mmio') ? mmio : packages).push(zone(info.name, 'cpu'));
      else if (info.name === 'dram') drams.push(zone(`dram-${idx}`, 'dram'));
      else if (info.name === 'psys') psys.push(zone(`psys-${idx}`, 'cpu'));
    }
    const pkg = packages.length > 0 ? packages : mmio.length > 0 ? mmio : psys;
    this.zones = [...pkg, ...drams];
    try {
      await readNumber(join(this.zones[0].dir, 'energy_uj'));
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

  async sample(): Promise<SampleResult> {
    const readings: CounterReading[] = [];
    const errors = [];
    for (const z of this.zones) {
      try {
        const uj = await readNumber(join(z.dir, 'energy_uj'));
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
