import type { Component } from '../core';
import { COMPONENTS, JOULES_PER_KWH } from '../core';
import type { LedgerRow, Totals } from './ledger';
import { componentJoules } from './ledger';
import { workReport, type UnitReport } from './work';

/** A job's energy report: what the API returns and `jouleflow run` prints. */

export interface ComponentReport {
  joules: number;
  kwh: number;
  /** Share of the job's total energy, percent. */
  percent: number;
  /** "measured", "estimated", or "mixed" when both were used during the job. */
  method: string;
}

export interface JobReport {
  id: string;
  name: string;
  state: 'running' | 'ended';
  scheduler: string;
  user?: string;
  labels: Record<string, string>;
  pids?: number[];
  cgroup?: string;
  gpus?: string[];
  /** ISO 8601 and seconds since the epoch. */
  start: string;
  startTime: number;
  end?: string;
  endTime?: number;
  durationSeconds: number;
  /** The exit status given when the job was ended (POST /jobs/{id}/end {"exit_code": N}). */
  exitCode?: number;
  energy: Record<Component, ComponentReport>;
  it: { joules: number; kwh: number };
  total: { joules: number; kwh: number };
  meanPowerWatts: number;
  /** (IT + cooling) / IT of this job; null while it has no IT energy. */
  pue: number | null;
  /** Present where a grid carbon intensity is configured. */
  co2?: { grams: number; gramsPerKwh: number; zone: string };
  /** Energy per unit of every unit of work the job reported, over its whole run (issue 15). */
  work: UnitReport[];
}

export interface CarbonConfig {
  zone: string;
  gramsPerKwh?: number;
}

export function buildReport(row: LedgerRow, running: boolean, nowMs: number, carbon: CarbonConfig): JobReport {
  const end = running ? undefined : (row.end ?? row.updated);
  const duration = Math.max(0, ((end ?? nowMs) - row.start) / 1000);
  const joules = Object.fromEntries(COMPONENTS.map((c) => [c, componentJoules(row.totals, c)])) as Record<Component, number>;
  const it = joules.compute + joules.transmit + joules.store;
  const total = it + joules.cooling;
  const energy = Object.fromEntries(
    COMPONENTS.map((c) => [
      c,
      {
        joules: joules[c],
        kwh: joules[c] / JOULES_PER_KWH,
        percent: total > 0 ? (100 * joules[c]) / total : 0,
        method: methodOf(row.totals, c),
      },
    ]),
  ) as Record<Component, ComponentReport>;
  const report: JobReport = {
    id: row.id,
    name: row.name,
    state: running ? 'running' : 'ended',
    scheduler: row.scheduler,
    user: row.user,
    labels: row.labels,
    pids: row.spec.pids,
    cgroup: row.spec.cgroup,
    gpus: row.spec.gpus,
    start: new Date(row.start).toISOString(),
    startTime: row.start / 1000,
    end: end !== undefined ? new Date(end).toISOString() : undefined,
    endTime: end !== undefined ? end / 1000 : undefined,
    durationSeconds: duration,
    exitCode: row.spec.exitCode,
    energy,
    it: { joules: it, kwh: it / JOULES_PER_KWH },
    total: { joules: total, kwh: total / JOULES_PER_KWH },
    meanPowerWatts: duration > 0 ? total / duration : 0,
    pue: it > 0 ? total / it : null,
    work: [],
  };
  if (carbon.gramsPerKwh !== undefined) {
    report.co2 = { grams: (total / JOULES_PER_KWH) * carbon.gramsPerKwh, gramsPerKwh: carbon.gramsPerKwh, zone: carbon.zone };
  }
  report.work = workReport(report, row.work ?? {}, { gramsPerKwh: carbon.gramsPerKwh });
  return report;
}

function methodOf(t: Totals, c: Component): string {
  const used = Object.entries(t[c])
    .filter(([, j]) => j > 0)
    .map(([m]) => m);
  if (used.length === 0) return Object.keys(t[c])[0] ?? 'measured';
  return used.length === 1 ? used[0] : 'mixed';
}

function fmtJ(j: number): string {
  if (j >= 1e6) return `${(j / 1e6).toFixed(3)} MJ`;
  if (j >= 1e3) return `${(j / 1e3).toFixed(3)} kJ`;
  return `${j.toFixed(3)} J`;
}

function fmtKwh(kwh: number): string {
  return kwh >= 0.01 ? `${kwh.toFixed(4)} kWh` : `${kwh.toExponential(3)} kWh`;
}

/**
 * Text for a terminal: control characters (escape sequences, carriage returns) of API-given
 * names become spaces, so a job name cannot rewrite the user's screen.
 */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}

/** A plain-text report in the manner of time(1), for stderr. */
export function formatReport(r: JobReport): string {
  const lines: string[] = [];
  lines.push(`jouleflow: job ${r.id} (${printable(r.name)}) ${r.state === 'ended' ? 'ended' : 'running'}`);
  lines.push(`  duration     ${r.durationSeconds.toFixed(3)} s`);
  for (const c of COMPONENTS) {
    const e = r.energy[c];
    const est = e.method === 'measured' ? '' : ` (${e.method})`;
    lines.push(
      `  ${c.padEnd(12)} ${fmtJ(e.joules).padStart(14)}  ${fmtKwh(e.kwh).padStart(15)}  ${e.percent.toFixed(1).padStart(5)} %${est}`,
    );
  }
  // No energy at all (a command too short for one sampling interval): no shares to speak of.
  const totalShare = r.total.joules > 0 ? '100.0 %' : '    – %';
  lines.push(`  ${'total'.padEnd(12)} ${fmtJ(r.total.joules).padStart(14)}  ${fmtKwh(r.total.kwh).padStart(15)}  ${totalShare}`);
  lines.push(`  mean power   ${r.meanPowerWatts.toFixed(3)} W`);
  lines.push(`  PUE          ${r.pue === null ? 'n/a' : r.pue.toFixed(3)}`);
  if (r.co2) lines.push(`  CO2          ${r.co2.grams.toFixed(3)} g (${r.co2.gramsPerKwh} g/kWh, zone ${r.co2.zone})`);
  return lines.join('\n');
}
