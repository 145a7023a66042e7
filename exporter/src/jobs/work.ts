import { z } from 'zod';
import type { Component } from '../core';
import { COMPONENTS } from '../core';
import type { JobReport } from './report';
import { JOULES_PER_KWH } from '../core';

/**
 * Energy per unit of work (issue 15): the pure semantics, shared by the API, `jouleflow run` and
 * the registry. Nothing here does I/O or reads a clock; callers pass times in.
 *
 * A job reports work as cumulative totals per unit ("tokens 5554176") or as increments
 * ("steps +1"). Totals are monotonic: a total lower than the one already held is refused with a
 * reason (the API answers 409), so a restarted trainer that forgot its count cannot make the
 * energy per unit jump. Energy per unit is ΔE/Δwork over the same interval on the exporter's clock.
 */

/** Unit names: a Prometheus label value we choose to keep boring. */
export const WORK_UNIT_PATTERN = /^[a-z][a-z0-9_]*$/;
export const MAX_UNIT_LENGTH = 32;
/** Units per job: each one is a `jouleflow_job_work_total` series, so the count is bounded. */
export const MAX_UNITS_PER_JOB = 8;
/** Totals stay exact integers in a double (2^53 − 1 tokens is ~9e15: no training run gets there). */
export const MAX_WORK_TOTAL = Number.MAX_SAFE_INTEGER;
/** A JOULEFLOW_WORK_FILE line longer than this is garbage, not work: it is dropped with a reason. */
export const MAX_LINE_LENGTH = 256;

/** Why a unit name is refused, or undefined when it is fine. */
export function unitProblem(unit: string): string | undefined {
  if (unit.length === 0) return 'unit is empty';
  if (unit.length > MAX_UNIT_LENGTH) return `unit "${unit.slice(0, MAX_UNIT_LENGTH)}…" is longer than ${MAX_UNIT_LENGTH} characters`;
  if (!WORK_UNIT_PATTERN.test(unit)) return `unit "${unit}" must match [a-z][a-z0-9_]* (e.g. tokens, samples, steps)`;
  return undefined;
}

/** The body of `POST /api/v1/jobs/{id}/work`: `{"unit": "tokens", "total": 5554176}`. */
export const workBodySchema = z
  .object({
    unit: z
      .string()
      .max(MAX_UNIT_LENGTH, `at most ${MAX_UNIT_LENGTH} characters`)
      .regex(WORK_UNIT_PATTERN, 'must match [a-z][a-z0-9_]* (e.g. tokens, samples, steps)'),
    total: z.number().int('must be a whole number').nonnegative().max(MAX_WORK_TOTAL),
  })
  .strict();
export type WorkBody = z.infer<typeof workBodySchema>;

/**
 * The API handler's core for `POST /api/v1/jobs/{id}/work`, once the job is found (else 404) and
 * the caller allowed (401/403 as for the other job mutations): the HTTP status and JSON body.
 */
export function applyWorkBody(
  tally: WorkTally,
  body: unknown,
): { status: 200; body: { unit: string; total: number } } | { status: 400 | 409; body: { error: string } } {
  const parsed = workBodySchema.safeParse(body);
  if (!parsed.success) {
    return { status: 400, body: { error: parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ') } };
  }
  const r = tally.setTotal(parsed.data.unit, parsed.data.total);
  return r.ok ? { status: 200, body: { unit: r.unit, total: r.total } } : { status: r.status, body: { error: r.reason } };
}

/** Outcome of a work report. `status` is the HTTP status the API answers with. */
export type WorkOutcome =
  | { ok: true; unit: string; total: number; /** work added by this report (0 for a repeated total) */ delta: number }
  | { ok: false; status: 400 | 409; reason: string };

/** One job's work totals per unit. Monotonic, bounded in units. */
export class WorkTally {
  private readonly totals = new Map<string, number>();

  constructor(private readonly maxUnits = MAX_UNITS_PER_JOB) {}

  /** A cumulative total: equal → accepted with delta 0; lower → 409; above the cap → 400. */
  setTotal(unit: string, total: number): WorkOutcome {
    const bad = this.check(unit, total);
    if (bad) return bad;
    const prev = this.totals.get(unit) ?? 0;
    if (total < prev) {
      return { ok: false, status: 409, reason: `${unit} total ${total} is lower than the ${prev} already reported (totals only grow)` };
    }
    this.totals.set(unit, total);
    return { ok: true, unit, total, delta: total - prev };
  }

  /** An increment (`steps +1`): adds to the unit's total. */
  add(unit: string, n: number): WorkOutcome {
    const bad = this.check(unit, n);
    if (bad) return bad;
    const prev = this.totals.get(unit) ?? 0;
    if (prev + n > MAX_WORK_TOTAL) return { ok: false, status: 400, reason: `${unit} total would exceed ${MAX_WORK_TOTAL}` };
    this.totals.set(unit, prev + n);
    return { ok: true, unit, total: prev + n, delta: n };
  }

  /** Applies a parsed work-file line. */
  apply(update: WorkUpdate): WorkOutcome {
    return update.kind === 'total' ? this.setTotal(update.unit, update.value) : this.add(update.unit, update.value);
  }

  get(unit: string): number | undefined {
    return this.totals.get(unit);
  }

  /** Units in the order they were first reported. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.totals);
  }

  private check(unit: string, n: number): WorkOutcome | undefined {
    const problem = unitProblem(unit);
    if (problem) return { ok: false, status: 400, reason: problem };
    if (!Number.isSafeInteger(n) || n < 0) return { ok: false, status: 400, reason: `${unit}: ${n} is not a whole number ≥ 0` };
    if (!this.totals.has(unit) && this.totals.size >= this.maxUnits) {
      return { ok: false, status: 400, reason: `at most ${this.maxUnits} units per job (already ${[...this.totals.keys()].join(', ')})` };
    }
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// JOULEFLOW_WORK_FILE lines

/** `tokens 5554176` → total; `steps +1` → increment. */
export interface WorkUpdate {
  unit: string;
  kind: 'total' | 'increment';
  value: number;
}

export type ParsedLine = { ok: true; update: WorkUpdate } | { ok: false; reason: string } | { ok: true; update: null };

/**
 * One line of a work file. Blank lines are skipped silently; anything else that is not
 * `UNIT TOTAL` or `UNIT +N` (comments included: the file is a protocol, not a config) is refused
 * with a reason, so a typo shows up in the wrapper's output instead of vanishing.
 */
export function parseWorkLine(raw: string): ParsedLine {
  const line = raw.replace(/\r$/, '').trim();
  if (line === '') return { ok: true, update: null };
  if (line.length > MAX_LINE_LENGTH) return { ok: false, reason: `line longer than ${MAX_LINE_LENGTH} characters` };
  const m = /^(\S+)\s+(\+?)(\d+)$/.exec(line);
  if (!m) return { ok: false, reason: 'expected "UNIT TOTAL" (tokens 5554176) or "UNIT +N" (steps +1)' };
  const problem = unitProblem(m[1]);
  if (problem) return { ok: false, reason: problem };
  const value = Number(m[3]);
  if (!Number.isSafeInteger(value)) return { ok: false, reason: `${m[3]} is larger than ${MAX_WORK_TOTAL}` };
  return { ok: true, update: { unit: m[1], kind: m[2] === '+' ? 'increment' : 'total', value } };
}

export interface LineError {
  /** 1-based line number in the file. */
  line: number;
  text: string;
  reason: string;
}

/**
 * Splits appended text into lines. The last, unterminated line is kept for the next chunk (the
 * writer may be half-way through it); a partial line that grows past MAX_LINE_LENGTH is dropped
 * up to its newline with one error, so a runaway writer cannot grow the buffer without bound.
 */
export class WorkLineReader {
  private partial = '';
  private discarding = false;
  private lineNo = 0;

  push(chunk: string): { updates: WorkUpdate[]; errors: LineError[] } {
    const updates: WorkUpdate[] = [];
    const errors: LineError[] = [];
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop() ?? '';
    for (const text of parts) {
      this.lineNo++;
      if (this.discarding) {
        this.discarding = false;
        continue;
      }
      const r = parseWorkLine(text);
      if (!r.ok) errors.push({ line: this.lineNo, text: text.slice(0, 80), reason: r.reason });
      else if (r.update) updates.push(r.update);
    }
    if (this.partial.length > MAX_LINE_LENGTH) {
      if (!this.discarding) {
        errors.push({ line: this.lineNo + 1, text: this.partial.slice(0, 80), reason: `line longer than ${MAX_LINE_LENGTH} characters` });
      }
      this.discarding = true;
      this.partial = '';
    }
    return { updates, errors };
  }

  /** At the end of the file's life: a last line without a newline still counts. */
  flush(): { updates: WorkUpdate[]; errors: LineError[] } {
    if (this.partial === '' || this.discarding) return { updates: [], errors: [] };
    return this.push('\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Energy per unit

export type ComponentJoules = Record<Component, number>;

/** A job's cumulative energy and work at one tick of the exporter's clock. */
export interface WorkSample {
  /** Milliseconds on the exporter's clock (the tick's time). */
  t: number;
  energy: ComponentJoules;
  /** Work totals per unit as known at this tick. */
  work: Record<string, number>;
}

export interface EnergyPerUnit {
  unit: string;
  work: number;
  /** Joules per unit per component, and total (IT + cooling). */
  joulesPerUnit: ComponentJoules & { total: number };
  seconds: number;
}

/**
 * ΔE/Δwork between two samples of the same job on the same clock; undefined when no work of
 * that unit was done in between (no figure is better than an infinite one).
 *
 * Error bound. Work reported between ticks is attributed to the tick in which it arrives, while
 * the energy of an interval is known only at its end: each end of a window can be off by the work
 * of one sampling interval Δt plus the reporting period p of the trainer (a trainer printing every
 * step reports up to one step late). At a steady rate the relative error of a window of length T
 * is therefore at most 2·(Δt + p)/T — with the 1 s default interval and per-second reports, 1.3 %
 * over 5 minutes, 0.07 % over an hour — and it vanishes over a job's lifetime, where both ends
 * are exact (no work before the start, the last total at the end).
 */
export function energyPerUnit(from: WorkSample, to: WorkSample, unit: string): EnergyPerUnit | undefined {
  const work = (to.work[unit] ?? 0) - (from.work[unit] ?? 0);
  if (!(work > 0)) return undefined;
  const energy = Object.fromEntries(COMPONENTS.map((c) => [c, to.energy[c] - from.energy[c]])) as ComponentJoules;
  return perUnit(energy, work, unit, (to.t - from.t) / 1000);
}

/** Whole-job figure: the job's energy per component over its final work total. */
export function lifetimeEnergyPerUnit(energy: ComponentJoules, work: number, unit: string, seconds: number): EnergyPerUnit | undefined {
  if (!(work > 0)) return undefined;
  return perUnit(energy, work, unit, seconds);
}

function perUnit(energy: ComponentJoules, work: number, unit: string, seconds: number): EnergyPerUnit {
  const per = Object.fromEntries(COMPONENTS.map((c) => [c, energy[c] / work])) as ComponentJoules;
  const total = COMPONENTS.reduce((s, c) => s + per[c], 0);
  return { unit, work, joulesPerUnit: { ...per, total }, seconds };
}

/**
 * A bounded history of one job's samples, one per tick, so windowed figures (the last 5 minutes)
 * can be computed without Prometheus. Old samples beyond `keepMs` are dropped, but the first one
 * is always kept for the lifetime figure.
 */
export class WorkHistory {
  private readonly samples: WorkSample[] = [];
  constructor(private readonly keepMs: number) {}

  /** Appends a tick; samples must come in clock order (a backwards clock is refused). */
  record(s: WorkSample): boolean {
    const last = this.samples[this.samples.length - 1];
    if (last && s.t < last.t) return false;
    this.samples.push({ t: s.t, energy: { ...s.energy }, work: { ...s.work } });
    // Keep [first, …window]: drop from index 1 while the second-oldest is older than the window.
    while (this.samples.length > 2 && this.samples[1].t < s.t - this.keepMs) this.samples.splice(1, 1);
    return true;
  }

  /** J per unit over the last `windowMs` (from the newest sample at or before its start). */
  window(unit: string, windowMs: number): EnergyPerUnit | undefined {
    const to = this.samples[this.samples.length - 1];
    if (!to) return undefined;
    let from = this.samples[0];
    for (const s of this.samples) if (s.t <= to.t - windowMs) from = s;
    return from === to ? undefined : energyPerUnit(from, to, unit);
  }

  lifetime(unit: string): EnergyPerUnit | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    return first && last && first !== last ? energyPerUnit(first, last, unit) : undefined;
  }

  get length(): number {
    return this.samples.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Per million units

export interface PerMillion {
  kwh: number;
  /** g CO₂ per million units, where a grid intensity is configured. */
  gramsCo2?: number;
  /** Cost per million units in the price's currency, where a price per kWh is configured. */
  cost?: number;
}

/** J/unit × 10⁶ units / (3.6 × 10⁶ J/kWh) = kWh per million units; × g/kWh; × price/kWh. */
export function perMillionUnits(joulesPerUnit: number, opts: { gramsPerKwh?: number; pricePerKwh?: number } = {}): PerMillion {
  const kwh = (joulesPerUnit * 1e6) / JOULES_PER_KWH;
  const out: PerMillion = { kwh };
  if (opts.gramsPerKwh !== undefined) out.gramsCo2 = kwh * opts.gramsPerKwh;
  if (opts.pricePerKwh !== undefined) out.cost = kwh * opts.pricePerKwh;
  return out;
}

// ---------------------------------------------------------------------------------------------
// A job's report: energy per unit of every unit

export interface WorkPricing {
  /** g CO₂ per kWh: from the report's carbon configuration. */
  gramsPerKwh?: number;
  pricePerKwh?: number;
  currency?: string;
}

export interface UnitReport {
  unit: string;
  total: number;
  /** J per unit per component, and total. */
  joulesPerUnit: ComponentJoules & { total: number };
  /** kWh (and g CO₂, cost where configured) per million units, all components. */
  perMillion: PerMillion & { currency?: string };
}

/**
 * Energy per unit of every reported unit over the whole job (both ends exact: no sampling error):
 * the `work` array of the `jouleflow run` report and of the API's job reports (report.ts).
 */
export function workReport(report: JobReport, totals: Record<string, number>, pricing: WorkPricing): UnitReport[] {
  const energy = Object.fromEntries(COMPONENTS.map((c) => [c, report.energy[c].joules])) as ComponentJoules;
  const out: UnitReport[] = [];
  for (const [unit, total] of Object.entries(totals)) {
    const per = lifetimeEnergyPerUnit(energy, total, unit, report.durationSeconds);
    if (!per) continue;
    const perMillion: UnitReport['perMillion'] = perMillionUnits(per.joulesPerUnit.total, pricing);
    if (perMillion.cost !== undefined) perMillion.currency = pricing.currency;
    out.push({ unit, total, joulesPerUnit: per.joulesPerUnit, perMillion });
  }
  return out;
}
