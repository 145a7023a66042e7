import type { Component, CounterReading, Domain, HeatRemoved, Reading } from '../core';
import { COMPONENTS } from '../core';

/**
 * The energy model: turns readings (counters, power samples, activity counters) into joules
 * per interval. Pure: no I/O, the time of each step is passed in (milliseconds).
 */

/** A delta above maxPower × Δt × this factor cannot be real energy: it is a counter reset or glitch. */
export const IMPOSSIBLE_DELTA_FACTOR = 2;

export interface SeriesDelta {
  component: Component;
  domain: Domain;
  device: string;
  source: string;
  /** Joules in this interval, never negative. */
  joules: number;
  /** Mean power over this interval (W); for power readings, the latest sample. */
  watts: number;
  /** Set while the joules are heat removed (thermal J), until model/cooling.ts turns them into electrical J. */
  heat?: HeatRemoved;
  /** Activity readings: the part of `joules` caused by activity (not idle), and the units moved. */
  activeJoules?: number;
  activityUnits?: number;
}

export interface ModelEvent {
  source: string;
  device: string;
  reason: 'counter_reset' | 'counter_wrap' | 'invalid_value';
}

export interface StepResult {
  /** Step time in ms. */
  t: number;
  /** Seconds since the previous step (0 on the first). */
  dt: number;
  series: SeriesDelta[];
  events: ModelEvent[];
}

interface Sample {
  t: number;
  reading: Reading;
}

interface SeriesState extends Sample {
  /** A lower value seen once: a reset if the next read confirms it, a glitch if not. */
  suspect?: Sample;
  /**
   * Counters: when the value was last seen to change (ms). Coarse counters (a PDU's tenths of kWh,
   * a BMC read at most every minInterval) stay flat for many intervals and then step: the step is
   * the energy since the last change, so the impossible-delta bound uses that time, not Δt.
   */
  changedAt?: number;
}

/** What names a series in the model; a meter's thermal series is kept apart from its electrical one. */
export interface SeriesId {
  component: string;
  device: string;
  source: string;
  heat?: HeatRemoved;
}

export function seriesKey(r: SeriesId): string {
  const key = `${r.component}\u0000${r.device}\u0000${r.source}`;
  return r.heat ? `${key}\u0000heat` : key;
}

export interface EnergyModelOptions {
  /**
   * Power samples further apart than this (ms) are not integrated across the gap (a source that
   * was down): the series starts a new baseline instead of inventing a trapezoid over the outage.
   */
  maxPowerGapMs?: number;
}

/** The value went down without a wrap: a reset, or a glitch if the next read is back up. */
const DECREASED = Symbol('decreased');

export class EnergyModel {
  private readonly state = new Map<string, SeriesState>();
  private lastStep: number | undefined;

  constructor(private readonly opts: EnergyModelOptions = {}) {}

  /** Forgets a series (a device that disappeared), so that its next reading starts a new baseline. */
  forget(r: SeriesId): void {
    this.state.delete(seriesKey(r));
  }

  step(t: number, readings: readonly Reading[]): StepResult {
    const dt = this.lastStep === undefined ? 0 : Math.max(0, (t - this.lastStep) / 1000);
    this.lastStep = t;
    const series: SeriesDelta[] = [];
    const events: ModelEvent[] = [];
    for (const r of readings) {
      const heat = r.kind === 'counter' || r.kind === 'power' ? r.heat : undefined;
      const out = (d: Delta) =>
        series.push(
          heat
            ? { component: r.component, domain: r.domain, device: r.device, source: r.source, heat, ...d }
            : { component: r.component, domain: r.domain, device: r.device, source: r.source, ...d },
        );
      if (!isFinite(r)) {
        events.push({ source: r.source, device: r.device, reason: 'invalid_value' });
        out({ joules: 0, watts: 0 });
        continue;
      }
      const key = seriesKey(r);
      const prev = this.state.get(key);
      const sdt = prev ? (t - prev.t) / 1000 : 0;
      const gap = this.opts.maxPowerGapMs !== undefined && r.kind === 'power' && prev !== undefined && t - prev.t > this.opts.maxPowerGapMs;
      if (!prev || prev.reading.kind !== r.kind || sdt <= 0 || gap) {
        this.state.set(key, { t, reading: r });
        out(first(r));
        continue;
      }
      if (r.kind === 'counter' && prev.reading.kind === 'counter') {
        this.counterStep(key, prev, r, t, events, out);
        continue;
      }
      const d = delta(prev.reading, r, sdt, events);
      if (d !== DECREASED) {
        // Back above the baseline after one low read: that read was a glitch (counted, nothing lost).
        if (prev.suspect) events.push({ source: r.source, device: r.device, reason: 'counter_reset' });
        this.state.set(key, { t, reading: r });
        out(d);
        continue;
      }
      if (!prev.suspect) {
        // Keep the old baseline one more interval: a single low read is often a glitch.
        this.state.set(key, { ...prev, suspect: { t, reading: r } });
        out({ joules: 0, watts: 0 });
        continue;
      }
      // Confirmed: the counters restarted. The interval up to the first low read is dropped.
      events.push({ source: r.source, device: r.device, reason: 'counter_reset' });
      const since = delta(prev.suspect.reading, r, (t - prev.suspect.t) / 1000, events);
      this.state.set(key, { t, reading: r });
      out(since === DECREASED || t - prev.suspect.t <= 0 ? { joules: 0, watts: 0 } : since);
    }
    return { t, dt, series, events };
  }

  /**
   * A counter read against its baseline. A step that is not plausible (backwards without a
   * plausible wrap, or forward faster than the device can draw) is held as a suspect and the old
   * baseline kept: if the next read is plausible from the old baseline, the odd read was a glitch
   * and nothing is lost; if it is plausible from the suspect, the counter restarted (a reset: the
   * interval up to the suspect is dropped, the energy since it is kept).
   */
  private counterStep(key: string, prev: SeriesState, r: CounterReading, t: number, events: ModelEvent[], out: (d: Delta) => void): void {
    const event = (reason: ModelEvent['reason']) => events.push({ source: r.source, device: r.device, reason });
    const last = prev.reading as CounterReading;
    const sinceChange = prev.changedAt !== undefined ? (t - prev.changedAt) / 1000 : (t - prev.t) / 1000;
    const fromBase = counterDelta(last, r, (t - prev.t) / 1000, sinceChange);
    if (fromBase) {
      // The odd read was a glitch: nothing lost, but counted (the device misreported once).
      if (prev.suspect) event('counter_reset');
      if (fromBase.wrapped) event('counter_wrap');
      const flat = r.joules === last.joules;
      this.state.set(key, { t, reading: r, changedAt: flat ? (prev.changedAt ?? prev.t) : t });
      out({ joules: fromBase.joules, watts: fromBase.joules / ((t - prev.t) / 1000) });
      return;
    }
    const suspect = prev.suspect;
    const suspectS = suspect ? (t - suspect.t) / 1000 : 0;
    const fromSuspect = suspect && suspectS > 0 ? counterDelta(suspect.reading as CounterReading, r, suspectS, suspectS) : undefined;
    if (suspect && fromSuspect) {
      // Confirmed: the counter restarted at the suspect read.
      event('counter_reset');
      if (fromSuspect.wrapped) event('counter_wrap');
      this.state.set(key, { t, reading: r });
      out({ joules: fromSuspect.joules, watts: fromSuspect.joules / suspectS });
      return;
    }
    // Implausible from both: keep the old baseline, this read becomes the suspect.
    this.state.set(key, { ...prev, suspect: { t, reading: r } });
    out({ joules: 0, watts: 0 });
  }
}

/**
 * The energy between two counter reads, or undefined when the step is not physically plausible.
 * A backwards step is a wrap only when the counter publishes its range and (range − last) +
 * current fits the power bound over the span; a counter without a bound never wraps.
 * `sinceChangeS`: seconds since the counter last changed (≥ dt), the span its step may cover.
 */
export function counterDelta(
  prev: CounterReading,
  cur: CounterReading,
  dt: number,
  sinceChangeS = dt,
): { joules: number; wrapped: boolean } | undefined {
  if (dt <= 0) return undefined;
  // Counters advance in steps (NVML's every ~100 ms), so the bound uses at least 1 s.
  const span = Math.max(dt, sinceChangeS, 1);
  const limit = cur.maxPowerWatts !== undefined ? cur.maxPowerWatts * span * IMPOSSIBLE_DELTA_FACTOR : Infinity;
  const d = cur.joules - prev.joules;
  if (d >= 0) return d <= limit ? { joules: d, wrapped: false } : undefined;
  if (cur.wrapJoules === undefined || !Number.isFinite(limit) || prev.joules > cur.wrapJoules) return undefined;
  const wrapped = cur.wrapJoules - prev.joules + cur.joules;
  return wrapped >= 0 && wrapped <= limit ? { joules: wrapped, wrapped: true } : undefined;
}

function isFinite(r: Reading): boolean {
  switch (r.kind) {
    case 'counter':
      return Number.isFinite(r.joules);
    case 'power':
    case 'mean_power':
      return Number.isFinite(r.watts);
    case 'activity':
      return Number.isFinite(r.idleWatts) && Object.values(r.counters).every(Number.isFinite);
  }
}

type Delta = Pick<SeriesDelta, 'joules' | 'watts' | 'activeJoules' | 'activityUnits'>;

function first(r: Reading): Delta {
  return {
    joules: 0,
    watts: r.kind === 'power' || r.kind === 'mean_power' ? Math.max(0, r.watts) : r.kind === 'activity' ? r.idleWatts : 0,
  };
}

function delta(prev: Reading, cur: Reading, dt: number, events: ModelEvent[]): Delta | typeof DECREASED {
  switch (cur.kind) {
    case 'counter':
      // Counters go through EnergyModel.counterStep (glitch and wrap checks); never here.
      return DECREASED;
    case 'power': {
      const p = prev as typeof cur;
      return { joules: trapezoid(p.watts, cur.watts, dt), watts: Math.max(0, cur.watts) };
    }
    case 'mean_power':
      return { joules: Math.max(0, cur.watts) * dt, watts: Math.max(0, cur.watts) };
    case 'activity': {
      const p = prev as typeof cur;
      let active = 0;
      let units = 0;
      let wrapped = false;
      for (const [name, value] of Object.entries(cur.counters)) {
        const before = p.counters[name];
        if (before === undefined) continue;
        let d = value - before;
        // A wrap is plausible only for a step under half the range (a 32-bit byte counter: 2 GiB
        // per interval); a small step back is a glitch or a reset, never ~4 GiB of traffic.
        if (d < 0 && cur.wrapAt !== undefined && d + cur.wrapAt <= cur.wrapAt / 2) {
          d += cur.wrapAt;
          wrapped = true;
        }
        if (d < 0) return DECREASED;
        active += d * (cur.joulesPerUnit[name] ?? 0);
        units += d;
      }
      if (wrapped) events.push({ source: cur.source, device: cur.device, reason: 'counter_wrap' });
      const j = active + cur.idleWatts * dt;
      return { joules: j, watts: j / dt, activeJoules: active, activityUnits: units };
    }
  }
}

/** ∫P dt over one interval by the trapezoid rule; negative samples are clamped to 0. */
export function trapezoid(w0: number, w1: number, dtSeconds: number): number {
  return ((Math.max(0, w0) + Math.max(0, w1)) / 2) * dtSeconds;
}

export type ComponentTotals = Record<Component, number>;

export function zeroTotals(): ComponentTotals {
  return { compute: 0, transmit: 0, store: 0, cooling: 0 };
}

export function totalsByComponent(series: readonly SeriesDelta[]): ComponentTotals {
  const t = zeroTotals();
  for (const s of series) t[s.component] += s.joules;
  return t;
}

export function itEnergy(t: ComponentTotals): number {
  return t.compute + t.transmit + t.store;
}

export { COMPONENTS };
