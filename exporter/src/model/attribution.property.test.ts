import fc from 'fast-check';
import { attribute, type JobUsage } from './attribution';
import type { SeriesDelta } from './energy';
import { COMPONENTS } from '../core';

/**
 * Conservation (docs/design.md, section 3) as a property: for random node series, random jobs with random
 * loads (including over-subscribed CPU, GPU shares summing above 1, I/O above the device's
 * bytes, own-namespace traffic), over random intervals: Σ jobs + unattributed = node, per
 * component; nothing negative; every job's estimated/measured method is well-formed.
 */

const joules = fc.double({ min: 0, max: 1e5, noNaN: true, noDefaultInfinity: true });
const GPUS = ['gpu0', 'gpu1', 'gpu2'];

const seriesArb = fc
  .record({
    gpu: fc.array(joules, { minLength: 0, maxLength: 3 }),
    cpu: joules,
    dram: joules,
    storeActive: joules,
    storeIdle: joules,
    storeBytes: fc.double({ min: 0, max: 1e10, noNaN: true, noDefaultInfinity: true }),
    netActive: joules,
    netIdle: joules,
    netBytes: fc.double({ min: 0, max: 1e10, noNaN: true, noDefaultInfinity: true }),
    cooling: joules,
  })
  .map((r): SeriesDelta[] => [
    ...r.gpu.map((j, i): SeriesDelta => ({ component: 'compute', domain: 'gpu', device: GPUS[i], source: 'nvml', joules: j, watts: 0 })),
    { component: 'compute', domain: 'cpu', device: 'cpu', source: 'model', joules: r.cpu, watts: 0 },
    { component: 'compute', domain: 'dram', device: 'dram', source: 'model', joules: r.dram, watts: 0 },
    {
      component: 'store',
      domain: 'disk',
      device: 'sda',
      source: 'diskstats',
      joules: r.storeActive + r.storeIdle,
      watts: 0,
      activeJoules: r.storeActive,
      activityUnits: r.storeBytes,
    },
    {
      component: 'transmit',
      domain: 'nic',
      device: 'eth0',
      source: 'netdev',
      joules: r.netActive + r.netIdle,
      watts: 0,
      activeJoules: r.netActive,
      activityUnits: r.netBytes,
    },
    { component: 'cooling', domain: 'cooling', device: 'facility', source: 'model', joules: r.cooling, watts: 0 },
  ]);

const usageArb = fc.array(
  fc.record({
    cpuSeconds: fc.double({ min: 0, max: 500, noNaN: true, noDefaultInfinity: true }),
    ioBytes: fc.double({ min: 0, max: 2e10, noNaN: true, noDefaultInfinity: true }),
    gpu: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 3, maxLength: 3 }),
    netnsBytes: fc.option(fc.double({ min: 0, max: 2e10, noNaN: true, noDefaultInfinity: true }), { nil: undefined }),
  }),
  { maxLength: 12 },
);

describe('attribution conservation (property)', () => {
  it('Σ jobs + unattributed = node for every component, nothing negative', () => {
    fc.assert(
      fc.property(
        seriesArb,
        usageArb,
        fc.integer({ min: 1, max: 256 }),
        fc.double({ min: 0.1, max: 60, noNaN: true }),
        (series, loads, cpus, dt) => {
          const usage: JobUsage[] = loads.map((l, i) => ({
            id: `j${i}`,
            cpuSeconds: l.cpuSeconds,
            ioBytes: l.ioBytes,
            gpuShares: Object.fromEntries(GPUS.map((g, k) => [g, l.gpu[k]])),
            netnsBytes: l.netnsBytes,
          }));
          const a = attribute(series, usage, { cpuCapacitySeconds: cpus * dt });
          // Node totals computed here, independently of the code under test.
          const node: Record<string, number> = { compute: 0, transmit: 0, store: 0, cooling: 0 };
          for (const s of series) node[s.component] += s.joules;
          expect(a.jobs.map((j) => j.id)).toEqual(usage.map((u) => u.id));
          for (const c of COMPONENTS) {
            const sum = a.jobs.reduce((acc, j) => acc + j.joules[c], 0) + a.unattributed[c];
            expect(Math.abs(sum - node[c])).toBeLessThanOrEqual(1e-9 * Math.max(1, node[c]));
            expect(a.unattributed[c]).toBeGreaterThanOrEqual(0);
            for (const j of a.jobs) {
              expect(j.joules[c]).toBeGreaterThanOrEqual(0);
              expect(['measured', 'estimated']).toContain(j.method[c]);
            }
          }
          // Jobs without their own namespace share host traffic, and say so.
          for (const [i, j] of a.jobs.entries()) {
            expect(j.method.transmit).toBe(usage[i].netnsBytes === undefined ? 'estimated' : 'measured');
          }
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('accumulated over many random intervals, the totals still add up', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(seriesArb, usageArb), { minLength: 1, maxLength: 30 }), (intervals) => {
        const jobs = new Map<string, number>();
        let unattributed = 0;
        let node = 0;
        for (const [series, loads] of intervals) {
          const usage = loads.map((l, i) => ({
            id: `j${i}`,
            cpuSeconds: l.cpuSeconds,
            ioBytes: l.ioBytes,
            gpuShares: { gpu0: l.gpu[0] },
            netnsBytes: l.netnsBytes,
          }));
          const a = attribute(series, usage, { cpuCapacitySeconds: 8 });
          for (const j of a.jobs) jobs.set(j.id, (jobs.get(j.id) ?? 0) + COMPONENTS.reduce((s, c) => s + j.joules[c], 0));
          unattributed += COMPONENTS.reduce((s, c) => s + a.unattributed[c], 0);
          node += series.reduce((s, d) => s + d.joules, 0);
        }
        const sum = [...jobs.values()].reduce((a, b) => a + b, 0) + unattributed;
        expect(Math.abs(sum - node)).toBeLessThanOrEqual(1e-9 * Math.max(1, node));
      }),
      { numRuns: 300 },
    );
  });
});
