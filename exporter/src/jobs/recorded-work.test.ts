import { readFileSync } from 'fs';
import * as path from 'path';
import { COMPONENTS } from '../sources/types';
import { reconstructSteps, type TraceEvent } from './recorded-work';
import { WorkHistory } from './work';

/**
 * The recorded GPT-2 run on an H200 (339 steps of 16 × 1 024 tokens): its tokens reconstructed
 * from the events, and energy per token through the pure core (WorkHistory) at 100 ms ticks, each
 * tick reading the GPU energy counter as the fake NVML answers it (the last sample at or before the
 * tick) — checked against a figure computed here from the trace alone.
 */

interface Sample {
  t: number;
  energy_mj: number;
}
const trace = JSON.parse(readFileSync(path.join(__dirname, '../../../test/fixtures/nvidia-h200/training-trace.json'), 'utf8')) as {
  samples: Sample[];
  events: TraceEvent[];
};
const TOKENS_PER_STEP = 16 * 1024;

/** Counter (J) at t, interpolated between the samples around it. */
function counterAt(t: number): number {
  const s = trace.samples;
  const i = s.findIndex((x) => x.t > t);
  if (i <= 0) return (i === 0 ? s[0] : s[s.length - 1]).energy_mj / 1000;
  const [a, b] = [s[i - 1], s[i]];
  return (a.energy_mj + ((b.energy_mj - a.energy_mj) * (t - a.t)) / (b.t - a.t)) / 1000;
}

/** What the fake NVML answers at t: the last sample at or before t. */
function fakeNvmlAt(t: number): number {
  let last = trace.samples[0];
  for (const x of trace.samples) if (x.t <= t) last = x;
  return last.energy_mj / 1000;
}

describe('the recorded GPT-2 run', () => {
  const work = reconstructSteps(trace.events);

  test('339 steps between train_start and train_end, none during a checkpoint', () => {
    expect(work.steps).toBe(339);
    expect(work.stepsAt(work.start)).toBe(0);
    expect(work.stepsAt(work.end)).toBe(339);
    expect(work.stepsAt(work.end + 100)).toBe(339);
    const ckpt = trace.events.find((e) => e.event === 'checkpoint') as TraceEvent;
    expect(work.stepsAt(ckpt.t)).toBe(work.stepsAt(ckpt.t_end as number));
    let prev = 0;
    for (let t = work.start; t <= work.end; t += 0.05) {
      const n = work.stepsAt(t);
      expect(n).toBeGreaterThanOrEqual(prev);
      prev = n;
    }
  });

  test('J per token through the core at 100 ms ticks is within 1 % of the trace (≈ 4.1 mJ/token)', () => {
    const tokens = work.steps * TOKENS_PER_STEP; // 5 554 176
    // Independent: the counter interpolated at train_start and train_end.
    const truth = (counterAt(work.end) - counterAt(work.start)) / tokens;
    expect(truth).toBeGreaterThan(0.0035);
    expect(truth).toBeLessThan(0.0045);

    const dt = 0.1;
    const history = new WorkHistory(3600_000);
    const t0 = Math.ceil(work.start / dt) * dt - dt; // the last tick before train_start
    for (let t = t0; t <= work.end + dt; t += dt) {
      const energy = Object.fromEntries(COMPONENTS.map((c) => [c, c === 'compute' ? fakeNvmlAt(t) : 0])) as Record<
        (typeof COMPONENTS)[number],
        number
      >;
      history.record({ t: Math.round(t * 1000), energy, work: { tokens: work.stepsAt(t) * TOKENS_PER_STEP } });
    }
    const figure = history.lifetime('tokens');
    expect(figure?.work).toBe(tokens);
    const rel = Math.abs((figure?.joulesPerUnit.compute ?? 0) - truth) / truth;
    expect(rel).toBeLessThan(0.01);
    // and within the documented bound 2·(Δt + p)/T, p = one step
    const T = work.end - work.start;
    expect(rel).toBeLessThan((2 * (dt + T / work.steps)) / T);
  });
});
