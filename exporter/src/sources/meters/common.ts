import { promises as fsp } from 'fs';
import { untilAborted } from '../../util/async';
import type { Logger } from '../../util/log';
import type { CounterReading, HeatRemoved, PowerReading, Reading, SampleContext, SampleResult, Source } from '../types';
import { JOULES_PER_KWH, SourceError } from '../types';
import type { PointKind, Unit } from './schema';

/**
 * What every meter source shares: turning the points a protocol read into readings.
 *
 * - Energy counters are preferred over power: a meter with a working energy point gives a
 *   `counter` reading (joules); only when no energy point works is its power integrated.
 * - Thermal points (heat removed, such as APC InRow CoolOutput) are not electrical energy: their
 *   reading carries `heat` (thermal J or W, as measured) and the cooling model turns it into
 *   electrical energy through the COP (model/cooling.ts), labelled "<protocol>-cop".
 * - Cooling meters give component "cooling", domain "cooling". IT meters give domain "facility":
 *   the sampler keeps them out of node totals and uses them only for the room's IT share.
 */

export type Protocol = 'snmp' | 'modbus' | 'redfish' | 'ipmi';

const UNIT_FACTOR: Record<Unit, number> = { W: 1, kW: 1000, Wh: 3600, kWh: JOULES_PER_KWH, C: 1 };

/** Supply-air readings outside this range (°C) are not a cooling unit's: not used for the COP. */
const SUPPLY_AIR_RANGE: readonly [number, number] = [-40, 80];

/** A point read from the meter: the raw number, or null when the device says it is unsupported. */
export interface PointValue {
  /** What the point is, for error messages ("OID 1.3.6...", "input register 52"). */
  label: string;
  kind: PointKind;
  unit: Unit;
  scale: number;
  raw: number | null;
}

/** raw × scale × unit factor: W for power kinds, J for energy kinds, °C for temperature. */
export function toSI(p: Pick<PointValue, 'raw' | 'scale' | 'unit'>): number | null {
  return p.raw === null ? null : p.raw * p.scale * UNIT_FACTOR[p.unit];
}

/** Parses unit text a device reports (Liebert "kW", Redfish "W"/"kW.h"). */
export function parseUnitText(text: string): Unit | undefined {
  const t = text
    .trim()
    .toLowerCase()
    .replace(/[\s.·-]/g, '');
  const map: Record<string, Unit> = {
    w: 'W',
    watt: 'W',
    watts: 'W',
    kw: 'kW',
    kilowatt: 'kW',
    kilowatts: 'kW',
    wh: 'Wh',
    watthour: 'Wh',
    watthours: 'Wh',
    kwh: 'kWh',
    kilowatthour: 'kWh',
    kilowatthours: 'kWh',
  };
  return map[t];
}

export interface MeterIdentity {
  name: string;
  role: 'cooling' | 'it';
  maxPowerWatts?: number;
}

/**
 * Builds the meter's one reading from its points: electrical energy, else electrical power, else
 * heat removed as energy, else heat removed as power (thermal J or W, marked `heat`, with the
 * supply-air temperature when the meter reads one). Points of the same kind are summed (phases,
 * lines, PSUs). Throws a SourceError naming the meter when no point is usable.
 */
export function pointsToReading(meter: MeterIdentity, protocol: Protocol, points: readonly PointValue[]): Reading {
  const base = {
    component: 'cooling' as const,
    domain: meter.role === 'it' ? ('facility' as const) : ('cooling' as const),
    device: meter.name,
  };
  const usable = (kind: PointKind): number | undefined => {
    const ps = points.filter((p) => p.kind === kind);
    if (ps.length === 0) return undefined;
    let sum = 0;
    for (const p of ps) {
      const v = toSI(p);
      if (v === null) return undefined;
      if (!Number.isFinite(v) || v < 0 || v > 1e15) {
        throw new SourceError(
          'bad_value',
          `meter "${meter.name}" (${protocol}): ${p.label} gives an impossible value ${p.raw} (garbage register or wrong type/scale)`,
        );
      }
      sum += v;
    }
    return sum;
  };
  const counter = (joules: number, heat?: HeatRemoved): CounterReading => ({
    ...base,
    kind: 'counter',
    source: protocol,
    joules,
    maxPowerWatts: meter.maxPowerWatts,
    ...(heat && { heat }),
  });
  const power = (watts: number, heat?: HeatRemoved): PowerReading => ({
    ...base,
    kind: 'power',
    source: protocol,
    watts,
    ...(heat && { heat }),
  });
  const e = usable('energy');
  if (e !== undefined) return counter(e);
  const p = usable('power');
  if (p !== undefined) return power(p);
  // Heat removed is converted to electricity through the cooling COP: it is cooling energy, never
  // the room's IT energy, so an IT meter with only thermal points has no usable reading.
  const hasThermal = ['thermal_energy', 'thermal_power'].some((k) => points.some((p) => p.kind === k));
  if (meter.role === 'it' && hasThermal) {
    throw new SourceError(
      'unsupported',
      `meter "${meter.name}" (${protocol}): role "it" needs an electrical power or energy point; it has only heat-removed (thermal) points, which measure cooling, not IT energy`,
    );
  }
  const heat = (): HeatRemoved => {
    const celsius = supplyAirCelsius(points);
    return celsius === undefined ? {} : { supplyAirCelsius: celsius };
  };
  const te = usable('thermal_energy');
  if (te !== undefined) return counter(te, heat());
  const tp = usable('thermal_power');
  if (tp !== undefined) return power(tp, heat());
  const unsupported = points.filter((p) => p.raw === null).map((p) => p.label);
  throw new SourceError(
    'unsupported',
    `meter "${meter.name}": no usable power or energy point${unsupported.length ? ` (unsupported by the device: ${unsupported.join(', ')})` : ''}`,
  );
}

/**
 * The mean of the meter's supply-air temperature points (°C), or undefined when it has none that
 * answered with a plausible value: the cooling model then uses the configured supply air. A bad
 * temperature never costs the meter its energy reading.
 */
export function supplyAirCelsius(points: readonly PointValue[]): number | undefined {
  const [lo, hi] = SUPPLY_AIR_RANGE;
  const values = points
    .filter((p) => p.kind === 'supply_air_temperature')
    .map(toSI)
    .filter((v): v is number => v !== null && Number.isFinite(v) && v >= lo && v <= hi);
  return values.length ? values.reduce((a, v) => a + v, 0) / values.length : undefined;
}

/** Rejects when the signal aborts (the sampler's timeout), so a hung library call never holds a read. */
export function abortable<T>(p: Promise<T>, signal: AbortSignal, what: string): Promise<T> {
  return untilAborted(p, signal, () => new SourceError('timeout', `${what}: aborted by the sampler's timeout`));
}

/** Rejects with a SourceError('timeout') after ms. */
export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  return untilAborted(p, AbortSignal.timeout(ms), () => new SourceError('timeout', message));
}

/**
 * Base class of the meter sources: one source per meter, named "<protocol>:<meter>". Subclasses
 * implement readPoints(); errors must be SourceErrors whose message names the meter.
 */
export abstract class MeterSource implements Source {
  readonly name: string;

  constructor(
    readonly protocol: Protocol,
    protected readonly meter: MeterIdentity,
    /** Timeout of one read, ms (below the sampler's per-source timeout). */
    protected readonly timeoutMs: number,
    protected readonly log: Logger,
  ) {
    this.name = `${protocol}:${meter.name}`;
  }

  /** The meter's role, for the sampler's cooling share. */
  get role(): 'cooling' | 'it' {
    return this.meter.role;
  }

  get meterName(): string {
    return this.meter.name;
  }

  async init(): Promise<boolean> {
    return true;
  }

  protected abstract readPoints(signal: AbortSignal): Promise<PointValue[]>;

  /** The meter's secrets (community, keys, passwords): never shown in an error or a log line. */
  protected secrets(): Array<string | undefined> {
    return [];
  }

  /** Replaces the meter's secrets in text (library and tool errors may quote them). */
  protected redact(text: string): string {
    return redactSecrets(text, this.secrets());
  }

  async sample(ctx: SampleContext): Promise<SampleResult> {
    try {
      const points = await abortable(this.readPoints(ctx.signal), ctx.signal, `meter "${this.meter.name}"`);
      return { readings: [pointsToReading(this.meter, this.protocol, points)] };
    } catch (err) {
      if (err instanceof Error) {
        const message = this.redact(err.message);
        if (message !== err.message) {
          throw err instanceof SourceError ? new SourceError(err.reason, message, err.permanent) : new SourceError('read', message);
        }
      }
      throw err;
    }
  }

  /** Supply-air points already reported unreadable (logged once each, not every tick). */
  private readonly warnedSupplyAir = new Set<string>();

  /**
   * A supply-air temperature point the device lacks or garbles: only refines the COP, so it is
   * unknown (raw null, the configured supply air is used), never the meter's failure; logged once.
   */
  protected missingSupplyAir(point: Pick<PointValue, 'kind' | 'unit' | 'scale'>, label: string, why: string): PointValue {
    if (!this.warnedSupplyAir.has(label)) {
      this.warnedSupplyAir.add(label);
      this.log.warn('supply-air temperature unreadable; the cooling model uses the configured supply air', {
        meter: this.meter.name,
        point: label,
        reason: this.redact(why),
      });
    }
    return { label, kind: point.kind, unit: point.unit, scale: point.scale, raw: null };
  }

  protected fail(reason: string, detail: string, permanent = false): SourceError {
    return new SourceError(reason, `meter "${this.meter.name}" (${this.protocol}): ${detail}`, permanent);
  }
}

/** Secrets shorter than this are not searched for: a short value matches inside ordinary words. */
export const MIN_REDACTED_LENGTH = 4;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Replaces each secret where it stands as a whole value (not inside a longer word: the text
 * around it is not a letter or digit), longest first, with a fixed mask. Secrets shorter than
 * MIN_REDACTED_LENGTH are left alone rather than mangling every word that contains them
 * (`m***t***r`), which would also reveal them.
 */
export function redactSecrets(text: string, secrets: ReadonlyArray<string | undefined>): string {
  const values = [...new Set(secrets.filter((s): s is string => s !== undefined && s.length >= MIN_REDACTED_LENGTH))];
  values.sort((a, b) => b.length - a.length);
  let out = text;
  for (const v of values) out = out.replace(new RegExp(`(?<![\\p{L}\\p{N}])${escapeRegExp(v)}(?![\\p{L}\\p{N}])`, 'gu'), '***');
  return out;
}

/** Reads a credential or CA file named in a meter's config; a failure names the meter and the field. */
export async function readMeterFile(meter: string, field: string, file: string): Promise<Buffer> {
  try {
    return await fsp.readFile(file);
  } catch (err) {
    throw new Error(`meter ${meter}: cannot read ${field} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
