import type { SeriesDelta, SeriesId } from './energy';
import { seriesKey } from './energy';

/**
 * Cooling energy where no cooling meter answers: a model, always labelled source="model".
 *
 * PUE mode: E_cool = E_IT · (PUE − 1)   (PUE = total facility energy / IT energy, dimensionless)
 * COP mode: E_cool = E_IT / COP          (COP = heat removed / electrical work, dimensionless;
 *                                         all IT electrical energy ends up as heat to remove)
 */

export interface CoolingModelConfig {
  mode: 'pue' | 'cop';
  pue: number;
  supplyAirCelsius: number;
}

/** CRAC coefficient of performance against supply-air temperature T in °C (Moore et al. 2005). */
export function copAt(celsius: number): number {
  return 0.0068 * celsius * celsius + 0.0008 * celsius + 0.458;
}

/** Cooling joules per IT joule under the configured model. */
export function coolingFactor(cfg: CoolingModelConfig): number {
  return cfg.mode === 'pue' ? cfg.pue - 1 : 1 / copAt(cfg.supplyAirCelsius);
}

export const COOLING_MODEL_DEVICE = 'facility';

/**
 * The `source` label of electrical cooling energy estimated from a meter's heat removed: the
 * meter's method plus "-cop" ("snmp-cop"), so it is never mistaken for a measured electrical value.
 */
export function copSource(meterSource: string): string {
  return `${meterSource}-cop`;
}

/**
 * A thermal series (heat removed over the interval) as the electrical energy the cooling unit drew
 * to remove it: thermal J / COP (dimensionless) = electrical J, and thermal W / COP = electrical W.
 */
export function electricalFromHeat(s: SeriesDelta, cop: number): SeriesDelta {
  const { heat: _thermal, ...rest } = s;
  return { ...rest, source: copSource(s.source), joules: s.joules / cop, watts: s.watts / cop };
}

export function modelCooling(itJoules: number, dtSeconds: number, cfg: CoolingModelConfig): SeriesDelta {
  const joules = itJoules * coolingFactor(cfg);
  return {
    component: 'cooling',
    domain: 'cooling',
    device: COOLING_MODEL_DEVICE,
    source: 'model',
    joules,
    watts: dtSeconds > 0 ? joules / dtSeconds : 0,
  };
}

/**
 * Measured cooling: the meters' cooling energy split to this node.
 *
 *   node cooling ΔE = Σ_cooling meters ΔE_meter × share
 *   share = node IT ΔE / room IT ΔE   (room IT from the meters with role "it", same interval)
 *         | a configured constant
 *
 * IT meters reach this as series of domain "facility": they are removed from the step (they are
 * not this node's energy) and only feed the share. When no cooling meter answers (none configured,
 * all down) or the share cannot be known, the PUE/COP model stands in, labelled source="model",
 * and notices() says so for the landing page.
 *
 * Heat removed: a meter that reports heat (thermal J or W, `heat` set) is differenced by the energy
 * model like any other counter or power series (resets, wraps and impossible jumps are judged on
 * the thermal values), and each interval's thermal joules are turned into electrical ones here:
 * ÷ the meter's configured COP, else copAt(the supply air it read, else the configured one).
 *
 * Outages: a counter meter that comes back covers the gap with its own delta (the energy did
 * flow), but a power meter must not integrate one trapezoid across the outage, so its series is
 * forgotten before the step and restarts from a new baseline. A cooling meter that was down
 * while the model covered the room is forgotten too, so no energy is counted twice.
 */

export type CoolingShare = 'it-meters' | number;

export interface CoolingMeters {
  /** `device` names of the cooling meters and of the IT meters. */
  cooling: string[];
  it: string[];
  share?: CoolingShare;
  /** COP configured per meter (`device` → COP) for its heat-removed readings; others use copAt(supply air). */
  cop?: Readonly<Record<string, number>>;
}

interface SeriesLike extends SeriesId {
  domain: string;
}

interface Forgetter {
  forget(r: SeriesId): void;
}

interface MeterReadingLike extends SeriesLike {
  kind: string;
}

export class CoolingAccounting {
  /** Meter series (cooling and facility) present in the previous tick, by device. */
  private prevPresent = new Set<string>();
  private known = new Map<string, SeriesLike>();
  private lastShare: number | undefined;
  /**
   * Node IT and room IT energy summed over complete intervals since the share was last updated.
   * IT meters are often coarse (APC rPDU2: tenths of kWh = 360 kJ; Geist: Wh): their delta is 0 for
   * many intervals and then one step, so a share from a single interval is wildly off. The share is
   * Σ node IT / Σ room IT over the same intervals, updated whenever the room's sum is positive.
   */
  private accNode = 0;
  private accRoom = 0;
  /** Meter devices restarted from a new baseline before this step: their first delta is 0, not a measurement. */
  private baselined = new Set<string>();
  private lastNotice: string[] = [];
  readonly share: CoolingShare | undefined;

  constructor(
    private readonly cfg: CoolingModelConfig,
    private readonly meters: CoolingMeters = { cooling: [], it: [] },
  ) {
    this.share = meters.share ?? (meters.it.length > 0 ? 'it-meters' : undefined);
  }

  /** Meter series: IT meters (domain "facility") and the configured cooling meters. */
  private isMeter(r: SeriesLike): boolean {
    return r.domain === 'facility' || (r.component === 'cooling' && r.source !== 'model' && this.meters.cooling.includes(r.device));
  }

  /** Before the energy model's step: forget series that must restart from a new baseline. */
  prepare(readings: readonly MeterReadingLike[], model: Forgetter): void {
    for (const r of readings) {
      if (!this.isMeter(r)) continue;
      const returning = !this.prevPresent.has(r.device);
      if (returning && r.kind === 'power') {
        model.forget(r);
        this.baselined.add(r.device);
      }
    }
  }

  /**
   * After the step: takes the meter series out of `series`, puts back this node's share of the
   * cooling meters (or the model's cooling) and returns the share used (undefined under the model).
   */
  apply(series: SeriesDelta[], itJoules: number, dtSeconds: number, model: Forgetter): number | undefined {
    // Thermal series become electrical first; the model's own series (for forget) are kept apart.
    const asModelKeysIt = new Map<SeriesDelta, SeriesDelta>();
    for (let i = 0; i < series.length; i++) {
      const s = series[i];
      if (!s.heat) continue;
      const e = electricalFromHeat(s, this.copFor(s));
      asModelKeysIt.set(e, s);
      series[i] = e;
    }
    const cooling: SeriesDelta[] = [];
    const facility: SeriesDelta[] = [];
    const rest: SeriesDelta[] = [];
    // A cooling meter that restarts from a new baseline in this step measured nothing for this
    // interval: it does not count as answering, so that the model covers the interval (no gap).
    const fresh: SeriesDelta[] = [];
    for (const s of series) {
      if (s.domain === 'facility') facility.push(s);
      else if (this.isMeter(s)) (this.baselined.has(s.device) ? fresh : cooling).push(s);
      else rest.push(s);
    }
    this.baselined.clear();
    const present = new Set([...cooling, ...fresh, ...facility].map((s) => s.device));
    for (const e of [...cooling, ...fresh, ...facility]) {
      const s = asModelKeysIt.get(e) ?? e;
      this.known.set(seriesKey(s), s);
    }
    const share = this.computeShare(facility, present, itJoules, dtSeconds);
    this.prevPresent = present;
    series.length = 0;
    series.push(...rest);
    const downCooling = this.meters.cooling.filter((m) => !present.has(m));
    // Cooling series of other sources (not configured meters) are taken as they are, as before.
    if (cooling.length === 0 && rest.some((s) => s.component === 'cooling')) {
      this.lastNotice = [];
      return undefined;
    }
    if (cooling.length > 0 && share !== undefined) {
      for (const s of cooling) series.push({ ...s, joules: s.joules * share, watts: s.watts * share });
      const how = typeof this.share === 'number' ? 'configured' : 'node IT / room IT from the IT meters';
      this.lastNotice = [
        `cooling: measured by ${cooling.map((s) => `${s.device} (${s.source})`).join(', ')}; share ${share.toFixed(4)} (${how})` +
          (downCooling.length ? `; down: ${downCooling.join(', ')}` : ''),
      ];
      return share;
    }
    // The model stands in. Cooling meters that did not answer are forgotten, so that a counter
    // coming back does not also count the intervals the model covered (those that answered were
    // just re-baselined by this step).
    series.push(modelCooling(itJoules, dtSeconds, this.cfg));
    for (const s of this.known.values()) {
      if (s.domain !== 'facility' && !present.has(s.device)) {
        model.forget(s);
        this.baselined.add(s.device);
      }
    }
    const what = this.cfg.mode === 'pue' ? `PUE model (PUE ${this.cfg.pue})` : `COP model (supply air ${this.cfg.supplyAirCelsius} °C)`;
    let why: string;
    if (this.meters.cooling.length === 0) why = 'no cooling meter is configured';
    else if (cooling.length === 0)
      why = `no cooling meter answered (${[downCooling.length ? `down: ${downCooling.join(', ')}` : '', fresh.length ? `back, new baseline: ${fresh.map((s) => s.device).join(', ')}` : ''].filter(Boolean).join('; ')})`;
    else {
      const downIt = this.meters.it.filter((m) => !present.has(m));
      why = `the room IT share is unknown${downIt.length ? ` (IT meters down: ${downIt.join(', ')})` : this.meters.it.length ? ' (no complete IT interval yet)' : ' (set cooling.share or add meters with role: it)'}`;
    }
    this.lastNotice = [`cooling: estimated with the ${what}, source="model": ${why}`];
    return undefined;
  }

  private computeShare(facility: SeriesDelta[], present: Set<string>, itJoules: number, dtSeconds: number): number | undefined {
    if (typeof this.share === 'number') return this.share;
    if (this.share === undefined) return undefined;
    // Every IT meter must have answered now and in the previous tick, so that its delta covers
    // exactly this interval; otherwise keep the last share (short outages, the first tick).
    const complete = dtSeconds > 0 && this.meters.it.length > 0 && this.meters.it.every((m) => present.has(m) && this.prevPresent.has(m));
    if (!complete) {
      // The sums must cover the same, contiguous intervals.
      this.accNode = 0;
      this.accRoom = 0;
      return this.lastShare;
    }
    this.accNode += itJoules;
    this.accRoom += facility.reduce((a, s) => a + s.joules, 0);
    if (this.accRoom > 0) {
      this.lastShare = Math.min(1, Math.max(0, this.accNode / this.accRoom));
      this.accNode = 0;
      this.accRoom = 0;
    }
    return this.lastShare;
  }

  /** The COP for a meter's heat removed: configured for that meter, else the CRAC curve at its supply air. */
  private copFor(s: SeriesDelta): number {
    return this.meters.cop?.[s.device] ?? copAt(s.heat?.supplyAirCelsius ?? this.cfg.supplyAirCelsius);
  }

  /** Lines for the landing page: which cooling method is in use and why. */
  notices(): string[] {
    return this.lastNotice;
  }
}
