import type { Reading } from '../core';
import { EnergyModel, IMPOSSIBLE_DELTA_FACTOR, totalsByComponent, trapezoid } from './energy';

const counter = (joules: number, extra: Partial<Reading> = {}): Reading =>
  ({ kind: 'counter', component: 'compute', domain: 'cpu', device: 'package-0', source: 'rapl', joules, ...extra }) as Reading;

describe('EnergyModel counters', () => {
  test('first reading is a baseline, later readings give deltas', () => {
    const m = new EnergyModel();
    expect(m.step(0, [counter(1000)]).series[0].joules).toBe(0);
    const s = m.step(1000, [counter(1150)]).series[0];
    expect(s.joules).toBe(150);
    expect(s.watts).toBe(150);
  });

  test('a RAPL wrap adds the range: Δ = (max − last) + current', () => {
    const m = new EnergyModel();
    const wrap = 262143.32885; // max_energy_range_uj 262143328850 µJ
    m.step(0, [counter(262143.0, { wrapJoules: wrap, maxPowerWatts: 250 })]);
    const r = m.step(1000, [counter(10.5, { wrapJoules: wrap, maxPowerWatts: 250 })]);
    expect(r.series[0].joules).toBeCloseTo(wrap - 262143.0 + 10.5, 6);
    expect(r.events).toEqual([{ source: 'rapl', device: 'package-0', reason: 'counter_wrap' }]);
  });

  test('a counter that goes backwards and stays low is a reset: the interval is dropped and counted', () => {
    const m = new EnergyModel();
    m.step(0, [counter(5000)]);
    const low = m.step(1000, [counter(20)]);
    expect(low.series[0].joules).toBe(0);
    expect(low.events).toEqual([]);
    const confirmed = m.step(2000, [counter(70)]);
    expect(confirmed.events).toEqual([{ source: 'rapl', device: 'package-0', reason: 'counter_reset' }]);
    expect(confirmed.series[0].joules).toBe(50);
    expect(m.step(3000, [counter(100)]).series[0].joules).toBe(30);
  });

  test('a single low read (a glitch) loses nothing: the next read is measured from the old baseline', () => {
    const m = new EnergyModel();
    m.step(0, [counter(5000)]);
    expect(m.step(1000, [counter(0)]).series[0].joules).toBe(0);
    const back = m.step(2000, [counter(5100)]);
    expect(back.series[0].joules).toBe(100);
    // Counted (the device misreported), but nothing is lost or invented.
    expect(back.events).toEqual([{ source: 'rapl', device: 'package-0', reason: 'counter_reset' }]);
  });

  test('non-finite readings are dropped and reported, never published', () => {
    const m = new EnergyModel();
    m.step(0, [counter(10)]);
    const r = m.step(1000, [counter(NaN)]);
    expect(r.series[0].joules).toBe(0);
    expect(r.events[0].reason).toBe('invalid_value');
    expect(m.step(2000, [counter(30)]).series[0].joules).toBe(20);
  });

  test('an impossible jump (above max power × Δt × factor) is never energy: a glitch if the next read is back', () => {
    const m = new EnergyModel();
    m.step(0, [counter(0, { maxPowerWatts: 700 })]);
    const ok = m.step(1000, [counter(700 * IMPOSSIBLE_DELTA_FACTOR, { maxPowerWatts: 700 })]);
    expect(ok.series[0].joules).toBe(1400);
    const bad = m.step(2000, [counter(1400 + 700 * IMPOSSIBLE_DELTA_FACTOR + 1, { maxPowerWatts: 700 })]);
    expect(bad.series[0].joules).toBe(0);
    const back = m.step(3000, [counter(1400 + 900, { maxPowerWatts: 700 })]);
    expect(back.series[0].joules).toBe(900); // measured from the last good read, over 2 s
    expect(back.events.map((e) => e.reason)).toEqual(['counter_reset']);
  });

  test('a counter that jumps forward and keeps counting from there: a reset, the energy since the jump is kept', () => {
    const m = new EnergyModel();
    const c = (j: number) => counter(j, { maxPowerWatts: 300 });
    m.step(0, [c(100)]);
    expect(m.step(1000, [c(1e6)]).series[0].joules).toBe(0);
    const confirmed = m.step(2000, [c(1e6 + 250)]);
    expect(confirmed.series[0].joules).toBe(250);
    expect(confirmed.events.map((e) => e.reason)).toEqual(['counter_reset']);
    expect(m.step(3000, [c(1e6 + 500)]).series[0].joules).toBe(250);
  });
});

describe('wrapping counters are checked like the others (issue 10 §2)', () => {
  // test/fixtures/host: intel-rapl:0:1 (dram) has max_energy_range_uj 65712999613 and no max power.
  const RANGE = 65712.999613;
  const dram = (joules: number, maxPowerWatts?: number): Reading =>
    ({
      kind: 'counter',
      component: 'compute',
      domain: 'dram',
      device: 'dram-1',
      source: 'rapl',
      joules,
      wrapJoules: RANGE,
      maxPowerWatts,
    }) as Reading;

  test('a DRAM zone stepping back by 100 J is a reset, not a wrap of +65 623 J', () => {
    const m = new EnergyModel();
    m.step(0, [dram(200, 67)]);
    const back = m.step(1000, [dram(100, 67)]);
    expect(back.series[0].joules).toBe(0);
    const still = m.step(2000, [dram(105, 67)]);
    expect(still.series[0].joules).toBeCloseTo(5, 9);
    expect(still.events.map((e) => e.reason)).toEqual(['counter_reset']);
    // The wrap reading would have been (RANGE − 200) + 100 = 65 612.999613 J.
    const total = back.series[0].joules + still.series[0].joules;
    expect(total).toBeLessThan(67 * 2 * IMPOSSIBLE_DELTA_FACTOR);
  });

  test('without a power bound a backwards step is never taken as a wrap', () => {
    const m = new EnergyModel();
    m.step(0, [dram(200)]);
    expect(m.step(1000, [dram(100)]).series[0].joules).toBe(0);
    expect(m.step(2000, [dram(110)]).series[0].joules).toBe(10);
  });

  test('a real wrap near the top of the range is kept exactly', () => {
    const m = new EnergyModel();
    m.step(0, [dram(RANGE - 3, 67)]);
    const r = m.step(1000, [dram(4, 67)]);
    expect(r.series[0].joules).toBeCloseTo(7, 6);
    expect(r.events.map((e) => e.reason)).toEqual(['counter_wrap']);
  });

  test('one low read of a wrapping package counter over-counts nothing', () => {
    const m = new EnergyModel();
    const pkg = (j: number) => counter(j, { wrapJoules: 262143.32885, maxPowerWatts: 250 });
    m.step(0, [pkg(1000)]);
    expect(m.step(1000, [pkg(900)]).series[0].joules).toBe(0);
    const back = m.step(2000, [pkg(1200)]);
    expect(back.series[0].joules).toBe(200); // 1000 → 1200 over 2 s, not 900 → 1200
    expect(back.events.map((e) => e.reason)).toEqual(['counter_reset']);
  });
});

describe('power integration', () => {
  const power = (watts: number): Reading => ({
    kind: 'power',
    component: 'compute',
    domain: 'gpu',
    device: 'gpu0',
    source: 'nvml-power',
    watts,
  });

  test('trapezoid is exact for a linear ramp: ∫(100 + 10t)dt over 0..10 s = 1500 J', () => {
    const m = new EnergyModel();
    let total = 0;
    for (let t = 0; t <= 10; t += 0.5) total += m.step(t * 1000, [power(100 + 10 * t)]).series[0].joules;
    expect(total).toBeCloseTo(1500, 9);
  });

  test('trapezoid converges on a sine: ∫(300 + 100 sin t)dt over 0..2π = 600π J', () => {
    const m = new EnergyModel();
    let total = 0;
    const n = 2000;
    for (let i = 0; i <= n; i++) {
      const t = (2 * Math.PI * i) / n;
      total += m.step(t * 1000, [power(300 + 100 * Math.sin(t))]).series[0].joules;
    }
    expect(Math.abs(total - 600 * Math.PI) / (600 * Math.PI)).toBeLessThan(1e-6);
  });

  test('negative power samples are clamped', () => {
    expect(trapezoid(-5, 10, 2)).toBe(10);
  });
});

describe('activity counters (disks, NICs)', () => {
  const nic = (rx: number, tx: number): Reading => ({
    kind: 'activity',
    component: 'transmit',
    domain: 'nic',
    device: 'eth0',
    source: 'netdev',
    counters: { rx_bytes: rx, tx_bytes: tx },
    joulesPerUnit: { rx_bytes: 8 * 5e-12, tx_bytes: 8 * 5e-12 },
    idleWatts: 2,
  });

  test('ΔE = bits × J/bit + idle W × Δt', () => {
    const m = new EnergyModel();
    m.step(0, [nic(0, 0)]);
    const s = m.step(4000, [nic(1e9, 3e9)]).series[0];
    // 4e9 bytes = 3.2e10 bits × 5 pJ/bit = 0.16 J, plus 2 W × 4 s = 8 J
    expect(s.joules).toBeCloseTo(8.16, 12);
    expect(s.activeJoules).toBeCloseTo(0.16, 12);
    expect(s.activityUnits).toBe(4e9);
  });

  test('a byte counter reset drops one interval, then counts from the new baseline', () => {
    const m = new EnergyModel();
    m.step(0, [nic(5e9, 5e9)]);
    expect(m.step(1000, [nic(10, 10)]).series[0].joules).toBe(0);
    const r = m.step(2000, [nic(1010, 10)]);
    expect(r.events[0].reason).toBe('counter_reset');
    expect(r.series[0].joules).toBeCloseTo(1000 * 8 * 5e-12 + 2, 12);
  });

  test('32-bit counters: a real wrap is counted exactly, a small step back is a glitch, not 4 GiB', () => {
    const W = 2 ** 32;
    const nic32 = (rx: number): Reading => ({ ...nic(rx, 0), wrapAt: W }) as Reading;
    const m = new EnergyModel();
    m.step(0, [nic32(W - 1000)]);
    const wrap = m.step(1000, [nic32(3000)]);
    expect(wrap.series[0].activityUnits).toBe(4000);
    expect(wrap.events.map((e) => e.reason)).toEqual(['counter_wrap']);
    const low = m.step(2000, [nic32(2900)]); // 100 bytes back: a glitch
    expect(low.series[0].joules).toBe(0);
    const back = m.step(3000, [nic32(5000)]);
    expect(back.series[0].activityUnits).toBe(2000); // from 3000, over 2 s
    expect(back.events.map((e) => e.reason)).toEqual(['counter_reset']);
  });
});

describe('the seed article examples, recomputed with correct units', () => {
  test('4 GPUs × 300 W × 10 h = 43.2 MJ = 12 kWh (not 12 000 J)', () => {
    const m = new EnergyModel();
    const gpus = () =>
      [0, 1, 2, 3].map((i): Reading => ({
        kind: 'mean_power',
        component: 'compute',
        domain: 'gpu',
        device: `gpu${i}`,
        source: 'model',
        watts: 300,
      }));
    m.step(0, gpus());
    const r = m.step(10 * 3600 * 1000, gpus());
    const joules = totalsByComponent(r.series).compute;
    expect(joules).toBe(43.2e6);
    expect(joules / 3.6e6).toBe(12);
  });

  test('100 GB moved at 1e-8 J/bit = 8e11 bit × 1e-8 J/bit = 8 kJ (bits × J/bit, not bandwidth × J/bit / 2)', () => {
    const m = new EnergyModel();
    const link = (bytes: number): Reading => ({
      kind: 'activity',
      component: 'transmit',
      domain: 'nic',
      device: 'eth0',
      source: 'netdev',
      counters: { tx_bytes: bytes },
      joulesPerUnit: { tx_bytes: 8 * 1e-8 },
      idleWatts: 0,
    });
    m.step(0, [link(0)]);
    expect(m.step(1000, [link(100e9)]).series[0].joules).toBeCloseTo(8000, 9);
  });
});

describe('power gaps', () => {
  test('power samples further apart than the gap limit start a new baseline instead of one long trapezoid', () => {
    const m = new EnergyModel({ maxPowerGapMs: 2500 });
    const p = (watts: number): Reading => ({
      kind: 'power',
      component: 'cooling',
      domain: 'cooling',
      device: 'crac1',
      source: 'snmp',
      watts,
    });
    m.step(0, [p(1000)]);
    expect(m.step(1000, [p(1000)]).series[0].joules).toBe(1000);
    expect(m.step(60_000, [p(3000)]).series[0].joules).toBe(0);
    expect(m.step(61_000, [p(3000)]).series[0].joules).toBe(3000);
  });
});
