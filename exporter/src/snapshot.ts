import type { Component, Domain, JobView } from './core';
import { COMPONENTS } from './core';
import type { Attribution } from './model/attribution';
import type { SeriesDelta, StepResult } from './model/energy';

/**
 * One immutable picture of the exporter per tick (docs/design.md, section 1): sources → model →
 * snapshot → renderers. The sampler builds it at the end of a tick and publishes it whole; the
 * /metrics text, the landing page and anything else that shows energy render from it alone, so
 * nothing a scrape sees can mix two ticks. Nothing here is mutated after publication.
 */

/** The identity of a node series; one object per series for its whole lifetime (renderers key caches on it). */
export interface NodeSeriesLabels {
  readonly component: Component;
  readonly device: string;
  readonly source: string;
}

export interface NodeSeriesView {
  readonly labels: NodeSeriesLabels;
  readonly domain: Domain;
  /** Joules since the exporter started. */
  readonly joules: number;
  /** Mean power over the last interval; absent when the device did not report in it. */
  readonly watts?: number;
}

export interface SourceView {
  readonly name: string;
  /** False when init() said the source does not exist here. */
  readonly present: boolean;
  readonly up: boolean;
  /** Why it is down, when it is. */
  readonly lastError?: string;
  /** Per-device up states ('' is the source as a whole). */
  readonly devices: ReadonlyArray<readonly [device: string, up: 0 | 1]>;
  readonly devicesDown: readonly string[];
}

export interface TickSnapshot {
  /** Increases with every published snapshot; renderings are cached by it. */
  readonly version: number;
  /** Tick time (ms, sampler clock) and interval length (s). */
  readonly t: number;
  readonly dt: number;
  readonly node: readonly NodeSeriesView[];
  /** Running and retained jobs, ordered by start time. */
  readonly jobs: readonly JobView[];
  /** Energy no job accounts for, cumulative per component, and its power over the last interval. */
  readonly unattributed: { readonly joules: Readonly<Record<Component, number>>; readonly watts: Readonly<Record<Component, number>> };
  /** (IT + cooling) / IT over the last interval with IT energy; absent until known. */
  readonly pue?: number;
  readonly sources: readonly SourceView[];
  /** Failed or discarded reads per "reader\0reason" (reader: a Source's name, or jobs, ledger, sampler). */
  readonly errors: ReadonlyMap<string, number>;
  /** Jobs refused per reason. */
  readonly jobsRejected: ReadonlyMap<string, number>;
}

export const EMPTY_SNAPSHOT: TickSnapshot = Object.freeze({
  version: 0,
  t: 0,
  dt: 0,
  node: [],
  jobs: [],
  unattributed: { joules: zero(), watts: zero() },
  sources: [],
  errors: new Map(),
  jobsRejected: new Map(),
});

function zero(): Record<Component, number> {
  return { compute: 0, transmit: 0, store: 0, cooling: 0 };
}

interface NodeSeriesState {
  labels: NodeSeriesLabels;
  domain: Domain;
  joules: number;
}

/**
 * The node's cumulative energy per series and the unattributed remainder: the only place node
 * joules accumulate. Series keep their identity object while they exist; a series that stops
 * reporting keeps its energy (a counter never disappears while the exporter runs) but loses its power.
 */
export class NodeEnergyTotals {
  private readonly series = new Map<string, NodeSeriesState>();
  private readonly unattributed = zero();

  add(step: StepResult, attribution: Attribution): { node: NodeSeriesView[]; unattributed: TickSnapshot['unattributed'] } {
    const watts = new Map<NodeSeriesState, number>();
    for (const s of step.series) {
      const st = this.stateOf(s);
      st.joules += s.joules;
      watts.set(st, s.watts);
    }
    const node: NodeSeriesView[] = [];
    for (const st of this.series.values()) {
      const w = watts.get(st);
      node.push(
        w === undefined
          ? { labels: st.labels, domain: st.domain, joules: st.joules }
          : { labels: st.labels, domain: st.domain, joules: st.joules, watts: w },
      );
    }
    const power = zero();
    for (const c of COMPONENTS) {
      this.unattributed[c] += attribution.unattributed[c];
      power[c] = step.dt > 0 ? attribution.unattributed[c] / step.dt : 0;
    }
    return { node, unattributed: { joules: { ...this.unattributed }, watts: power } };
  }

  private stateOf(s: SeriesDelta): NodeSeriesState {
    const key = `${s.component}\u0000${s.device}\u0000${s.source}`;
    let st = this.series.get(key);
    if (!st) {
      st = { labels: Object.freeze({ component: s.component, device: s.device, source: s.source }), domain: s.domain, joules: 0 };
      this.series.set(key, st);
    }
    return st;
  }
}
