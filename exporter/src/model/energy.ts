import type { Component, Domain, Reading } from '../sources/types';
import { COMPONENTS } from '../sources/types';

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
  /** Activity readings: the part of `joules` caused by activity (not idle), and the units moved. */
  activeJoules?: number;
  activityUnits?: number;
}

export interface ModelEvent {
  source: string;
  device: string;
  reason: 'counter_reset' | 'counter_wrap';
}

export interface StepResult {
  /** Step time in ms. */
  t: number;
  /** Seconds since the previous step (0 on the first). */
  dt: number;
  series: SeriesDelta[];
  events: ModelEvent[];
}

interface SeriesState {
  t: number;
  reading: Reading;
}

export function seriesKey(r: { component: string; device: string; source: string }): string {
  return `${r.component}\u0000${r.device}\u0000${r.source}`;
}

export class EnergyModel {
  private readonly state = new Map<string, SeriesState>();
  private lastStep: number | undefined;

  /** Forgets a series (a device that disappeared), so that its next reading starts a new baseline. */
  forget(r: { component: string; device: string; source: string }): void {
    this.state.delete(seriesKey(r));
  }

  step(t: number, readings: readonly Reading[]): StepResult {
    const dt = this.lastStep === undefined ? 0 : Math.max(0, (t - this.lastStep) / 1000);
    this.lastStep = t;
    const series: SeriesDelta[] = [];
    const events: ModelEvent[] = [];
    for (const r of readings) {
      const key = seriesKey(r);
      const prev = this.state.get(key);
      this.state.set(key, { t, reading: r });
      const sdt = prev ? Math.max(0, (t - prev.t) / 1000) : 0;
      const d = prev && prev.reading.kind === r.kind && sdt > 0 ? delta(prev.reading, r, sdt, events) : first(r);
      series.push({ component: r.component, domain: r.domain, device: r.device, source: r.source, ...d });
    }
    return { t, dt, series, events };
  }
}

type Delta = Pick<SeriesDelta, 'joules' | 'watts' | 'activeJoules' | 'activityUnits'>;

function first(r: Reading): Delta {
  return { joules: 0, watts: r.kind === 'power' || r.kind === 'mean_power' ? r.watts : r.kind === 'activity' ? r.idleWatts : 0 };
}

function delta(prev: Reading, cur: Reading, dt: number, events: ModelEvent[]): Delta {
  const reset = (reason: ModelEvent['reason'] = 'counter_reset') => events.push({ source: cur.source, device: cur.device, reason });
  switch (cur.kind) {
    case 'counter': {
      const p = prev as typeof cur;
      let d = cur.joules - p.joules;
      if (d < 0 && cur.wrapJoules !== undefined && p.joules <= cur.wrapJoules) {
        d += cur.wrapJoules;
        reset('counter_wrap');
      }
      const limit = cur.maxPowerWatts !== undefined ? cur.maxPowerWatts * dt * IMPOSSIBLE_DELTA_FACTOR : Infinity;
      if (d < 0 || d > limit || !Number.isFinite(d)) {
        reset();
        return { joules: 0, watts: 0 };
      }
      return { joules: d, watts: d / dt };
    }
    case 'power': {
      const p = prev as typeof cur;
      const j = trapezoid(p.watts, cur.watts, dt);
      return { joules: j, watts: cur.watts };
    }
    case 'mean_power':
      return { joules: Math.max(0, cur.watts) * dt, watts: Math.max(0, cur.watts) };
    case 'activity': {
      const p = prev as typeof cur;
      let active = 0;
      let units = 0;
      for (const [name, value] of Object.entries(cur.counters)) {
        const before = p.counters[name];
        if (before === undefined) continue;
        let d = value - before;
        if (d < 0 && cur.wrapAt !== undefined) {
          d += cur.wrapAt;
          reset('counter_wrap');
        }
        if (d < 0 || !Number.isFinite(d)) {
          // A reset of the byte counters drops only the activity energy; idle power is time-based.
          reset();
          active = 0;
          units = 0;
          break;
        }
        active += d * (cur.joulesPerUnit[name] ?? 0);
        units += d;
      }
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
