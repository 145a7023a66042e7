import type { Component } from '../core';
import { COMPONENTS } from '../core';
import type { ComponentTotals, SeriesDelta } from './energy';
import { zeroTotals } from './energy';

/**
 * Splits one interval's node energy among jobs (docs/design.md, section 3). Pure. Every component is split so
 * that Σ jobs + unattributed = node total: shares are capped at 1 in sum and the remainder is
 * unattributed, computed by subtraction.
 */

export const UNATTRIBUTED = 'unattributed';

/** What a job did during one interval, measured by the jobs tracker. */
export interface JobUsage {
  id: string;
  /** CPU seconds (utime+stime) of the job's processes in the interval. */
  cpuSeconds: number;
  /** Storage bytes (read_bytes + write_bytes − cancelled_write_bytes) in the interval. */
  ioBytes: number;
  /** Fraction (0..1) of each GPU's energy (by `device` label) that belongs to the job. */
  gpuShares: Record<string, number>;
  /** Bytes through the job's own network namespace, when it has one. */
  netnsBytes?: number;
}

export interface NodeUsage {
  /** CPU capacity in the interval: logical cores × Δt, seconds. */
  cpuCapacitySeconds: number;
}

export type Method = 'measured' | 'estimated';

export interface JobShare {
  id: string;
  joules: ComponentTotals;
  /** How each component's share was found (transmit without a namespace is estimated). */
  method: Record<Component, Method>;
}

export interface Attribution {
  jobs: JobShare[];
  unattributed: ComponentTotals;
}

function scaleToAtMostOne(weights: number[]): number[] {
  const clean = weights.map((w) => (Number.isFinite(w) && w > 0 ? w : 0));
  const sum = clean.reduce((a, b) => a + b, 0);
  return sum > 1 ? clean.map((w) => w / sum) : clean;
}

export function attribute(series: readonly SeriesDelta[], usage: readonly JobUsage[], node: NodeUsage): Attribution {
  const jobs: JobShare[] = usage.map((u) => ({
    id: u.id,
    joules: zeroTotals(),
    method: { compute: 'measured', transmit: 'measured', store: 'measured', cooling: 'measured' },
  }));
  const nodeTotals = zeroTotals();
  const cpuShares = scaleToAtMostOne(usage.map((u) => (node.cpuCapacitySeconds > 0 ? u.cpuSeconds / node.cpuCapacitySeconds : 0)));

  // Compute: GPUs per device by their shares; CPU and DRAM by CPU time.
  let storeActive = 0;
  let storeIdle = 0;
  let storeBytes = 0;
  let netActive = 0;
  let netBytes = 0;
  const gpuByDevice = new Map<string, number>();
  let cpuJoules = 0;
  for (const s of series) {
    nodeTotals[s.component] += s.joules;
    if (s.component === 'compute') {
      if (s.domain === 'gpu') gpuByDevice.set(s.device, (gpuByDevice.get(s.device) ?? 0) + s.joules);
      else cpuJoules += s.joules;
    } else if (s.component === 'store') {
      storeActive += s.activeJoules ?? 0;
      storeIdle += s.joules - (s.activeJoules ?? 0);
      storeBytes += s.activityUnits ?? 0;
    } else if (s.component === 'transmit') {
      netActive += s.activeJoules ?? 0;
      netBytes += s.activityUnits ?? 0;
    }
  }
  for (const [device, joules] of gpuByDevice) {
    const shares = scaleToAtMostOne(usage.map((u) => u.gpuShares[device] ?? 0));
    shares.forEach((sh, i) => (jobs[i].joules.compute += joules * sh));
  }
  cpuShares.forEach((sh, i) => (jobs[i].joules.compute += cpuJoules * sh));

  // Store: active energy by I/O bytes; idle power goes to a job only when it is the sole user.
  const ioShares = scaleToAtMostOne(usage.map((u) => (storeBytes > 0 ? u.ioBytes / storeBytes : 0)));
  const ioUsers = usage.filter((u) => u.ioBytes > 0).length;
  ioShares.forEach((sh, i) => {
    jobs[i].joules.store += storeActive * sh;
    if (ioUsers === 1 && usage[i].ioBytes > 0) jobs[i].joules.store += storeIdle;
  });

  // Transmit: jobs with their own namespace by their bytes; the rest of the traffic is shared
  // among host-namespace jobs by compute energy, an estimate and labelled so.
  const nsShares = scaleToAtMostOne(usage.map((u) => (u.netnsBytes !== undefined && netBytes > 0 ? u.netnsBytes / netBytes : 0)));
  let netClaimed = 0;
  nsShares.forEach((sh, i) => {
    if (usage[i].netnsBytes === undefined) return;
    jobs[i].joules.transmit = netActive * sh;
    netClaimed += netActive * sh;
  });
  // Idle NIC power is nobody's traffic: like idle disks, it stays unattributed.
  const netRest = Math.max(0, netActive - netClaimed);
  const hostJobs = usage.map((u, i) => (u.netnsBytes === undefined ? i : -1)).filter((i) => i >= 0);
  const computeNode = nodeTotals.compute;
  const hostShares = scaleToAtMostOne(hostJobs.map((i) => (computeNode > 0 ? jobs[i].joules.compute / computeNode : 0)));
  hostShares.forEach((sh, k) => {
    const i = hostJobs[k];
    jobs[i].joules.transmit = netRest * sh;
    jobs[i].method.transmit = 'estimated';
  });

  // Cooling: the job's share of the node's IT energy.
  const itNode = nodeTotals.compute + nodeTotals.transmit + nodeTotals.store;
  const itShares = scaleToAtMostOne(jobs.map((j) => (itNode > 0 ? (j.joules.compute + j.joules.transmit + j.joules.store) / itNode : 0)));
  itShares.forEach((sh, i) => (jobs[i].joules.cooling = nodeTotals.cooling * sh));

  const unattributed = zeroTotals();
  for (const c of COMPONENTS) {
    const sum = jobs.reduce((a, j) => a + j.joules[c], 0);
    // Shares are capped at 1 in sum, so any negative remainder is floating-point noise.
    unattributed[c] = Math.max(0, nodeTotals[c] - sum);
  }
  return { jobs, unattributed };
}
